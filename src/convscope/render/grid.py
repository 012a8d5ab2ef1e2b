"""Tiling images into one picture and writing PNGs: shared by every figure writer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..io_utils import write_bytes_atomic


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W), (H, W, 1) or (H, W, 3) -> (H, W, 3)."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return a.astype(np.uint8, copy=False)


def tile(
    images: list[np.ndarray], ncols: int | None = None, pad: int = 2, scale: int = 1, background: int = 255
) -> np.ndarray:
    """Lay out uint8 images (all the same size) in a grid; nearest-neighbour upscaling by ``scale``."""
    if not images:
        raise ValueError("tile() needs at least one image")
    imgs = [as_rgb(i) for i in images]
    if scale > 1:
        imgs = [i.repeat(scale, 0).repeat(scale, 1) for i in imgs]
    h, w = imgs[0].shape[:2]
    n = len(imgs)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    out = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, 3), background, np.uint8)
    for k, img in enumerate(imgs):
        r, c = divmod(k, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = img
    return out


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(as_rgb(image)).save(buf, "PNG")
    return buf.getvalue()


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 image atomically as PNG."""
    write_bytes_atomic(path, png_bytes(image))
    return Path(path)
