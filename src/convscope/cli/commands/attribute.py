"""``convscope attribute IMAGE --model SPEC --method gradcam[,saliency,...] --out DIR``.

Explains the model's decision on one image with one or more attribution methods and
writes to DIR, per method M:

* ``M.png``: the heatmap over the pixels the network saw;
* ``M.npy``: the heatmap (H, W) at the input's resolution, float32;
* ``M_raw.npy``: the raw attribution (CAM family: the layer-resolution map (h, w);
  gradient methods: one value per input element (C, H, W));

and ``methods.png``, all methods side by side. ``--metrics`` adds the deletion and
insertion AUC (Petsiuk et al. 2018) and Average Drop (Chattopadhay et al. 2018) per
method: ``metrics.json``, ``deletion.png``, ``insertion.png`` and a printed table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ...errors import ConvscopeError
from ..common import (
    add_device_argument,
    add_image_arguments,
    add_out_argument,
    add_progress_argument,
    counted,
    description,
    load_model_from_args,
    progress_bar,
)


def add_explain_arguments(p: argparse.ArgumentParser, default_methods: str, out: str) -> None:
    """Arguments shared by ``attribute`` and ``sanity`` (``out``: the default output folder)."""
    add_image_arguments(p)
    p.add_argument(
        "--method",
        default=default_methods,
        metavar="NAMES",
        help=f"comma-separated attribution methods (default: {default_methods}); "
        "any of: gradcam, gradcam++, xgradcam, layercam, hirescam, scorecam, eigencam, cam, saliency, "
        "smoothgrad, inputxgradient, guidedbackprop, guidedgradcam, integratedgradients, occlusion",
    )
    p.add_argument(
        "--layer",
        metavar="NAME",
        help="target layer of the CAM family (qualified module name; default: the last convolution block's output, "
        "before global pooling; printed)",
    )
    p.add_argument("--target", type=int, metavar="CLASS", help="class index to explain (default: the predicted class)")
    add_out_argument(p, out)
    p.add_argument(
        "--ig-steps",
        type=int,
        default=None,
        metavar="N",
        help="Integrated Gradients steps (default: the method's, as in Python and the explorer)",
    )
    p.add_argument(
        "--samples", type=int, default=None, metavar="N", help="SmoothGrad noisy samples (default: the method's)"
    )
    p.add_argument(
        "--window",
        type=int,
        default=None,
        metavar="PX",
        help="occlusion window (default: 1/8 of the input's shorter side); stride is half of it",
    )
    p.add_argument(
        "--top-n",
        type=int,
        default=None,
        metavar="N",
        help="Score-CAM: only the N channels of highest variance (Faster Score-CAM, an approximation)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="random seed of SmoothGrad's noise and the sanity check's weights (default: 0)",
    )
    add_device_argument(p)
    add_progress_argument(p)


def parse_methods(text: str) -> list[str]:
    from ...explain import get_method

    names = [get_method(n).name for n in text.split(",") if n.strip()]
    if not names:
        raise ConvscopeError("--method needs at least one method name")
    return list(dict.fromkeys(names))


def method_options(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Constructor options for one method: only what the command line set (the rest are the
    constructor's defaults, the same in Python and in the explorer)."""
    from ...explain.options import given_options

    return given_options(
        name, steps=args.ig_steps, samples=args.samples, seed=args.seed, window=args.window, top_n=args.top_n
    )


def prepare(args: argparse.Namespace):
    """What attribute and sanity both start from: (methods, model, x (1, C, H, W), display
    image uint8 (H, W, 3), the output folder (created))."""
    methods = parse_methods(args.method)
    model = load_model_from_args(args)
    if not Path(args.image).is_file():
        raise ConvscopeError(f"no such image: {args.image}")
    x = model.batch(args.image)
    if args.target is not None and model.classes is not None and not 0 <= args.target < len(model.classes):
        raise ConvscopeError(f"--target {args.target} is out of range: the model has {len(model.classes)} classes")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return methods, model, x, model.to_display(x[0]), out


def file_stem(method: str) -> str:
    return method.replace("++", "pp")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "attribute",
        help="explain a prediction with attribution methods (Grad-CAM, saliency, ...): heatmaps and metrics",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_explain_arguments(p, "gradcam", out="convscope-attribute")
    p.add_argument("--metrics", action="store_true", help="also compute deletion/insertion AUC and Average Drop")
    p.add_argument("--metric-steps", type=int, default=32, metavar="N", help="points on the deletion/insertion curves")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ...explain import confidence_change, deletion, get_method, insertion
    from ...explain.interpret import describe_metrics
    from ...io_utils import write_text_atomic
    from ...render import save_png
    from ...render.heatmap import curves_figure, methods_figure, overlay

    methods, model, x, image, out = prepare(args)
    maps: dict[str, np.ndarray] = {}
    results = {}
    for name in methods:
        cls = get_method(name)
        method = cls(model, args.layer if cls.uses_layer else None, **method_options(args, name))
        r = method(x, args.target, progress=progress_bar(args, name))
        results[name] = r
        maps[name] = r.numpy()[0]
        stem = file_stem(name)
        np.save(out / f"{stem}.npy", maps[name])
        np.save(out / f"{stem}_raw.npy", r.raw[0].detach().float().cpu().numpy())
        save_png(overlay(image, maps[name]), out / f"{stem}.png")
    first = next(iter(results.values()))
    cls_index = int(first.targets[0]) if first.targets is not None else None
    label = model.class_name(cls_index) if cls_index is not None else "custom target"
    print(f"explaining class {cls_index} ({label}) of {model.name} on {args.image}")
    layers = dict.fromkeys(r.layer for r in results.values() if r.layer)
    if layers:  # the default (probe.default_layer) or the given --layer: say which it was
        print(f"at layer {', '.join(layers)}")
    notes: dict[str, str] = {}
    if args.metrics:
        rows: dict[str, dict[str, float]] = {}
        curves: dict[str, dict[str, np.ndarray]] = {"deletion": {}, "insertion": {}}
        fractions = None
        readings: dict[str, str] = {}
        for name, r in results.items():
            d = deletion(model, x, r, steps=args.metric_steps, progress=progress_bar(args, f"{name} deletion"))
            i = insertion(model, x, r, steps=args.metric_steps, progress=progress_bar(args, f"{name} insertion"))
            c = confidence_change(model, x, r)
            fractions = d.fractions.cpu().numpy()
            curves["deletion"][name] = d.scores[0].cpu().numpy()
            curves["insertion"][name] = i.scores[0].cpu().numpy()
            rows[name] = {
                "deletion_auc": float(d.auc[0]),
                "insertion_auc": float(i.auc[0]),
                "average_drop": c.average_drop,
                "increase_in_confidence": c.increase_in_confidence,
            }
            readings[name] = describe_metrics(fractions.tolist(), d.scores[0].tolist(), i.scores[0].tolist())
            notes[name] = f"del {rows[name]['deletion_auc']:.3f}  ins {rows[name]['insertion_auc']:.3f}"
        write_text_atomic(
            out / "metrics.json",
            json.dumps(
                {
                    "class": cls_index,
                    "methods": rows,
                    "curves": {k: {m: v.tolist() for m, v in c.items()} for k, c in curves.items()},
                    "fractions": fractions.tolist(),
                    "output": d.output,
                },
                indent=2,
            ),
        )
        for kind in ("deletion", "insertion"):
            save_png(
                curves_figure(
                    fractions, curves[kind], f"{kind} ({'lower' if kind == 'deletion' else 'higher'} is better)"
                ),
                out / f"{kind}.png",
            )
        print(f"{'method':<22}{'deletion AUC':>14}{'insertion AUC':>15}{'avg drop %':>12}{'increase %':>12}")
        for name, row in rows.items():
            print(
                f"{name:<22}{row['deletion_auc']:>14.4f}{row['insertion_auc']:>15.4f}"
                f"{row['average_drop']:>12.2f}{row['increase_in_confidence']:>12.1f}"
            )
        for name, reading in readings.items():
            print(f"{name}: {reading}")
    title = f"{model.name}: class {cls_index} ({label})"
    save_png(methods_figure(image, maps, title=title, notes=notes), out / "methods.png")
    print(f"wrote {counted(len(methods), 'heatmap')} and methods.png to {out}")
    return 0
