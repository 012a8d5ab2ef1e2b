"""``convscope evaluate``: accuracy, per-class accuracy and the confusion matrix of a model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ...errors import ConvscopeError
from ..common import (
    add_compute_arguments,
    add_data_arguments,
    add_model_argument,
    add_out_argument,
    counted,
    engine_from_args,
    load_model_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="accuracy, per-class accuracy and confusion matrix of a model on a dataset split",
        description="Evaluate a model on a dataset split. For a convscope checkpoint trained on the same dataset "
        "the split is remade with the seed the checkpoint records, so 'test' is the held-out split.",
    )
    add_model_argument(p, positional=True)
    add_data_arguments(p, "dataset (default: the one the checkpoint was trained on)", required=False)
    p.add_argument("--split-seed", type=int, help="split seed (default: the checkpoint's, else 0)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    add_out_argument(p, "convscope-evaluate", "folder for confusion.json and confusion.png")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--data-root", metavar="DIR", help="dataset cache directory")
    p.add_argument("--offline", action="store_true", help="never download data")
    add_compute_arguments(p)
    p.set_defaults(func=run)


def split_for(model_meta: dict[str, Any], data: str, seed: int | None) -> tuple[int, bool]:
    """The split seed to use and whether it is the one the model was trained with."""
    trained_on = model_meta.get("dataset") or {}
    if seed is not None:
        return seed, trained_on.get("name") == data and trained_on.get("split_seed") == seed
    if trained_on.get("name") == data and trained_on.get("split_seed") is not None:
        return int(trained_on["split_seed"]), True
    return 0, False


def run(args: argparse.Namespace) -> int:
    from ...data import load_splits
    from ...data.registry import recorded_dataset
    from ...io_utils import write_text_atomic
    from ...render import save_png
    from ...render.confusion import confusion_figure
    from ...train import evaluate

    model = load_model_from_args(args)
    data = args.data or recorded_dataset(model.meta, args.model)
    if not data:
        raise ConvscopeError(f"{args.model} does not record its dataset; give one with --data")
    seed, same_split = split_for(model.meta, data, args.split_seed)
    splits = load_splits(data, seed=seed, root=args.data_root, download=not args.offline, progress=not args.no_progress)
    # same name and seed, but different files (e.g. full MNIST now cached): not the training split
    same_split = same_split and splits.description == (model.meta.get("dataset") or {}).get("split")
    with engine_from_args(args) as engine:
        result = evaluate(model, splits[args.split], batch_size=args.batch_size, split=args.split, engine=engine)
    result.extra.update(
        {
            "model": args.model,
            "split_seed": seed,
            "split_description": splits.description,
            "split_matches_training": same_split,
        }
    )
    out = Path(args.out)
    write_text_atomic(out / "confusion.json", json.dumps(result.to_dict(), indent=1) + "\n")
    save_png(
        confusion_figure(
            result.confusion,
            result.classes,
            title=f"{args.model} on {data} ({args.split}): accuracy {result.accuracy:.2%}",
        ),
        out / "confusion.png",
    )
    if args.json:
        print(json.dumps({**result.to_dict(), "files": [str(out / "confusion.json"), str(out / "confusion.png")]}))
        return 0
    print(f"{args.model} on {data} / {args.split}: {splits.description}")
    if splits[args.split].note:
        print(f"data: {splits[args.split].note}")
    if not same_split and (model.meta.get("dataset") or {}).get("name"):
        print(
            f"note: the model was trained on {model.meta['dataset']['name']!r} (split seed "
            f"{model.meta['dataset'].get('split_seed')}); this split may overlap its training data"
        )
    print(f"accuracy: {result.accuracy:.4f} ({int(result.confusion.trace())}/{result.n}), loss {result.loss:.4f}")
    low, high = result.accuracy_interval
    few = f"; only {counted(result.n, 'image')}: a larger split says more" if result.n < 100 else ""
    print(f"95% interval of the accuracy: {low:.4f}-{high:.4f} (Wilson score{few})")
    print("per class:")
    rows = result.confusion.sum(1)
    for name, acc, count in zip(result.classes, result.per_class, rows):
        print(f"  {name:>12}  {'-' if acc is None else f'{acc:.4f}'}  ({int(count)} images)")
    print(f"wrote {out / 'confusion.json'} and {out / 'confusion.png'}")
    return 0
