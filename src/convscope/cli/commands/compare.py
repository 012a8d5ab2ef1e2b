"""``convscope compare IMG1 IMG2 --model M`` or ``convscope compare IMG --model A --model B``.

Two forward passes side by side, layer by layer: two images through one model (where do
the two inputs part?), or one image through two checkpoints of one architecture (two
epochs of a run, two runs, a model and its fine-tuned copy; layers matched by name).
Writes to --out:

* compare.json: per layer the relative L2 distance ||a-b||/||a||, the cosine similarity
  and the largest |a-b|, and the layers that could not be compared (another shape, or
  in one model only), as convscope.compare.Comparison.to_json gives them;
* distance.png: the distance curve by layer;
* layer-NAME.png: per layer, a's maps | b's maps | a - b (--layers picks them: default
  the layers with weights, at most six; 'all' for every compared layer);
* attribution.png with --method: the two heatmaps on one colour scale and their difference.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ...errors import ConvscopeError
from ..common import (
    DEFAULT_MODEL,
    MODEL_HELP,
    add_classes_argument,
    add_device_argument,
    add_out_argument,
    add_output_argument,
    add_progress_argument,
    add_trust_argument,
    counted,
    description,
    load_model_from_args,
    progress_bar,
)

DEFAULT_LAYERS = 6  # layer figures written without --layers
_WEIGHTED = ("conv", "linear")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "compare",
        help="two images through one model, or one image through two models: distances layer by layer",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="two images (one model) or one image (two models)")
    p.add_argument(
        "--model",
        "-m",
        action="append",
        metavar="SPEC",
        help=f"the model; give it twice to compare two models on one image: {MODEL_HELP} (default: {DEFAULT_MODEL})",
    )
    add_classes_argument(p)
    add_trust_argument(p)
    add_output_argument(p)
    add_out_argument(p, "convscope-compare")
    p.add_argument(
        "--layers",
        metavar="NAMES",
        default=None,
        help=f"comma-separated layers to draw a | b | a-b for, or 'all' (default: the layers with "
        f"weights, at most {DEFAULT_LAYERS})",
    )
    p.add_argument(
        "--method",
        metavar="NAME",
        default=None,
        help="also explain both predictions with this attribution method (gradcam, saliency, ...) "
        "and draw the two maps on one scale",
    )
    p.add_argument(
        "--target",
        type=int,
        metavar="CLASS",
        help="with --method: the class to explain on both sides (default: each side's prediction)",
    )
    p.add_argument("--layer", metavar="NAME", help="with --method: the CAM family's target layer")
    add_device_argument(p)
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...compare import compare_images, compare_models
    from ...io_utils import write_text_atomic
    from ...render import save_figure
    from ...render.compare import attribution_figure, distance_figure, layer_figure

    specs = args.model or [DEFAULT_MODEL]
    images = [Path(i) for i in args.images]
    if not ((len(images) == 2 and len(specs) == 1) or (len(images) == 1 and len(specs) == 2)):
        raise ConvscopeError(
            f"got {len(images)} image(s) and {len(specs)} model(s): give two images and one --model, "
            "or one image and two --model"
        )
    for image in images:
        if not image.is_file():
            raise ConvscopeError(f"no such image: {image}")
    models = [_load(args, spec) for spec in specs]
    explain = {"method": args.method, "target": args.target, "layer": args.layer} if args.method else {}
    if args.method:
        explain["progress"] = progress_bar(args, args.method)
    if len(images) == 2:
        labels = _distinct(images[0].name, images[1].name)
        c = compare_images(models[0], str(images[0]), str(images[1]), labels=labels, **explain)
        sides = [(models[0], images[0]), (models[0], images[1])]
    else:
        labels = _distinct(*(Path(spec).stem if Path(spec).suffix else spec for spec in specs))
        c = compare_models(models[0], models[1], str(images[0]), labels=labels, **explain)
        sides = [(models[0], images[0]), (models[1], images[0])]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    write_text_atomic(out / "compare.json", json.dumps(c.to_json(), indent=2))
    rows = c.to_json()["layers"]
    title = f"{labels[0]} vs {labels[1]}"
    save_figure(
        distance_figure(
            [r["name"] for r in rows],
            [r["relative_l2"] for r in rows],
            [r["cosine"] for r in rows],
            title=f"{title}: distance by layer",
        ),
        out / "distance.png",
    )
    drawn = []
    for name in _layers(c, args.layers):
        a, b = c.a[name].output, c.b[name].output
        if a.dim() < 2:
            continue
        figure = layer_figure(
            a[0].detach().float().cpu().numpy(),
            b[0].detach().float().cpu().numpy(),
            c[name].kind,
            title=name,
            labels=labels,
        )
        save_figure(figure, out / f"layer-{_file_name(name)}.png")
        drawn.append(name)
    if c.attributions is not None:
        pair = c.attributions
        pictures = [m.to_display(m.batch(str(img))[0]) for m, img in sides]
        save_figure(
            attribution_figure(
                pictures[0],
                pictures[1],
                pair.a[0],
                pair.b[0],
                pair.top,
                labels,
                title=f"{pair.method}: {title}, one colour scale",
            ),
            out / "attribution.png",
        )

    _print_table(c)
    print(
        f"wrote compare.json, distance.png, {counted(len(drawn), 'layer figure')}"
        f"{', attribution.png' if c.attributions is not None else ''} to {out}"
    )
    return 0


def _load(args: argparse.Namespace, spec: str):
    """One of the command's models, loaded as every command loads its one (--trust, --output, --device)."""
    return load_model_from_args(argparse.Namespace(**{**vars(args), "model": spec}))


def _distinct(a: str, b: str) -> tuple[str, str]:
    """The two sides' labels (file names, model specs), marked a and b when they are the same."""
    return (a, b) if a != b else (f"{a} (a)", f"{b} (b)")


def _layers(c, wanted: str | None) -> list[str]:
    if wanted == "all":
        return c.names
    if wanted:
        names = [n.strip() for n in wanted.split(",") if n.strip()]
        for n in names:
            c[n]  # an unknown layer is a NotFound naming the compared ones
        return names
    weighted = [d.name for d in c.layers if d.kind in _WEIGHTED]
    if len(weighted) <= DEFAULT_LAYERS:
        return weighted
    step = (len(weighted) - 1) / (DEFAULT_LAYERS - 1)
    return list(dict.fromkeys(weighted[round(i * step)] for i in range(DEFAULT_LAYERS)))


def _file_name(layer: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", layer)


def _print_table(c) -> None:
    print(f"{c.labels[0]} vs {c.labels[1]}")
    for label, t in zip(c.labels, (c.a, c.b)):
        if t.probs is not None:  # each side's prediction, in the names --classes gave
            _, name, p = t.top(1)[0][0]
            print(f"{label} -> {name} ({p:.1%})")
    print(f"{'layer':<28}{'relative L2':>12}{'cosine':>9}{'max |a-b|':>12}")
    for d in c.layers:
        print(f"{d.name[:27]:<28}{d.relative_l2:>12.4g}{d.cosine:>9.4f}{d.max_abs:>12.4g}")
    parting = c.parting()
    if parting is not None and "input" in c.names and c["input"].relative_l2 == 0:  # one input, two models
        print(
            f"they part at {parting.name} (the first layer whose outputs differ: relative L2 {parting.relative_l2:.3g})"
        )
    for m in c.mismatched:
        print(f"not compared: {m.name} ({m.reason})")
