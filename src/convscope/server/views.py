"""Trace records -> the JSON the explorer's views draw.

Glue only: layer structure, value ranges and the prediction are read off the trace;
the detail views' JSON is in :mod:`convscope.server.detail_views`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..trace.layout import is_relayout
from ..trace.serialize import jsonable
from .registry import TraceEntry

TOP_CLASSES = 10
MAX_NAMES = 1000  # class names the trace JSON carries for the output strip (ImageNet's 1,000 fit)


# -- the overview -------------------------------------------------------------------------
def group_of(rec, by_name: dict[str, Any], groups: dict[str, str | None]) -> str | None:
    """The block a layer belongs to, from its qualified name (``layer1.0.conv1`` -> ``layer1.0``).

    Functional nodes (fx names without dots) join the block of their first input, so a
    residual ``add`` sits inside its block.
    """
    base = rec.name.split("#")[0]
    parts = base.split(".")
    if len(parts) < 2:
        if rec.module is None and rec.inputs and rec.kind not in ("input", "flatten", "linear", "softmax"):
            return groups.get(rec.inputs[0])
        return None
    for i, p in enumerate(parts[:3]):
        if p.isdigit():
            g = ".".join(parts[: i + 1])
            return g if g != base else parts[0]
    return parts[0]


def tidy_groups(layers: list[dict[str, Any]]) -> None:
    """A module that has sub-layers joins their block (``_conv_stem`` with ``_conv_stem.static_padding``);
    a block of one column is no block."""
    names = {entry["group"] for entry in layers if entry["group"]}
    for i, entry in enumerate(layers):
        if entry["group"] is None and entry["name"] in names:
            near = [layers[j]["group"] for j in (i - 1, i + 1) if 0 <= j < len(layers)]
            if entry["name"] in near:
                entry["group"] = entry["name"]
    count: dict[str, int] = {}
    for entry in layers:
        if entry["group"]:
            count[entry["group"]] = count.get(entry["group"], 0) + 1
    for entry in layers:
        if entry["group"] and count[entry["group"]] < 2:
            entry["group"] = None


def feeding_inputs(rec, by_name: dict[str, Any]) -> list[str]:
    """The records whose outputs this record actually consumed as tensors.

    fx can list a record that was read only for its shape (``x.view(x.size(0), -1)``);
    an edge drawn from it would be misleading, so inputs are kept only when their output
    tensor is one of the record's input tensors (all are kept when that cannot be told).
    """
    tensors = [t for t in (rec.inputs_tensors or []) if isinstance(t, torch.Tensor)]
    if not tensors:
        return list(rec.inputs)
    kept = [n for n in rec.inputs if n in by_name and any(by_name[n].output is t for t in tensors)]
    return kept or list(rec.inputs)


def label_of(rec) -> str:
    """A short caption under the layer name: 'conv 3×3 /2 dw', 'max 2×2 /2', 'relu' ..."""
    p = rec.params
    k = rec.kind
    if k == "conv":
        ks = "×".join(map(str, p.get("kernel_size", ())))
        s = p.get("stride", (1,))
        text = f"conv {ks}" + (f" /{s[0]}" if s and s[0] != 1 else "")
        g = p.get("groups", 1)
        if g and g > 1:
            text += " dw" if g == p.get("in_channels") == p.get("out_channels") else f" g{g}"
        return text
    if k in ("maxpool", "avgpool"):
        ks = "×".join(map(str, p.get("kernel_size", ())))
        s = p.get("stride", (1,))
        return f"{k[:3]} {ks}" + (f" /{s[0]}" if s and s[0] != 1 else "")
    if k.startswith("adaptive"):
        return f"{'avg' if 'avg' in k else 'max'} → {'×'.join(map(str, p.get('output_size', ())))}"
    return k


def connect_of(rec, by_name: dict[str, Any], inputs: list[str]) -> dict[str, Any]:
    """Which input channels feed an output channel: 'all', 'same', 'groups' or 'concat'."""
    k = rec.kind
    if k == "conv":
        g = int(rec.params.get("groups", 1) or 1)
        return {"mode": "groups", "groups": g} if g > 1 else {"mode": "all"}
    if k == "concat":
        dim = rec.params.get("dim", 1)
        if dim in (1, -3) and all(by_name[n].output is not None and by_name[n].output.dim() == 4 for n in inputs):
            offsets = [0]
            for n in inputs:
                offsets.append(offsets[-1] + int(by_name[n].output.shape[1]))
            return {"mode": "concat", "offsets": offsets}
        return {"mode": "all"}
    if k in ("linear", "flatten", "other", "input"):
        return {"mode": "all"}
    return {"mode": "same"}


def trace_json(te: TraceEntry) -> dict[str, Any]:
    """Every layer's name, kind, shape, inputs, label, block and value range, plus the prediction.

    A channels-last record (ConvNeXt's LayerNorm / Linear between permutes) is sent as the map it
    holds: ``shape`` (C, H, W) like its activation pages, ``layout: "BHWC"`` and ``stored_shape``
    its own (H, W, C); a permute between the layouts is marked ``relayout: true`` (it moves axes,
    so it is no stage's output)."""
    t = te.trace
    lay = te.layouts
    by_name = {r.name: r for r in t.layers}
    groups: dict[str, str | None] = {}
    layers = []
    gmin, gmax = np.inf, -np.inf
    for rec in t.layers:
        if not isinstance(rec.output, torch.Tensor) or rec.output.dim() < 2:
            continue
        arr = te.array(rec.name)
        inputs = [n for n in feeding_inputs(rec, by_name) if n in by_name]
        groups[rec.name] = group_of(rec, by_name, groups)
        lo, hi = float(arr.min()), float(arr.max())
        if arr.ndim == 3 and rec.kind != "input":
            gmin, gmax = min(gmin, lo), max(gmax, hi)
        layers.append(
            {
                "name": rec.name,
                "kind": rec.kind,
                "op": rec.op,
                "label": label_of(rec),
                "via": rec.via,
                "group": groups[rec.name],
                "inputs": inputs,
                "shape": list(arr.shape),
                "params": jsonable(rec.params),
                "connect": connect_of(rec, by_name, inputs),
                "stats": {"min": lo, "max": hi},
                "layout": lay.get(rec.name),
                **_layout_extras(rec, lay),
            }
        )
    shown = {entry["name"] for entry in layers}
    for entry in layers:
        entry["inputs"] = [n for n in entry["inputs"] if n in shown]
    tidy_groups(layers)
    return {
        "model": te.model_name,
        "image": te.image_id,
        "via": t.via,
        "layers": layers,
        "global": {"min": float(gmin), "max": float(gmax)} if np.isfinite(gmin) else None,
        "prediction": prediction_json(te),
    }


def _layout_extras(rec, lay: dict[str, str]) -> dict[str, Any]:
    """``stored_shape`` of a channels-last record, ``relayout`` of a permute between layouts."""
    extras: dict[str, Any] = {}
    if lay.get(rec.name) == "BHWC":
        extras["stored_shape"] = list(rec.output.shape[1:])
    if is_relayout(rec, lay):
        extras["relayout"] = True
    return extras


def prediction_json(te: TraceEntry, k: int = TOP_CLASSES) -> dict[str, Any]:
    t = te.trace
    logits = t.logits
    if logits is None:
        return {"classes": 0, "top": []}
    top = t.top(k)[0]
    lg = logits[0].detach().float().cpu()
    n = int(lg.numel())
    return {
        "classes": n,
        "output_layer": t.layers[-1].name,
        "top": [{"index": i, "name": name, "prob": p, "logit": float(lg[i])} for i, name, p in top],
        # every unit's name in index order, so the output strip (index order) is labelled unit by unit
        "names": [te.model.class_name(i) for i in range(n)] if n <= MAX_NAMES else None,
    }


def summary_json(te: TraceEntry) -> dict[str, Any]:
    s = te.trace.summary()
    c, h, w = te.model.input_shape
    return {
        "model": te.model_name,
        "via": s.via,
        "input_shape": [c, h, w],
        "rows": [
            {
                "name": r.name,
                "kind": r.kind,
                "op": r.op,
                "shape": list(r.output_shape[1:]),
                "params": int(r.params),
                "macs": int(r.macs),
                "inputs": list(r.inputs),
            }
            for r in s.rows
        ],
        "total_params": int(s.total_params),
        "trainable_params": int(s.trainable_params),
        "total_macs": int(s.total_macs),
    }


def channel_stats(arr: np.ndarray) -> dict[str, list[float]]:
    """Per-channel min and max of a (C, H, W) page (for the 'unit' colour range)."""
    if arr.ndim != 3 or arr.shape[0] == 0:
        return {}
    flat = arr.reshape(arr.shape[0], -1)
    return {"ch_min": flat.min(1).astype(float).tolist(), "ch_max": flat.max(1).astype(float).tolist()}
