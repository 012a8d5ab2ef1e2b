"""The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed).

An IDX file is a 4-byte magic number ``0x00 0x00 T D`` (``T`` the element type, ``D``
the number of dimensions), then ``D`` big-endian uint32 sizes, then the elements in
row-major order, big-endian. Images are ``0x00000803`` (uint8, N x 28 x 28), labels
``0x00000801`` (uint8, N).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import ConvscopeError
from .base import ImageDataset

# IDX element type codes -> NumPy dtypes (big-endian where it matters)
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


#: Largest IDX payload read (MNIST's training images are 47 MB; 2 GiB leaves room).
MAX_IDX_BYTES = 2 << 30
_READ_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


def read_idx(path: str | Path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Parse one IDX file (raw or gzip) into an array; clear errors for anything else.

    The header is read first and the size it declares is checked against ``max_bytes``
    (and, for a raw file, against the file's length) before anything is allocated or
    decompressed, so a small file claiming a huge shape, or a gzip bomb, costs nothing.
    """
    path = Path(path)
    compressed = False
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        with opener(path, "rb") as f:
            shape, dtype, header = _read_header(f, path)
            expected = math.prod(shape) * dtype.itemsize
            if expected > max_bytes:
                raise ConvscopeError(
                    f"{path}: IDX header declares shape {shape} ({expected} bytes), more than "
                    f"the {max_bytes} bytes convscope reads"
                )
            if not compressed and path.stat().st_size - header != expected:
                raise _size_error(path, shape, expected, path.stat().st_size - header)
            data = f.read(expected)
            extra = len(f.read(1))
    except _READ_ERRORS as exc:
        what = "a damaged gzip file" if compressed else "not readable"
        raise ConvscopeError(f"{path} is {what}: {exc}") from None
    if len(data) != expected or extra:
        raise _size_error(path, shape, expected, len(data) + extra, more=bool(extra))
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def _read_header(f, path: Path) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) from the magic number and the big-endian sizes."""
    magic = f.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in IDX_TYPES:
        raise ConvscopeError(f"{path} is not an IDX file (magic number {magic.hex() or 'missing'})")
    ndim = magic[3]
    sizes = f.read(4 * ndim)
    if ndim == 0 or len(sizes) < 4 * ndim:
        raise ConvscopeError(f"{path}: IDX header is truncated or declares {ndim} dimensions")
    return struct.unpack(f">{ndim}I", sizes), IDX_TYPES[magic[2]], 4 + 4 * ndim


def _size_error(path: Path, shape: tuple[int, ...], expected: int, found: int, more: bool = False) -> ConvscopeError:
    held = "more" if more else str(found)
    return ConvscopeError(
        f"{path}: IDX header says shape {shape} ({expected} bytes of data) "
        f"but the file holds {held}; it is truncated or damaged"
    )


def read_idx_pair(images_path: Path, labels_path: Path, name: str, classes: Sequence[str]) -> ImageDataset:
    """An images file (N, H, W) uint8 and its labels file (N,) -> an :class:`ImageDataset`."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ConvscopeError(f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ConvscopeError(f"{labels_path}: expected integer labels (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ConvscopeError(
            f"{images_path.name} has {len(images)} images but {labels_path.name} has {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise ConvscopeError(
            f"{labels_path}: labels must lie in 0..{len(classes) - 1}, found {labels.min()}..{labels.max()}"
        )
    return ImageDataset(
        name, list(classes), torch.from_numpy(images)[:, None], torch.from_numpy(labels.astype(np.int64))
    )


def load_idx_dataset(paths: dict[str, Path], name: str, classes: Sequence[str]) -> tuple[ImageDataset, ImageDataset]:
    """The official (train, test) sets from the four IDX files of MNIST-like datasets."""
    train = read_idx_pair(paths["train_images"], paths["train_labels"], name, classes)
    test = read_idx_pair(paths["test_images"], paths["test_labels"], name, classes)
    return train, test
