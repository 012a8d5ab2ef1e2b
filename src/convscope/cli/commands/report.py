"""``convscope report``: one self-contained HTML (or PDF) report of a model on a dataset split."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common import (
    add_data_arguments,
    add_device_argument,
    add_engine_argument,
    add_model_argument,
    add_out_argument,
    add_output_argument,
    add_progress_argument,
    load_model_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML/PDF report of a model on a dataset split",
        description="Run the model over a dataset split (cached) and write one file with the model summary, "
        "training curves (when the checkpoint sits in a run folder), accuracy and confusion matrix, "
        "a True/Pred grid, misclassified examples, activation maps, Grad-CAM (when available) and "
        "an embedding of the penultimate-layer features.",
    )
    add_model_argument(p)
    add_output_argument(p)
    add_device_argument(p)
    add_data_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="split seed, and the seed of the random samples and t-SNE")
    add_out_argument(p, "report.html", "the report file", metavar="FILE")
    p.add_argument(
        "--format",
        default=None,
        choices=["html", "pdf"],
        help="file format (default: from the --out suffix, else html)",
    )
    p.add_argument(
        "--embedding",
        default="tsne",
        choices=["tsne", "pca", "umap", "none"],
        help="how to embed the features in 2-D (default: tsne; umap needs umap-learn)",
    )
    p.add_argument("--samples", type=int, default=24, help="images in the True/Pred grid and the mistakes gallery")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use only the first N images of the split")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $CONVSCOPE_CACHE or ~/.cache/convscope)")
    add_engine_argument(p)
    add_progress_argument(p, "--quiet", "-q")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ...analysis.report import write_report
    from ...data import load_splits
    from ...errors import ConvscopeError
    from ..common import engine_from_args

    fmt = args.format or ("pdf" if Path(args.out).suffix.lower() == ".pdf" else "html")
    if args.samples < 1 or args.batch_size < 1:
        raise ConvscopeError("--samples and --batch-size must be at least 1")
    model = load_model_from_args(args)
    dataset = load_splits(args.data, seed=args.seed, progress=not args.no_progress)[args.split]
    if args.limit is not None:
        if args.limit < 3:
            raise ConvscopeError("--limit must be at least 3")
        dataset = dataset.subset(list(range(min(args.limit, len(dataset)))))
    log = None if args.no_progress else (lambda msg: print(msg, file=sys.stderr))
    checkpoint = args.model if Path(args.model).is_file() else None
    with engine_from_args(args) as engine:
        facts = write_report(
            args.out,
            model,
            dataset,
            fmt=fmt,
            split=args.split,
            seed=args.seed,
            checkpoint=checkpoint,
            embedding=None if args.embedding == "none" else args.embedding,
            samples=args.samples,
            batch_size=args.batch_size,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            log=log,
            engine=engine,
        )
    print(f"wrote {args.out}: accuracy {100 * facts['accuracy']:.2f}% on {facts['count']} {args.split} images")
    for item in facts["left_out"]:
        print(f"  left out: {item}")
    return 0
