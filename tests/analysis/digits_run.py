"""A tiny Tiny VGG trained for a few seconds on scikit-learn's digits, saved as a run folder.

Shared by the analysis and report CLI tests (loaded by path, since test folders are not
packages). The folder looks like a ``convscope train`` run: ``best.pt`` beside a
``metrics.jsonl`` with one record per epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from convscope.data import load_splits
from convscope.models import Model, Preprocessing, build, save_checkpoint

SIZE = (16, 16)  # digits are 8x8; Tiny VGG needs a little more room for its two blocks
KWARGS = {"in_channels": 1, "num_classes": 10, "input_size": list(SIZE)}
EPOCHS = 3


def _accuracy_and_loss(model: Model, ds) -> tuple[float, float]:
    with torch.no_grad():
        x, y = next(ds.batches(model.preprocessing, batch_size=len(ds)))
        logits = model.net(x)
        return float((logits.argmax(1) == y).float().mean()), float(F.cross_entropy(logits, y))


def train_digits_run(folder: Path, epochs: int = EPOCHS, seed: int = 0) -> tuple[Path, Model]:
    """Train, write ``folder/best.pt`` and ``folder/metrics.jsonl``; return the checkpoint and model."""
    torch.manual_seed(seed)
    prep = Preprocessing(size=SIZE, channels=1, mean=(0.0,), std=(255.0,))
    splits = load_splits("digits", seed=seed)
    train, val = splits.train.conform(prep), splits.val.conform(prep)
    net = build("tiny-vgg", in_channels=1, num_classes=10, input_size=SIZE)
    model = Model(net, classes=train.classes, preprocessing=prep, name="digits-tiny-vgg")
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(seed)
    records = []
    for epoch in range(1, epochs + 1):
        net.train()
        for x, y in train.batches(prep, batch_size=64, shuffle=True, generator=g):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        net.eval()
        train_acc, train_loss = _accuracy_and_loss(model, train)
        val_acc, val_loss = _accuracy_and_loss(model, val)
        records.append(
            {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc}
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    meta = {
        "architecture": {"zoo": "tiny-vgg", "kwargs": KWARGS},
        "classes": train.classes,
        "preprocessing": prep.to_dict(),
        "name": "digits-tiny-vgg",
        "dataset": {"name": "digits"},
    }  # as the trainer records it
    path = save_checkpoint(folder / "best.pt", net.state_dict(), meta)
    return path, model
