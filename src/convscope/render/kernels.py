"""Convolution kernels as pictures.

Two views of a weight tensor ``(out, in, kh, kw)``:

* :func:`kernel_images`: each filter as one small image, for first layers whose input
  is the picture itself (3 input channels -> an RGB image, 1 -> grey). Values map
  linearly around mid-grey, ``pixel = 127.5 + 127.5 * w / max|w|`` with one ``max|w|``
  for the whole layer, so 0 is mid-grey and filters are comparable.
* :func:`kernel_grid`: an out x in grid of 2-D kernels on the diverging red-blue scale
  (white = 0), one value range for the layer. Depthwise kernels (one input channel
  per filter) wrap into a square grid; 1x1 kernels are drawn without gaps, i.e. as
  the out x in weight matrix.

:func:`kernel_figure` adds titles, axis labels and a colour bar.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvscopeError
from .activations import TILE_PIXELS
from .colormap import colorize
from .figure_io import add_colorbar, new_figure
from .grid import tile

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def kernel_images(weight: np.ndarray) -> list[np.ndarray]:
    """Filters (out, 1 or 3, kh, kw) -> uint8 images (kh, kw, 3), mid-grey = 0."""
    w = _as_weight(weight)
    if w.shape[1] not in (1, 3):
        raise ConvscopeError(f"kernel images need 1 or 3 input channels, got {w.shape[1]}")
    m = float(np.abs(w).max()) or 1.0
    pixels = np.clip(np.round(127.5 + 127.5 * w / m), 0, 255).astype(np.uint8)
    return [np.repeat(p[0][..., None], 3, -1) if p.shape[0] == 1 else p.transpose(1, 2, 0) for p in pixels]


def kernel_grid(
    weight: np.ndarray,
    vrange: tuple[float, float] | None = None,
    max_out: int | None = None,
    max_in: int | None = None,
    upscale: int = 1,
) -> np.ndarray:
    """An out x in grid of diverging-coloured kernels as one uint8 RGB picture.

    Row ``o`` holds output channel ``o``'s kernel slices, column ``i`` input channel
    ``i``. ``vrange`` defaults to the layer's own (symmetric) range.
    """
    w = _as_weight(weight)[:max_out, :max_in]
    lo, hi = vrange if vrange is not None else (float(w.min()), float(w.max()))
    out, cin, kh, kw = w.shape
    tiles = [colorize(w[o, i], "diverging", lo, hi) for o in range(out) for i in range(cin)]
    ncols = cin if cin > 1 else max(1, math.ceil(math.sqrt(out)))
    return tile(tiles, ncols=ncols, pad=0 if kh * kw == 1 else 1, scale=upscale)


def kernel_figure(
    weight: np.ndarray,
    title: str = "",
    as_images: bool | None = None,
    max_out: int = 32,
    max_in: int = 32,
    width: float = 8.0,
) -> Figure:
    """A titled figure of one conv layer's kernels (see the module docstring).

    ``as_images`` (default: when there are 1 or 3 input channels and the kernels are
    larger than 1x1) draws each filter as one RGB/grey image instead of the out x in grid.
    """
    w = _as_weight(weight)
    out, cin, kh, kw = w.shape
    if as_images is None:
        as_images = cin in (1, 3) and kh * kw > 1 and out > 1
    shown_out = min(out, max_out)
    upscale = max(1, math.ceil(TILE_PIXELS / 2 / max(kh, kw)))
    if as_images:
        images = kernel_images(w[:shown_out])
        ncols = max(1, math.ceil(math.sqrt(shown_out)))
        picture = tile(images, ncols=ncols, pad=1, scale=upscale, background=255)
        note = "RGB" if cin == 3 else "grey"
        subtitle = f"{shown_out} of {out} filters as {note} images, mid-grey = 0"
        m = float(np.abs(w).max())
        subtitle += f", range ±{m:.3g}"
    else:
        shown_in = min(cin, max_in)
        picture = kernel_grid(
            w,
            max_out=shown_out,
            max_in=shown_in,
            upscale=upscale if kh * kw > 1 else 1,
            vrange=(float(w.min()), float(w.max())),
        )
        if cin > 1:
            subtitle = f"rows: output channels ({shown_out} of {out}), columns: input channels ({shown_in} of {cin})"
        else:
            subtitle = f"{shown_out} of {out} depthwise filters, row-major"
    aspect = picture.shape[0] / picture.shape[1]
    fig = new_figure(width, min(max(width * aspect * 0.85 + 1.2, 2.5), 14.0))
    ax = fig.add_subplot()
    ax.imshow(picture, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{title} kernels {out}x{cin}x{kh}x{kw}\n{subtitle}", fontsize=10)
    if not as_images:
        add_colorbar(fig, ax, "diverging", (float(w.min()), float(w.max())))
    return fig


def _as_weight(weight: np.ndarray) -> np.ndarray:
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise ConvscopeError(f"conv kernels must be (out, in, kh, kw), got shape {w.shape}")
    if w.size == 0:
        raise ConvscopeError("an empty weight has no kernels to draw")
    return w
