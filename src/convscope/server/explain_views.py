"""The "Why?" panel's computations: attributions, their metrics and the sanity check, as JSON.

Glue only: every number comes from :mod:`convscope.explain` run on the traced input of
(model, image), every picture from :mod:`convscope.render.heatmap`. The page draws
nothing it computes itself.

Method options on the page are the CLI's defaults (``convscope attribute``): Integrated
Gradients with 32 steps, SmoothGrad with 16 samples and seed 0, occlusion with a window
of 1/8 of the input side and half of it as stride; deletion / insertion curves with 32
steps (:data:`METRIC_STEPS`).
"""

from __future__ import annotations

import base64
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import ConvscopeError, NotFound
from ..explain import Attribution, Method, confidence_change, deletion, get_method, insertion, method_info, sanity_check
from ..explain.interpret import reading_message, sanity_message
from ..explain.layers import default_of
from ..lru import LRU
from ..probe import is_spatial, layer_calls
from ..render import png_bytes
from ..render.heatmap import heatmap_rgb, overlay, sanity_figure
from .encoding import pack_map
from .registry import TraceEntry

Progress = Callable[[int, int], None]
METRIC_STEPS = 32
CLIP_PERCENTILE = 99.5  # render.heatmap's default: the colour range tops out at this percentile of |map|


def data_url(picture: np.ndarray) -> str:
    """A uint8 picture as a ``data:image/png;base64,...`` URL (travels inside JSON)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(picture)).decode()


def check_method(name: str) -> type[Method]:
    """The method class for ``name``; an unknown name is 404 with the choices."""
    try:
        return get_method(name)
    except ConvscopeError as exc:
        raise NotFound(str(exc)) from None


_LAYERS: weakref.WeakKeyDictionary[torch.nn.Module, tuple[list[dict[str, Any]], str | None]] = (
    weakref.WeakKeyDictionary()
)
_LAYERS_LOCK = threading.Lock()


def layer_menu(te: TraceEntry) -> list[dict[str, Any]]:
    """The layer menu: the spatial layer calls (:func:`convscope.probe.spatial_layers`) as
    ``{name, shape}`` (``name#k`` for a later call of a shared module)."""
    return _menu(te)[0]


def menu_default(te: TraceEntry) -> str | None:
    """The methods' default layer (:func:`convscope.explain.layers.default_of`, the one rule)."""
    return _menu(te)[1]


def _menu(te: TraceEntry) -> tuple[list[dict[str, Any]], str | None]:
    """The menu and its default from one dry run per model (the input size is fixed by the
    model's preprocessing)."""
    net = te.model.net
    with _LAYERS_LOCK:
        if net in _LAYERS:
            return _LAYERS[net]
    calls = layer_calls(net, te.x)
    default = default_of(net, calls)
    menu = (
        [{"name": str(ref), "shape": list(ref.shape[1:])} for ref in calls if is_spatial(ref)],
        None if default is None else str(default),
    )
    with _LAYERS_LOCK:
        _LAYERS[net] = menu
    return menu


def class_count(te: TraceEntry) -> int:
    logits = te.trace.logits
    if logits is None or logits.dim() != 2:
        raise ConvscopeError(f"model {te.model_name!r} does not output class scores: the Why? panel explains classes")
    return int(logits.shape[1])


def options_json(te: TraceEntry) -> dict[str, Any]:
    """What the panel's menus offer: methods, spatial layers with the default, classes, the prediction."""
    n = class_count(te)
    layers = layer_menu(te)
    if not layers:
        raise ConvscopeError(f"model {te.model_name!r} has no layer with a spatial output to explain")
    default = menu_default(te) or layers[-1]["name"]  # what resolve_layer(net, None, x) picks
    predicted = int(te.trace.logits[0].argmax())
    return {
        "model": te.model_name,
        "image": te.image_id,
        "methods": method_info(),
        "default_method": "gradcam",
        "layers": layers,
        "default_layer": default,
        "predicted": predicted,
        "classes": [te.model.class_name(i) for i in range(n)],
    }


def check_request(
    te: TraceEntry, method: str, layer: str | None, target: int | None
) -> tuple[type[Method], str | None, int]:
    """Validate (method, layer, class) for this trace: unknown names are 404, bad values 400."""
    cls = check_method(method)
    n = class_count(te)
    if target is None:
        target = int(te.trace.logits[0].argmax())
    if not 0 <= target < n:
        raise ConvscopeError(f"class {target} is out of range: model {te.model_name!r} has {n} classes (0..{n - 1})")
    if not cls.uses_layer:
        return cls, None, target
    if layer:
        names = {entry["name"] for entry in layer_menu(te)}
        if layer not in names:
            if layer in dict(te.model.net.named_modules()):
                raise ConvscopeError(f"layer {layer!r} has no spatial (C, h, w) output to explain")
            raise NotFound(f"model {te.model_name!r} has no layer {layer!r}")
    return cls, layer or None, target


class Explainers:
    """Method objects per (model, method, layer), kept so a method's layer lookup and BatchNorm-folded
    copy are built once, not per request (a small LRU; the objects are thread-safe)."""

    def __init__(self, size: int = 8) -> None:
        self._items: LRU[tuple, Method] = LRU(size)

    def get(self, te: TraceEntry, cls: type[Method], layer: str | None) -> Method:
        # the constructor's defaults: the same picture as Python and the CLI
        return self._items.get_or_make((te.model_name, id(te.model.net), cls.name, layer), lambda: cls(te.model, layer))


def _phases(progress: Progress, weights: list[float]) -> list[Progress]:
    """Split one progress bar (0..1000) into consecutive phases of the given weights."""
    edges = np.concatenate([[0.0], np.cumsum(weights) / sum(weights)])

    def phase(i: int) -> Progress:
        def report(done: int, total: int) -> None:
            frac = done / total if total else 0.0
            progress(int(round(1000 * (edges[i] + frac * (edges[i + 1] - edges[i])))), 1000)

        return report

    return [phase(i) for i in range(len(weights))]


def attribution_json(
    te: TraceEntry,
    explainers: Explainers,
    method: str,
    layer: str | None = None,
    target: int | None = None,
    metrics: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run one method on the traced input and describe the result (cached per trace).

    Returns the heatmap at the input's resolution (``map``: base64 float32 with min/max),
    the raw map's shape, the overlay and the heatmap alone as PNG data URLs with the colour
    range they were drawn with, and with ``metrics`` the deletion / insertion curves and
    their AUC and the Average Drop / Increase in Confidence. The attribution and the
    metrics are cached separately, so asking for the metrics after the map costs only them.
    """
    cls, layer, target = check_request(te, method, layer, target)
    progress = progress or (lambda done, total: None)
    key = (cls.name, layer, target)
    p_attr, p_del, p_ins = _phases(progress, [2.0, 1.0, 1.0] if metrics else [1.0, 0.0, 0.0])

    def attribute() -> tuple[Attribution, dict[str, Any]]:
        result = explainers.get(te, cls, layer)(te.x, target, progress=p_attr)
        return result, _map_json(te, cls, result, target)

    result, out = te.attributions.get_or_make(key, attribute)
    if metrics:
        found = te.attribution_metrics.get_or_make(key, lambda: _metrics_json(te, result, p_del, p_ins))
        out = {**out, "metrics": found}
    progress(1000, 1000)
    return out


def _map_json(te: TraceEntry, cls: type[Method], result: Attribution, target: int) -> dict[str, Any]:
    values = result.numpy()[0]
    image = te.model.to_display(te.x[0])
    scale = "diverging" if values.min() < 0 else "heat"
    top = float(np.percentile(np.abs(values), CLIP_PERCENTILE)) or float(np.abs(values).max()) or 1.0
    probs = te.trace.logits[0].detach().float().softmax(-1)
    return {
        "model": te.model_name,
        "image": te.image_id,
        "method": cls.name,
        "label": cls.label,
        "family": cls.family,
        "uses_layer": cls.uses_layer,
        "layer": result.layer if cls.uses_layer else None,
        "target": target,
        "target_name": te.model.class_name(target),
        "probability": float(probs[target]),
        "predicted": int(probs.argmax()),
        "map": pack_map(values),
        "raw_shape": list(result.raw.shape[1:]),
        "scale": scale,
        "range": [-top if scale == "diverging" else 0.0, top],
        "overlay": data_url(overlay(image, values)),
        "heatmap": data_url(heatmap_rgb(values)),
    }


def _metrics_json(te: TraceEntry, result: Attribution, p_del: Progress, p_ins: Progress) -> dict[str, Any]:
    d = deletion(te.model, te.x, result, steps=METRIC_STEPS, progress=p_del)
    i = insertion(te.model, te.x, result, steps=METRIC_STEPS, progress=p_ins)
    c = confidence_change(te.model, te.x, result)
    fractions, deleted, inserted = d.fractions.tolist(), d.scores[0].tolist(), i.scores[0].tolist()
    reading = reading_message(fractions, deleted, inserted)
    return {
        "steps": METRIC_STEPS,
        "fractions": fractions,
        "deletion": deleted,
        "insertion": inserted,
        "reading": reading["text"],
        "reading_i18n": reading,
        "deletion_auc": float(d.auc[0]),
        "insertion_auc": float(i.auc[0]),
        "average_drop": c.average_drop,
        "increase_in_confidence": c.increase_in_confidence,
        "original_probability": float(c.original[0]),
        "explained_probability": float(c.explained[0]),
    }


def sanity_json(
    te: TraceEntry,
    methods: list[str],
    layer: str | None = None,
    target: int | None = None,
    max_steps: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The cascading-randomisation test (:func:`convscope.explain.sanity_check`) as a table, a figure
    and per method a pass/fail verdict with its reason (:func:`_verdict_json`)."""
    names = []
    for m in methods:
        cls, lay, target = check_request(te, m, layer, target)
        names.append(cls.name)
        layer = lay if cls.uses_layer else layer
    if not names:
        raise ConvscopeError("the sanity check needs at least one method")
    if max_steps is not None and max_steps < 1:
        raise ConvscopeError(f"max_steps must be at least 1, not {max_steps}")
    report = sanity_check(
        te.model, te.x, methods=names, target=target, layer=layer, max_steps=max_steps, progress=progress
    )
    image = te.model.to_display(te.x[0])
    spearman = {m: report.spearman[m][:, 0].numpy() for m in names}
    ssim = {m: report.ssim[m][:, 0].numpy() for m in names}
    maps = {m: report.maps[m][:, 0].cpu().numpy() for m in names}
    figure = sanity_figure(image, report.steps, maps, spearman, ssim, words=False)  # the page writes its words
    return {
        "model": te.model_name,
        "image": te.image_id,
        "target": target,
        "target_name": te.model.class_name(target),
        "layer": layer,
        "methods": names,
        "steps": ["(original)"] + report.steps,
        "spearman": {m: [_num(v) for v in spearman[m]] for m in names},
        "ssim": {m: [_num(v) for v in ssim[m]] for m in names},
        "figure": data_url(figure),
        "verdicts": [_verdict_json(report, m) for m in report.methods],
    }


def _verdict_json(report: Any, method: str) -> dict[str, Any]:
    """One method's verdict: ``reason`` in English (as :attr:`SanityReport.verdicts` has it) and
    ``reason_i18n``, the same sentence as a catalogue message for the page."""
    passed, reason = sanity_message(report, method)
    return {"method": method, "passed": passed, "reason": reason["text"], "reason_i18n": reason}


def _num(v: float) -> float | None:
    """JSON has no NaN (a constant map has no rank correlation): None instead."""
    v = float(v)
    return v if np.isfinite(v) else None


__all__ = ["Explainers", "attribution_json", "check_method", "layer_menu", "options_json", "sanity_json"]
