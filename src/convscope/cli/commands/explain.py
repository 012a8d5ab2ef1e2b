"""``convscope explain IMAGE --model SPEC --out DIR``: one image through one model, on disk.

Prints the top-5 classes, then writes to DIR:

* ``prediction.png``: the pixels the network saw beside its top-5 bars;
* ``layers/NNN_<layer>.png``: every layer's activation maps (one tile per channel,
  at most ``--max-channels``), 1-D layers as bars or a colour strip, and the softmax
  (computed from the logits when the net itself ends before it);
* ``kernels/<layer>.png``: every convolution's kernels;
* ``trace.json``: :meth:`Trace.to_json` (layers, shapes, hyper-parameters, statistics);
* ``index.html``: a static one-page overview linking all of the above (no network).

Colour ranges: ``--range unit`` (each channel its own), ``layer`` or ``global`` (one
range over every red-blue layer of the trace).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import ConvscopeError
from ..common import (
    add_device_argument,
    add_image_arguments,
    add_out_argument,
    add_progress_argument,
    counted,
    description,
    load_model_from_args,
)

if TYPE_CHECKING:
    import numpy as np

_PASS_THROUGH = frozenset({"pad", "identity", "dropout"})  # kinds that keep the picture as it is
THUMB_CHANNELS = 6
FIXES = {  # what to do about each input warning (convscope.models.checks), on the command line
    "invert": "rerun with --invert",
    "photo-model": "pick a photo model, e.g. --model efficientnet-lite0",
}
THUMB_PIXELS = 64


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain",
        help="trace one image through a model and write per-layer figures, kernels and an HTML overview",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_image_arguments(p)
    add_out_argument(p, "convscope-explain", "folder for the figures, trace.json and index.html")
    p.add_argument("--layers", nargs="+", metavar="NAME", help="only these layers (qualified names, as in trace.json)")
    p.add_argument(
        "--range",
        dest="value_range",
        default="unit",
        choices=["unit", "layer", "global"],
        help="colour range: per channel (unit), per layer, or one over all layers (default: unit)",
    )
    p.add_argument(
        "--max-channels",
        type=int,
        default=64,
        metavar="N",
        help="draw at most N channels per layer figure, and kernels of at most min(N, 32) "
        "output x input channels (default: 64)",
    )
    p.add_argument("--format", choices=["png", "svg"], default="png", help="figure file format (default: png)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="how many classes to print (default: 5)")
    p.add_argument(
        "--invert",
        action="store_true",
        help="feed the image's negative (a dark digit drawn on white, into a net trained on white digits on black)",
    )
    add_device_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...trace import trace as trace_model

    if args.max_channels < 1 or args.top < 1:
        raise ConvscopeError("--max-channels and --top must be at least 1")
    from ...models.checks import input_warnings
    from ...models.preprocessing import open_image

    model = load_model_from_args(args)
    image = open_image(args.image)  # a non-image fails here, in one line
    if args.invert:
        from PIL import ImageOps

        image = ImageOps.invert(image.convert("RGB"))
    x = model.batch(model.preprocess(image))
    t = trace_model(model, x)
    if t.probs is None:
        raise ConvscopeError(
            f"{model.name}'s output {tuple(t.output.shape) if hasattr(t.output, 'shape') else ''} "
            "is not (batch, classes) scores, so there is nothing to rank"
        )
    records = [t[name] for name in args.layers] if args.layers else list(t.layers)  # a typo fails before any output
    top = [(name, p) for _, name, p in t.top(args.top)[0]]
    print(f"{Path(args.image).name} -> {model.name} ({len(t.layers)} layers traced via {t.via})")
    for i, (name, p) in enumerate(top, 1):
        print(f"{i:>3}. {name:<30} {p:8.2%}")
    for w in input_warnings(model, image):
        print(f"warning: {w['message']}: {FIXES[w['fix']]}")

    out = Path(args.out)
    written = write_explanation(
        t,
        records,
        out,
        mode=args.value_range,
        max_channels=args.max_channels,
        fmt=args.format,
        image_name=Path(args.image).name,
        top=top,
        progress=not args.no_progress,
    )
    print(
        f"wrote {counted(written['layers'], 'layer figure')}, {counted(written['kernels'], 'kernel figure')}, "
        f"trace.json and index.html to {out}"
    )
    return 0


# -- writing ----------------------------------------------------------------------------
def write_explanation(
    t,
    records,
    out: Path,
    mode: str = "unit",
    max_channels: int = 64,
    fmt: str = "png",
    image_name: str = "",
    top=(),
    progress: bool = True,
) -> dict[str, int]:
    """Write figures, kernels, ``trace.json`` and ``index.html`` for ``records`` of trace ``t``
    (``progress``: a bar over the layers on a terminal)."""
    import torch
    from tqdm import tqdm

    from ...io_utils import write_text_atomic
    from ...render.activations import scale_for_kind
    from ...render.figure_io import save_figure
    from ...render.grid import save_png
    from ...render.overview import OverviewLayer, overview_html
    from ...render.panel import prediction_panel
    from ...trace.serialize import jsonable, tensor_stats

    out.mkdir(parents=True, exist_ok=True)
    model = t.model
    probs = t.probs[0].detach().float().cpu().numpy()
    classes = [model.class_name(i) for i in range(probs.size)]
    save_figure(
        prediction_panel(
            model.to_display(t.input[0]), probs, classes, k=len(top) or 5, title=f"{image_name} through {model.name}"
        ),
        out / f"prediction.{fmt}",
    )
    global_range = _global_range(t) if mode == "global" else None
    width = len(str(len(t.layers)))
    index = {r.name: i for i, r in enumerate(t.layers)}
    entries: list[OverviewLayer] = []
    counts = {"layers": 0, "kernels": 0}
    for rec in tqdm(records, desc="figures", unit="layer", disable=None if progress else True, file=sys.stderr):
        if rec.output is None or not isinstance(rec.output, torch.Tensor):
            continue
        stem = f"{index[rec.name]:0{width}d}_{_safe(rec.name)}"
        arr = rec.output[0].detach().float().cpu().numpy()
        scale = scale_for_kind(rec.kind)
        entry = OverviewLayer(
            rec.name,
            rec.kind,
            tuple(rec.output.shape[1:]),
            op=rec.op,
            inputs=rec.inputs,
            params={k: v for k, v in jsonable(rec.params).items() if k != "pad"},
            param_count=rec.param_count,
            stats=tensor_stats(rec.output[:1]),
        )
        fig = _layer_figure(t, rec, arr, scale, mode, global_range, max_channels, classes)
        if fig is not None:
            entry.figure = f"layers/{stem}.{fmt}"
            save_figure(fig, out / entry.figure)
            counts["layers"] += 1
        thumb = _thumbnail(arr, scale, mode, global_range)
        if thumb is not None:
            entry.thumbnail = f"thumbs/{stem}.png"
            save_png(thumb, out / entry.thumbnail)
        if rec.kind == "conv" and rec.weight is not None and rec.weight.dim() == 4 and rec.first_call:
            from ...render.kernels import kernel_figure

            entry.kernels = f"kernels/{_safe(rec.owner or rec.name)}.{fmt}"
            w = rec.weight.detach().float().cpu().numpy()
            save_figure(
                kernel_figure(
                    w,
                    rec.name,
                    as_images=_reads_image(t, rec) and w.shape[1] in (1, 3),
                    max_out=min(max_channels, 32),
                    max_in=min(max_channels, 32),
                ),
                out / entry.kernels,
            )
            counts["kernels"] += 1
        entries.append(entry)
    if t.layers[-1].kind != "softmax" and (not records or records[-1] is t.layers[-1]):
        entries.append(_softmax_entry(probs, classes, out, fmt, len(t.layers), width))
        counts["layers"] += 1

    write_text_atomic(out / "trace.json", json.dumps(t.to_json(), indent=1))
    notes = [
        f"colour range: {mode}; at most {max_channels} channels per figure",
        f"traced via {t.via}" + (f" (torch.fx could not trace it: {t.fx_error})" if t.fx_error else ""),
    ]
    page = overview_html(
        f"{model.name}: {image_name}",
        entries,
        subtitle=repr(t),
        panel=f"prediction.{fmt}",
        predictions=list(top),
        notes=notes,
        links=[("trace.json", "trace.json")],
    )
    write_text_atomic(out / "index.html", page)
    return counts


def _layer_figure(t, rec, arr: np.ndarray, scale: str, mode: str, global_range, max_channels: int, classes):
    from ...render.activations import activation_figure, vector_figure

    title = rec.name if rec.name == rec.kind else f"{rec.name} ({rec.kind})"
    own_mode = mode if scale == "diverging" else ("layer" if mode == "global" else mode)
    if arr.ndim == 3 and arr.shape[1] * arr.shape[2] > 1:
        return activation_figure(arr, title, scale, own_mode, global_range, max_channels=max_channels)
    if arr.ndim in (1, 3):
        values = arr.reshape(-1)
        is_scores = rec is t.layers[-1] and values.size == len(classes)
        row = None
        src = rec.input
        if rec.kind == "flatten" and src is not None and src.dim() == 4:
            row = int(src.shape[2] * src.shape[3])
        return vector_figure(
            values,
            title,
            scale,
            labels=classes if is_scores else None,
            mode="layer" if own_mode == "unit" else own_mode,
            global_range=global_range,
            row_length=row,
        )
    return None  # other ranks (sequences, 5-D) have no picture yet


def _softmax_entry(probs: np.ndarray, classes, out: Path, fmt: str, position: int, width: int):
    from ...render.activations import vector_figure
    from ...render.figure_io import save_figure
    from ...render.overview import OverviewLayer

    path = f"layers/{position:0{width}d}_softmax.{fmt}"
    save_figure(
        vector_figure(probs, "softmax (probabilities, from the logits)", "logit", labels=classes, mode="layer"),
        out / path,
    )
    stats = {"min": float(probs.min()), "max": float(probs.max()), "mean": float(probs.mean())}
    entry = OverviewLayer(
        "softmax", "softmax", (probs.size,), op="softmax(logits)", inputs=[], stats=stats, figure=path
    )
    thumb = _thumbnail(probs, "logit", "layer", None)
    if thumb is not None:
        from ...render.grid import save_png

        entry.thumbnail = f"thumbs/{position:0{width}d}_softmax.png"
        save_png(thumb, out / entry.thumbnail)
    return entry


def _global_range(t) -> tuple[float, float]:
    """min and max over every layer drawn on the red-blue scale."""
    import torch

    from ...render.activations import scale_for_kind

    los, his = [], []
    for r in t.layers:
        if (
            isinstance(r.output, torch.Tensor)
            and r.output.is_floating_point()
            and scale_for_kind(r.kind) == "diverging"
        ):
            o = r.output[:1].detach()
            los.append(float(o.min()))
            his.append(float(o.max()))
    return (min(los), max(his)) if los else (-1.0, 1.0)


def _thumbnail(arr: np.ndarray, scale: str, mode: str, global_range) -> np.ndarray | None:
    """A column of the first few channels, downsampled to about THUMB_PIXELS wide; a short
    vector (logits, a small dense layer) as a column of cells, one per value."""
    import numpy as np

    from ...render.activations import activation_grid
    from ...render.colormap import colorize

    if mode == "global" and scale != "diverging":
        mode = "layer"
    if arr.ndim == 1 or (arr.ndim == 3 and arr.shape[1] * arr.shape[2] == 1):
        v = arr.reshape(-1)
        if v.size > 64:
            return None
        lo, hi = global_range if mode == "global" else (float(v.min()), float(v.max()))
        cells = colorize(v[:, None], scale, lo, hi)
        return np.repeat(np.repeat(cells, 10, 0), THUMB_PIXELS, 1)
    if arr.ndim != 3:
        return None
    step = max(1, math.ceil(max(arr.shape[1:]) / THUMB_PIXELS))
    small = arr[:THUMB_CHANNELS, ::step, ::step]
    upscale = max(1, THUMB_PIXELS // max(small.shape[1:]))
    return activation_grid(small, scale, mode, global_range, ncols=1, pad=1, upscale=upscale)


def _reads_image(t, rec) -> bool:
    """Whether a conv sees the input image itself (through padding or identities only)."""
    seen = set()
    names = list(rec.inputs)
    while names:
        name = names.pop()
        if name == "input":
            return True
        if name in seen or name not in t:
            continue
        seen.add(name)
        src = t[name]
        if src.kind in _PASS_THROUGH:
            names.extend(src.inputs)
    return False


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "layer"
