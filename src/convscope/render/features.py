"""Pictures for feature visualisation: grids of optimised images, kernels, top examples.

Pure functions from arrays (what :mod:`convscope.features` returns) to uint8 RGB images.
Kernels are drawn on a symmetric scale around 0 (``[-scale, scale]``): first-layer
kernels as small images (mid-grey = 0), deeper kernels with the diverging colour scale.
Top examples get their activation map overlaid in the heat colours, more opaque where
the activation is higher.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .colormap import colorize
from .grid import as_rgb, tile


def upscale(image: np.ndarray, min_size: int = 96) -> tuple[np.ndarray, int]:
    """Nearest-neighbour upscale (to RGB) so the shorter side is at least ``min_size``; returns the factor."""
    image = as_rgb(image)
    h, w = image.shape[:2]
    f = max(1, int(np.ceil(min_size / max(1, min(h, w)))))
    return (image.repeat(f, 0).repeat(f, 1) if f > 1 else image), f


def feature_grid(
    images: Sequence[np.ndarray | None], ncols: int | None = None, min_size: int = 96, pad: int = 4
) -> np.ndarray:
    """Optimised pictures (B, H, W, C) uint8 -> one tiled RGB image, small inputs upscaled.

    A ``None`` stands for a channel that was constant over the data (dead): it gets a
    :func:`constant_card` of the pictures' size instead of a picture."""
    shown = [upscale(as_rgb(i), min_size)[0] for i in images if i is not None]
    h, w = shown[0].shape[:2] if shown else (min_size, min_size)
    it = iter(shown)
    return tile([constant_card(h, w) if i is None else next(it) for i in images], ncols=ncols, pad=pad)


def constant_card(h: int, w: int, value: float | None = None) -> np.ndarray:
    """A flat grey tile (h, w, 3) crossed out and labelled "constant (dead)" (and its value):
    what a dead channel shows where a live one shows its picture, so it is not read as one."""
    card = Image.new("RGB", (w, h), (200, 200, 200))
    draw = ImageDraw.Draw(card)
    draw.line([(0, 0), (w - 1, h - 1)], fill=(150, 150, 150), width=max(1, w // 40))
    draw.line([(0, h - 1), (w - 1, 0)], fill=(150, 150, 150), width=max(1, w // 40))
    lines = ["constant", "(dead)"] + ([f"= {value:.3g}"] if value is not None else [])
    font = ImageFont.load_default(max(8, min(h // 7, w // 6)))
    draw.multiline_text((w / 2, h / 2), "\n".join(lines), fill=(20, 20, 20), font=font, anchor="mm", align="center")
    return np.asarray(card)


def kernel_image(weight: np.ndarray, scale: float) -> np.ndarray:
    """A first-layer kernel (C, kh, kw) with C in (1, 3) as a uint8 picture (kh, kw, 3):
    ``128 + 127 * w / scale`` per channel, so 0 is mid-grey and +-scale are the extremes."""
    w = np.asarray(weight, dtype=np.float64) / (scale or 1.0)
    pix = np.clip(np.round(127.5 + 127.5 * w), 0, 255).astype(np.uint8)
    return as_rgb(np.moveaxis(pix, 0, -1))


def kernel_grid(weight: np.ndarray, scale: float, as_image: bool, cell: int = 24, pad: int = 2) -> np.ndarray:
    """All kernels of a layer (O, I, kh, kw) as one picture.

    ``as_image``: first-layer kernels, one small grey/RGB image each in a square grid.
    Otherwise one row per output channel holding its I per-input-channel kernels in the
    diverging scale on ``[-scale, scale]``.
    """
    weight = np.asarray(weight)
    o, i, kh, kw = weight.shape
    f = max(1, cell // max(kh, kw))
    if as_image:
        cells = [kernel_image(w, scale) for w in weight]
        return tile(cells, pad=pad, scale=f)
    cells = [colorize(weight[a, b], "diverging", -scale, scale) for a in range(o) for b in range(i)]
    return tile(cells, ncols=i, pad=pad, scale=f)


def overlay(image: np.ndarray, heat: np.ndarray, vmax: float | None = None, alpha: float = 0.6) -> np.ndarray:
    """Blend an activation map (H, W), already on the image grid, over an image (H, W, C).

    Opacity grows with the activation: ``a = alpha * clip(heat / vmax, 0, 1)``, so inactive
    regions show the image unchanged.
    """
    rgb = as_rgb(image).astype(np.float32)
    heat = np.asarray(heat, dtype=np.float32)
    vmax = float(vmax if vmax is not None else heat.max()) or 1.0
    level = np.clip(heat / vmax, 0.0, 1.0)
    colour = colorize(level, "heat", 0.0, 1.0).astype(np.float32)
    a = (alpha * level)[..., None]
    return np.clip(np.round(rgb * (1 - a) + colour * a), 0, 255).astype(np.uint8)


def examples_grid(
    images: np.ndarray,
    heats: np.ndarray | None = None,
    vmax: np.ndarray | None = None,
    min_size: int = 64,
    pad: int = 3,
) -> np.ndarray:
    """Top examples (C, k, H, W, ch) as a grid, one row per channel, with optional overlays.

    ``heats`` (C, k, H, W) are activation maps on the images' grid; ``vmax`` (C,) the
    per-channel top of the colour range (default: each row's maximum).
    """
    c, k = images.shape[:2]
    cells = []
    for i in range(c):
        top = None if heats is None else (float(vmax[i]) if vmax is not None else float(heats[i].max()))
        for j in range(k):
            img = as_rgb(images[i, j])
            if heats is not None:
                img = overlay(img, heats[i, j], top)
            cells.append(upscale(img, min_size)[0])
    return tile(cells, ncols=k, pad=pad)
