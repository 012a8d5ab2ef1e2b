"""The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed).

An IDX file is a 4-byte magic number ``0x00 0x00 T D`` (``T`` the element type, ``D``
the number of dimensions), then ``D`` big-endian uint32 sizes, then the elements in
row-major order, big-endian. Images are ``0x00000803`` (uint8, N x 28 x 28), labels
``0x00000801`` (uint8, N).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import ConvscopeError
from .base import ImageDataset

# IDX element type codes -> NumPy dtypes (big-endian where it matters)
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (raw or gzip) into an array; clear errors for anything else."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ConvscopeError(f"{path} is a damaged gzip file: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise ConvscopeError(f"{path} is not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    dtype, ndim = IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ConvscopeError(f"{path}: IDX header is truncated or declares {ndim} dimensions")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ConvscopeError(f"{path}: IDX header says shape {shape} ({expected} bytes of data) "
                             f"but the file holds {len(raw) - header}; it is truncated or damaged")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_pair(images_path: Path, labels_path: Path, name: str, classes: Sequence[str]) -> ImageDataset:
    """An images file (N, H, W) uint8 and its labels file (N,) -> an :class:`ImageDataset`."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ConvscopeError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ConvscopeError(f"{labels_path}: expected integer labels (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ConvscopeError(f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ConvscopeError(f"{labels_path}: labels must lie in 0..{len(classes) - 1}, found {labels.min()}..{labels.max()}")
    return ImageDataset(name, list(classes), torch.from_numpy(images)[:, None],
                        torch.from_numpy(labels.astype(np.int64)))


def load_idx_dataset(paths: dict[str, Path], name: str, classes: Sequence[str]) -> tuple[ImageDataset, ImageDataset]:
    """The official (train, test) sets from the four IDX files of MNIST-like datasets."""
    train = read_idx_pair(paths["train_images"], paths["train_labels"], name, classes)
    test = read_idx_pair(paths["test_images"], paths["test_labels"], name, classes)
    return train, test
