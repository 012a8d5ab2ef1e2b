"""``convscope audit``: how faithful an attribution method's maps are, over a whole dataset split."""

from __future__ import annotations

import argparse

from ..common import add_compute_arguments, add_data_arguments, add_model_argument, add_out_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "audit",
        help="per-class deletion / insertion AUC and degenerate-map fraction of a method over a dataset",
        description="Explain every image of a dataset split (its predicted class) with METHOD, score each map "
        "by its deletion AUC (lower is better) and insertion AUC (higher is better), and count the maps "
        "that are degenerate (constant or not finite). Prints a table per true class and writes it, "
        "with the per-image numbers, as JSON. --engine ray spreads the images over Ray workers.",
    )
    add_model_argument(p)
    add_data_arguments(p, "dataset (digits, mnist, folder:PATH, ...)")
    p.add_argument("--method", default="gradcam", help="attribution method (default gradcam)")
    p.add_argument("--layer", "-l", help="layer for CAM methods (default: the method's choice)")
    p.add_argument("--steps", type=int, default=20, help="pixel fractions per deletion / insertion curve (default 20)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, metavar="N", help="audit only the first N images of the split")
    add_out_argument(p, "audit.json", "the JSON report", metavar="FILE")
    add_compute_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from ...data import load_splits
    from ...errors import ConvscopeError
    from ...explain.audit import audit
    from ...io_utils import write_text_atomic
    from ..common import engine_from_args, load_model_from_args, progress_bar

    if args.limit is not None and args.limit < 1:
        raise ConvscopeError("--limit must be at least 1")
    model = load_model_from_args(args)
    data = load_splits(args.data, progress=not args.no_progress)[args.split]
    if args.limit is not None:
        data = data.subset(list(range(min(args.limit, len(data)))))
    with progress_bar(args, f"audit {args.method}", "img") as bar, engine_from_args(args) as engine:
        result = audit(
            model,
            data,
            method=args.method,
            layer=args.layer,
            steps=args.steps,
            batch_size=args.batch_size,
            progress=bar,
            engine=engine,
        )
    report = result.to_dict()
    write_text_atomic(args.out, json.dumps(report) + "\n")
    print(f"{'class':<16}{'images':>7}{'deletion AUC':>14}{'insertion AUC':>15}{'degenerate':>12}")
    for row in report["per_class"]:
        print(
            f"{row['class'][:15]:<16}{row['count']:>7}{row['deletion_auc']:>14.4f}{row['insertion_auc']:>15.4f}"
            f"{100 * row['degenerate']:>11.1f}%"
        )
    print(
        f"{'all':<16}{report['count']:>7}{report['deletion_auc']:>14.4f}{report['insertion_auc']:>15.4f}"
        f"{100 * report['degenerate']:>11.1f}%"
    )
    print(f"wrote {args.out}")
    return 0
