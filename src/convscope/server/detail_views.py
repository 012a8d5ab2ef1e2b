"""The JSON behind each detail view: one layer, one channel (and one position).

Every number comes from the trace record (its output) or from the trace's detail
functions (:mod:`convscope.trace.details`); this module only picks the page of input
channels to send, converts tensors to compact maps, and names things for the page.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import ConvscopeError, NotFound
from ..i18n import message
from ..trace import details
from ..trace.records import ELEMENTWISE_KINDS, POOL_KINDS
from .encoding import pack_map
from .registry import TraceEntry

MAX_SUMS = 4096  # a conv position's per-input-channel sums sent in full up to this many inputs

# Plain text (Unicode superscripts, no markup): the page shows every string it is sent as text.
FORMULAS = {
    "relu": ("ReLU", "ReLU(x) = max(0, x)"),
    "relu6": ("ReLU6", "ReLU6(x) = min(max(0, x), 6)"),
    "silu": ("SiLU", "SiLU(x) = x · σ(x) = x / (1 + e⁻ˣ)"),
    "sigmoid": ("σ", "σ(x) = 1 / (1 + e⁻ˣ)"),
    "tanh": ("tanh", "tanh(x) = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ)"),
}
TOP_CONTRIBUTIONS = 24
TOP_SOFTMAX = 10


def _f(v: Any) -> float | None:
    if v is None:
        return None
    return float(v.item() if isinstance(v, torch.Tensor) else v)


def _out(rec, channel: int | None, y: int | None = None, x: int | None = None) -> torch.Tensor:
    o = rec.output[0].detach()
    if channel is not None:
        if channel >= o.shape[0]:
            raise NotFound(f"layer {rec.name!r} has {o.shape[0]} channels, no channel {channel}")
        o = o[channel]
    if y is not None:
        o = o[y, x]
    return o


def _position(rec, y: int | None, x: int | None, size: tuple[int, int] | None = None) -> tuple[int, int]:
    h, w = size or rec.output.shape[-2:]
    y = 0 if y is None else y
    x = 0 if x is None else x
    if not (0 <= y < h and 0 <= x < w):
        raise ConvscopeError(f"position ({y}, {x}) is outside {rec.name!r}'s {h}x{w} output")
    return y, x


def _said(key: str, **params: Any) -> dict[str, Any]:
    """A sentence of a detail view as {key, params, text}: the page shows it in the reader's
    language (catalogue section detail.server), the English text stays in the plain fields."""
    return message(f"detail.server.{key}", **params)


def _head(rec, channel: int | None, what: str | dict[str, Any]) -> dict[str, Any]:
    """``what`` says what the layer does: a sentence (_said), or the module's op name (data)."""
    title = f"{rec.name}" + (f" · channel {channel}" if channel is not None else "")
    feeds = f" · reads {', '.join(rec.inputs)}" if rec.inputs else ""
    return {
        "layer": rec.name,
        "kind": rec.kind,
        "channel": channel,
        "title": title,
        "subtitle": f"{what['text'] if isinstance(what, dict) else what}{feeds}",
        "what": what,
        "reads": list(rec.inputs),
        "input_layer": rec.inputs[0] if rec.inputs else None,
    }


def detail(
    te: TraceEntry,
    layer: str,
    channel: int = 0,
    y: int | None = None,
    x: int | None = None,
    start: int = 0,
    count: int = 8,
    maps: bool = True,
) -> dict[str, Any]:
    """Dispatch on the record's kind to the matching view."""
    rec = te.record(layer)
    if rec.output is None:
        raise NotFound(f"layer {layer!r} has no output to show")
    spatial = rec.output.dim() == 4
    shaped = shape_view(te, rec, channel, y, x)
    if shaped is not None:
        return shaped
    if rec.kind == "conv":
        return conv_view(rec, channel, y, x, start, count, maps)
    if rec.kind in POOL_KINDS and spatial:
        return pool_view(rec, channel, y, x, maps)
    if rec.kind == "softmax":
        return softmax_view(te, channel)
    if rec.kind == "linear":
        return linear_view(te, rec, channel, y, x)
    if rec.kind == "flatten":
        return flatten_view(te, rec, channel)
    if rec.kind == "batchnorm":
        return batchnorm_view(rec, channel, y, x)
    if rec.kind in ELEMENTWISE_KINDS:
        return activation_view(rec, channel, y, x, channels_last=te.layouts.get(rec.name) == "BHWC")
    return generic_view(te, rec, channel, y, x)


# -- convolution --------------------------------------------------------------------------
def conv_position_json(rec, channel: int, y: int, x: int, start: int, count: int) -> dict[str, Any]:
    pos = details.conv_position(rec, channel, y, x)
    inside = pos.inside
    kh, kw = pos.kernels.shape[-2:]
    chans = []
    n = len(pos.input_channels)
    for i in range(start, min(n, start + count)):
        patch = [[float(pos.patches[i, a, b]) if inside[a, b] else None for b in range(kw)] for a in range(kh)]
        chans.append(
            {
                "index": pos.input_channels[i],
                "patch": patch,
                "kernel": pos.kernels[i].tolist(),
                "products": pos.products[i].tolist(),
                "sum": float(pos.channel_sums[i]),
            }
        )
    rows, cols = pos.rows, pos.cols
    return {
        "y": pos.y,
        "x": pos.x,
        "channels": chans,
        "total_channels": n,
        "total": pos.total,
        "channel_sums": pos.channel_sums.tolist() if n <= MAX_SUMS else None,
        "bias": pos.bias,
        "value": pos.output,
        "trace_value": float(_out(rec, channel, pos.y, pos.x)),
        "window": {
            "top": int(rows[0]),
            "left": int(cols[0]),
            "height": int(rows[-1] - rows[0]) + 1,
            "width": int(cols[-1] - cols[0]) + 1,
        },
    }


def conv_view(rec, channel: int, y: int | None, x: int | None, start: int, count: int, maps: bool) -> dict[str, Any]:
    geo = details.conv_geometry(rec)
    y, x = _position(rec, y, x)
    out: dict[str, Any] = {"view": "conv"}
    if not maps:
        return {**out, "position": conv_position_json(rec, channel, y, x, start, count)}
    ch = details.conv_channel(rec, channel)
    n = len(ch.input_channels)
    if start >= n:
        raise ConvscopeError(f"{rec.name!r} channel {channel} reads {n} input channels; no page starts at {start}")
    page = range(start, min(n, start + count))
    kh, kw = geo["kernel"]
    g = geo["groups"]
    what = (
        f"convolution {kh}×{kw}, stride {'×'.join(map(str, geo['stride']))}, "
        f"dilation {'×'.join(map(str, geo['dilation']))}, padding {list(geo['pad'])}"
        + (f", {g} groups" if g > 1 else "")
    )
    return {
        **out,
        **_head(rec, ch.channel, what),
        "params": {
            "kernel_size": [kh, kw],
            "stride": list(geo["stride"]),
            "dilation": list(geo["dilation"]),
            "pad": list(geo["pad"]),
            "groups": g,
        },
        "page": {"start": start, "count": count, "total": n},
        "channels": [
            {
                "index": ch.input_channels[i],
                "input": pack_map(ch.inputs[i]),
                "kernel": ch.kernels[i].tolist(),
                "intermediate": pack_map(ch.intermediate[i]),
            }
            for i in page
        ],
        "sum": pack_map(ch.sum),
        "bias": ch.bias if rec.bias is not None else None,
        "output": pack_map(ch.output),
        "position": conv_position_json(rec, ch.channel, y, x, start, count),
    }


# -- pooling --------------------------------------------------------------------------------
def pool_position_json(rec, channel: int, y: int, x: int) -> dict[str, Any]:
    win = details.pool_window(rec, channel, y, x)
    inside = win.inside
    kh, kw = win.values.shape
    values = [[float(win.values[a, b]) if inside[a, b] else None for b in range(kw)] for a in range(kh)]
    if win.op == "max":
        formula = _said("pool_max_over", n=int(inside.sum()))
    else:
        formula = _said("pool_sum_over", divisor=win.divisor, sum=f"{float(win.values.sum()):.6g}")
    return {
        "y": win.y,
        "x": win.x,
        "values": values,
        "argmax": list(win.argmax) if win.argmax else None,
        "divisor": win.divisor,
        "value": win.value,
        "trace_value": float(_out(rec, channel, win.y, win.x)),
        "formula": formula["text"],
        "formula_i18n": formula,
        "window": {"top": int(win.rows[0]), "left": int(win.cols[0]), "height": kh, "width": kw},
    }


def pool_view(rec, channel: int, y: int | None, x: int | None, maps: bool) -> dict[str, Any]:
    y, x = _position(rec, y, x)
    pos = pool_position_json(rec, channel, y, x)
    if not maps:
        return {"view": "pool", "position": pos}
    p = rec.params
    op = "max" if "max" in rec.kind else "avg"
    if rec.kind.startswith("adaptive"):
        size = "×".join(map(str, rec.output.shape[-2:]))
        what = _said(f"adaptive_{op}_pool", size=size)
        formula = _said(f"adaptive_{op}_formula", size=size)
    else:
        kernel = "×".join(map(str, p["kernel_size"]))
        what = _said(
            f"{op}_pool", kernel=kernel, stride="×".join(map(str, p["stride"])), pad=str(list(p.get("padding", (0, 0))))
        )
        formula = _said(f"{op}_pool_formula", kernel=kernel)
    return {
        "view": "pool",
        **_head(rec, channel, what),
        "formula": formula["text"],
        "formula_i18n": formula,
        "input": pack_map(rec.input[0, channel]),
        "output": pack_map(_out(rec, channel)),
        "position": pos,
    }


# -- element-wise, batchnorm, and the rest ---------------------------------------------------
def _inout_maps(rec, channel: int | None) -> dict[str, Any]:
    spatial = rec.output.dim() == 4
    c = channel if spatial else None
    inp = rec.input[0].detach()
    return {"input": pack_map(inp[c] if c is not None else inp), "output": pack_map(_out(rec, c)), "channel": c}


def activation_view(rec, channel: int, y: int | None, x: int | None, channels_last: bool = False) -> dict[str, Any]:
    """An element-wise layer's input, output and formula (a channels-last one drawn as maps)."""
    act = details.activation(rec)
    if channels_last:
        act.input, act.output = act.input.permute(2, 0, 1), act.output.permute(2, 0, 1)
    fname, formula = FORMULAS.get(rec.kind, (rec.op, None))
    said = None
    if formula is None:
        said = _said("elementwise", op=rec.op, formula=act.formula) if act.formula else _said("itself", op=rec.op)
        formula = said["text"]
    spatial = act.output.dim() == 3
    c = channel if spatial else None
    if c is not None and c >= act.output.shape[0]:
        raise NotFound(f"layer {rec.name!r} has {act.output.shape[0]} channels, no channel {c}")
    d = {
        "view": "activation",
        **_head(rec, c, _said("elementwise_what", op=rec.op)),
        "fname": fname,
        "formula": formula,
        "formula_i18n": said,
        "channel": c,
        "input": pack_map(act.input[c] if spatial else act.input),
        "output": pack_map(act.output[c] if spatial else act.output),
    }
    if spatial:
        yy, xx = _position(rec, y, x, tuple(act.output.shape[-2:]))
        d["position"] = {"y": yy, "x": xx}
    else:
        d["position"] = {"y": channel, "x": 0}
    return d


def batchnorm_view(rec, channel: int, y: int | None, x: int | None) -> dict[str, Any]:
    bn = details.batchnorm(rec)
    c = channel
    if c >= len(bn.scale):
        raise NotFound(f"layer {rec.name!r} has {len(bn.scale)} channels, no channel {c}")
    spatial = rec.output.dim() == 4
    d = {
        "view": "batchnorm",
        **_head(rec, c, _said("batchnorm")),
        **_inout_maps(rec, c),
        "mean": _f(bn.mean[c]),
        "var": _f(bn.var[c]),
        "eps": _f(bn.eps),
        "gamma": _f(bn.gamma[c]) if bn.gamma is not None else 1.0,
        "beta": _f(bn.beta[c]) if bn.beta is not None else 0.0,
        "scale": _f(bn.scale[c]),
        "shift": _f(bn.shift[c]),
    }
    d["position"] = {"y": _position(rec, y, x)[0], "x": _position(rec, y, x)[1]} if spatial else {"y": c, "x": 0}
    return d


def generic_view(te: TraceEntry, rec, channel: int, y: int | None, x: int | None) -> dict[str, Any]:
    spatial = rec.output.dim() == 4
    c = channel if spatial else None
    symbols = {"add": "+", "mul": "×", "concat": "‖"}
    inputs = []
    for name, t in zip(rec.inputs, rec.inputs_tensors):
        if not isinstance(t, torch.Tensor) or t.dim() != rec.output.dim():
            continue
        t0 = t[0].detach()
        ic = c
        if rec.kind == "concat" and c is not None:
            ic = None
        if ic is not None and ic < t0.shape[0]:
            inputs.append({"name": name, "channel": ic, "map": pack_map(t0[ic])})
        elif not spatial:
            inputs.append({"name": name, "channel": None, "map": pack_map(t0)})
    if rec.kind == "concat" and c is not None:
        offset = 0
        for name, t in zip(rec.inputs, rec.inputs_tensors):
            n = t.shape[1]
            if offset <= c < offset + n:
                inputs = [{"name": name, "channel": c - offset, "map": pack_map(t[0, c - offset])}]
                break
            offset += n
    said = {
        "add": lambda: _said("add", terms=" + ".join(rec.inputs)),
        "mul": lambda: _said("mul", terms=" × ".join(rec.inputs)),
        "concat": lambda: _said("concat", terms=" ‖ ".join(rec.inputs)),
        "dropout": lambda: _said("dropout"),
        "identity": lambda: {"key": None, "params": {}, "text": "output = input"},
        "input": lambda: _input_formula(te),
        "pad": lambda: _said("pad", pad=str(list(rec.params.get("pad", ())))),
    }.get(rec.kind)
    formula = said() if said else None
    d = {
        "view": "generic",
        **_head(rec, c, rec.op),
        "formula": formula["text"] if formula else None,
        "formula_i18n": formula if formula and formula["key"] else None,
        "op_symbol": symbols.get(rec.kind, ","),
        "inputs": inputs,
        "output": pack_map(_out(rec, c)),
    }
    if spatial:
        yy, xx = _position(rec, y, x)
        d["position"] = {"y": yy, "x": xx}
    return d


def _input_formula(te: TraceEntry) -> dict[str, Any]:
    """How pixels became the network's input, with the model's own mean and std."""
    p = te.model.preprocessing
    mean = ", ".join(f"{m:g}" for m in p.mean)
    std = ", ".join(f"{v:g}" for v in p.std)
    h, w = p.size
    return _said("input", mean=mean, std=std, resize=p.resize, h=h, w=w, channels=p.channels)


# -- LayerNorm, axis moves, means and broadcast products (ConvNeXt, squeeze-excitation) ------------
def _as_map(te: TraceEntry, name: str | None, t: torch.Tensor) -> torch.Tensor:
    """One item's tensor as the page draws it: a channels-last (H, W, C) record as (C, H, W)."""
    return t.permute(2, 0, 1) if name is not None and te.layouts.get(name) == "BHWC" and t.dim() == 3 else t


def _map_of(te: TraceEntry, name: str | None, t: torch.Tensor, channel: int) -> torch.Tensor:
    m = _as_map(te, name, t[0].detach())
    return m[min(channel, m.shape[0] - 1)] if m.dim() == 3 else m


def shape_view(te: TraceEntry, rec, channel: int, y: int | None, x: int | None) -> dict[str, Any] | None:
    """A generic payload for LayerNorm, permute / view / reshape, mean and broadcast products, with
    ``detail`` (the recomputed arithmetic) and ``formula`` in words; None for other layers."""
    op = rec.op.split(".")[-1]
    inputs = [
        {"name": n, "channel": channel, "map": pack_map(_map_of(te, n, t, channel))}
        for n, t in zip(rec.inputs, rec.inputs_tensors)
        if isinstance(t, torch.Tensor) and t.dim() >= 2
    ]
    yy, xx = (y or 0), (x or 0)
    if isinstance(rec.module, torch.nn.LayerNorm):
        position = (yy, xx) if rec.input.dim() == 4 else ()
        ln = details.layer_norm(rec, position)
        numbers = {"n": ln.input.numel(), "mean": f"{ln.mean:.6g}", "var": f"{ln.var:.6g}", "eps": f"{ln.eps:g}"}
        formula = _said("layernorm_at", y=yy, x=xx, **numbers) if position else _said("layernorm", **numbers)
        d = ln.to_dict()
    elif op in ("permute", "view", "reshape", "transpose", "contiguous", "flatten") and rec.kind != "flatten":
        rl = details.relayout(rec)
        axes = {"op": op, "a": str(rl.input_shape), "b": str(rl.output_shape)}
        formula = _said("relayout_dims", dims=str(rl.dims[1:]), **axes) if rl.dims else _said("relayout", **axes)
        d = rl.to_dict()
    elif op == "mean":
        red = details.reduction(rec)
        formula = _said("mean", dims=str(red.dims), n=red.count)
        d = {k: v for k, v in red.to_dict().items() if k not in ("recomputed", "output")}
        d["max_difference"] = float((red.recomputed - red.output).abs().max())
    elif rec.kind == "mul" and (
        len(rec.inputs_tensors) < 2 or any(t.shape != rec.output.shape for t in rec.inputs_tensors)
    ):
        bc = details.broadcast_product(rec, details.node_parameters(te.model.net, rec))
        formula = {  # the repeated operands' list has no sentence of its own yet: English only
            "key": None,
            "params": {},
            "text": "output = "
            + " × ".join(bc.operands)
            + " ("
            + "; ".join(f"{n} repeated along axes {r}" for n, r in zip(bc.operands, bc.repeated) if r)
            + ")",
        }
        d = {k: v for k, v in bc.to_dict().items() if k not in ("recomputed", "output")}
        d["max_difference"] = float((bc.recomputed - bc.output).abs().max())
    else:
        return None
    if "recomputed" in d and "output" in d:
        d["max_difference"] = max(abs(a - b) for a, b in zip(d["recomputed"], d["output"])) if d["recomputed"] else 0.0
    out = _map_of(te, rec.name, rec.output, channel)
    payload = {
        "view": "generic",
        **_head(rec, channel, rec.op),
        "formula": formula["text"],
        "formula_i18n": formula if formula["key"] else None,
        "op_symbol": ",",
        "inputs": inputs,
        "output": pack_map(out),
        "detail": d,
        "layout": te.layouts.get(rec.name),
    }
    if out.dim() == 2:
        payload["position"] = {"y": min(yy, out.shape[0] - 1), "x": min(xx, out.shape[1] - 1)}
    return payload


# -- the classifier head ---------------------------------------------------------------------
def flatten_view(te: TraceEntry, rec, unit: int) -> dict[str, Any]:
    src = rec.input[0]
    n = rec.output[0].numel()
    if unit >= n:
        raise NotFound(f"layer {rec.name!r} has {n} units, no unit {unit}")
    where = details.flatten_index(rec, unit)
    d = {
        "view": "flatten",
        **_head(rec, None, _said("flatten")),
        "unit": unit,
        "source": list(where),
        "input_shape": list(src.shape),
        "value": float(rec.output[0].reshape(-1)[unit]),
    }
    d["title"] = f"{rec.name} · unit {unit}"
    if src.dim() == 3:
        d["input"] = pack_map(src[where[0]])
    return d


def linear_view(te: TraceEntry, rec, unit: int, y: int | None = None, x: int | None = None) -> dict[str, Any]:
    """One output unit's contributions; a Linear at every position of a (B, H, W, C) input at (y, x)."""
    position = (y or 0, x or 0) if rec.input.dim() == 4 else None
    lin = details.linear(rec, position=position)
    n_out = lin.output.numel()
    if not 0 <= unit < n_out:
        raise NotFound(f"layer {rec.name!r} has {n_out} units, no unit {unit}")
    best = details.top_contributions(lin, unit, TOP_CONTRIBUTIONS)
    source_rec = te.trace[rec.inputs[0]] if rec.inputs else None
    flat_src = source_rec if source_rec is not None and source_rec.kind == "flatten" else None
    top = []
    for i, w, x, product in zip(
        best.indices.tolist(), best.weights.tolist(), best.inputs.tolist(), best.products.tolist()
    ):
        entry = {"index": i, "w": w, "x": x, "product": product}
        if flat_src is not None and flat_src.input.dim() == 4:
            entry["source"] = list(details.flatten_index(flat_src, i))
        top.append(entry)
    d = {
        "view": "linear",
        **_head(rec, None, _said("linear", n=best.count, m=rec.output.shape[-1])),
        "unit": unit,
        "inputs": best.count,
        "top": top,
        "positive": best.positive,
        "negative": best.negative,
        "bias": float(lin.bias[unit]) if rec.bias is not None else None,
        "sum": float(lin.sums[unit]),
        "value": float(lin.output[unit]),
        "trace_value": float(rec.output[0][position][unit] if position else rec.output[0, unit]),
        "source_layer": flat_src.inputs[0] if flat_src is not None and flat_src.inputs else None,
    }
    d["title"] = f"{rec.name} · unit {unit}" + (
        f" (class {te.model.class_name(unit)})" if rec is te.trace.layers[-1] else ""
    )
    if rec is te.trace.layers[-1]:
        d["class_name"] = te.model.class_name(unit)
    if position is not None:
        d["position"] = {"y": position[0], "x": position[1]}
        d["title"] += f" at ({position[0]}, {position[1]})"
    return d


def softmax_view(te: TraceEntry, selected: int | None = None) -> dict[str, Any]:
    t = te.trace
    logits = t.logits
    if logits is None:
        raise ConvscopeError(f"model {te.model_name!r} does not output class scores")
    sm = details.softmax(logits[0])
    probs = sm.probs
    order = probs.argsort(descending=True)[:TOP_SOFTMAX].tolist()
    if selected is not None and selected not in order:
        if not 0 <= selected < probs.numel():
            raise NotFound(f"model {te.model_name!r} has {probs.numel()} classes, no class {selected}")
        order.append(selected)
    rows = [
        {
            "index": i,
            "name": te.model.class_name(i),
            "logit": float(sm.logits[i]),
            "exp": float(sm.exp[i]),
            "prob": float(probs[i]),
        }
        for i in order
    ]
    rest = details.softmax_rest(sm, order)
    return {
        "view": "softmax",
        "layer": t.layers[-1].name,
        "title": "class scores: softmax",
        "subtitle": f"{probs.numel()} classes · logits from {t.layers[-1].name}",
        "classes": int(probs.numel()),
        "rows": rows,
        "rest": rest.to_dict() if rest is not None else None,
        "sum_exp": float(sm.sum),
        "shift": float(sm.shift),
        "selected": selected if selected is not None else order[0],
    }
