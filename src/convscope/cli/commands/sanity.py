"""``convscope sanity IMAGE --model SPEC --method gradcam,saliency,guidedbackprop --out DIR``.

The model-parameter randomisation test (Adebayo et al. 2018): the model's layers are
re-initialised one block at a time from the output down, on a copy, and each method's
heatmap is compared with the original one after every step (Spearman rank correlation
of the absolute maps, SSIM). A trustworthy method's maps decorrelate quickly. Prints the
table and writes ``sanity.csv``, ``sanity.json`` and the figure ``sanity.png`` to DIR.
"""

from __future__ import annotations

import argparse

from ..common import description, progress_bar
from .attribute import add_explain_arguments, method_options, prepare


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sanity",
        help="can this heatmap be trusted? the model-randomisation sanity check (table + figure)",
        description=description(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_explain_arguments(p, "gradcam,saliency,guidedbackprop", out="convscope-sanity")
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="stop after randomising N blocks (default: all, down to the first layer)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...explain import sanity_check
    from ...io_utils import write_text_atomic
    from ...render import save_png
    from ...render.heatmap import sanity_figure

    methods, model, x, image, out = prepare(args)
    report = sanity_check(
        model,
        x,
        methods,
        target=args.target,
        layer=args.layer,
        seed=0 if args.seed is None else args.seed,
        options={m: method_options(args, m) for m in methods},
        max_steps=args.max_steps,
        progress=progress_bar(args, "randomising"),
    )
    write_text_atomic(out / "sanity.csv", report.to_csv())
    write_text_atomic(out / "sanity.json", report.to_json())
    fig = sanity_figure(
        image,
        report.steps,
        {m: report.maps[m][:, 0].cpu().numpy() for m in methods},
        {m: report.spearman[m][:, 0].cpu().numpy() for m in methods},
        {m: report.ssim[m][:, 0].cpu().numpy() for m in methods},
    )
    save_png(fig, out / "sanity.png")
    cls = int(report.targets[0])
    print(f"sanity check of {model.name}, class {cls} ({model.class_name(cls)}), {len(report.steps)} steps")
    print(report.table())
    print(f"wrote sanity.csv, sanity.json and sanity.png to {out}")
    return 0
