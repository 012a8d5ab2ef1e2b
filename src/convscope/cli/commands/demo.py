"""``convscope demo``: the shipped default model on held-out MNIST digits, offline, in seconds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..common import add_model_argument, add_out_argument, load_model_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="classify held-out MNIST digits with the shipped default model and write figures",
        description="Load the default model (Tiny VGG trained on MNIST, shipped inside convscope), classify "
        "held-out test digits it never saw, print the predictions, and write a 'True / Pred' grid "
        "and the confusion matrix of the whole test split. No network, no GPU. With --model, "
        "another model on the test split of the dataset it records (already downloaded).",
    )
    add_model_argument(p)
    add_out_argument(p, "convscope-demo", "folder for predictions.png, confusion.png and confusion.json")
    p.add_argument("--count", "-n", type=int, default=16, help="how many digits to show (default: 16)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...data import load_splits
    from ...data.registry import recorded_dataset
    from ...errors import ConvscopeError
    from ...io_utils import write_text_atomic
    from ...render import save_png
    from ...render.confusion import confusion_figure
    from ...render.predictions import prediction_grid
    from ...train import evaluate

    if args.count < 1:
        raise ConvscopeError("--count must be at least 1")
    model = load_model_from_args(args)
    data = recorded_dataset(model.meta, args.model)
    if not data:
        raise ConvscopeError(
            f"{args.model} does not record the dataset it was trained on; "
            "use: convscope evaluate --model SPEC --data DATA"
        )
    splits = load_splits(data, seed=int(model.meta["dataset"].get("split_seed") or 0), download=False)
    test = splits.test.conform(model.preprocessing)
    print(f"model: {model!r}")
    print(f"data: {test.note}; test split: {splits.description}")

    shown = test.subset(torch.arange(min(args.count, len(test))))
    x = model.preprocessing.normalize(shown.images)
    top = model.predict(x, top=1)
    true = [test.classes[int(y)] for y in shown.labels]
    pred = [t[0][0] for t in top]
    probs = [t[0][1] for t in top]
    print(f"{'#':>4}  {'true':>5}  {'pred':>5}  prob")
    for i, (t, p, pr) in enumerate(zip(true, pred, probs)):
        print(f"{int(shown.indices[i]):>4}  {t:>5}  {p:>5}  {pr:.3f}{'' if t == p else '  <- wrong'}")

    result = evaluate(model, test, split="test")
    out = Path(args.out)
    images = [img.permute(1, 2, 0).numpy() for img in shown.images]
    save_png(prediction_grid(images, true, pred, probs), out / "predictions.png")
    save_png(
        confusion_figure(
            result.confusion,
            result.classes,
            title=f"{model.name} model, held-out test split: accuracy {result.accuracy:.2%}",
        ),
        out / "confusion.png",
    )
    write_text_atomic(out / "confusion.json", json.dumps(result.to_dict(), indent=1) + "\n")
    print(f"test accuracy: {result.accuracy:.4f} ({int(result.confusion.trace())}/{result.n})")
    print(f"wrote {out / 'predictions.png'}, {out / 'confusion.png'}, {out / 'confusion.json'}")
    return 0
