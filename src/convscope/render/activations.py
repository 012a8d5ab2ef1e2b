"""Activation maps of one layer: one tile per channel, coloured like CNN Explainer.

Colour scales follow the layer's kind (:func:`scale_for_kind`): grey for the input,
a diverging red-blue scale centred on 0 for conv / ReLU / pool / batchnorm maps (white
is exactly 0, red positive, blue negative), orange for logits and probabilities.

Colour ranges (:func:`channel_ranges`) come in three modes, as in CNN Explainer:

* ``'unit'``: every channel its own range (shape is visible even in weak channels);
* ``'layer'``: one range for all channels of the layer (channels comparable);
* ``'global'``: one range for all layers, passed in by the caller, who has seen them all.

``activation_grid`` returns plain pixels (for the web page and thumbnails);
``activation_figure`` / ``vector_figure`` return matplotlib figures with a title and a
colour bar, to be written as PNG or SVG with :func:`~convscope.render.figure.save_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvscopeError
from .colormap import colorize, value_range
from .figure_io import add_colorbar, new_figure
from .grid import tile

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

RANGE_MODES = ("unit", "layer", "global")
_LOGIT_KINDS = frozenset({"linear", "softmax", "logits", "probs"})
TILE_PIXELS = 48  # small maps are upscaled (nearest neighbour) to about this size


def scale_for_kind(kind: str) -> str:
    """The colour scale CNN Explainer uses for a layer of this kind."""
    if kind == "input":
        return "grey"
    if kind in _LOGIT_KINDS:
        return "logit"
    return "diverging"


def channel_ranges(
    maps: Sequence[np.ndarray] | np.ndarray, mode: str = "unit", global_range: tuple[float, float] | None = None
) -> list[tuple[float, float]]:
    """(vmin, vmax) for each channel map under a colour-range mode (see the module docstring)."""
    if mode not in RANGE_MODES:
        raise ConvscopeError(f"colour range must be one of {', '.join(RANGE_MODES)}, not {mode!r}")
    maps = list(maps)
    if mode == "global":
        if global_range is None:
            raise ConvscopeError("the 'global' colour range needs the range over all layers (global_range)")
        return [(float(global_range[0]), float(global_range[1]))] * len(maps)
    return value_range(maps, mode)


def activation_tiles(
    maps: np.ndarray, scale: str = "diverging", ranges: Sequence[tuple[float, float]] | None = None
) -> list[np.ndarray]:
    """Colour each channel (C, H, W) -> list of uint8 (H, W, 3); ranges default to per unit."""
    maps = _as_maps(maps)
    ranges = ranges if ranges is not None else channel_ranges(maps, "unit")
    return [colorize(m, scale, lo, hi) for m, (lo, hi) in zip(maps, ranges)]


def activation_grid(
    maps: np.ndarray,
    scale: str = "diverging",
    mode: str = "unit",
    global_range: tuple[float, float] | None = None,
    max_channels: int | None = None,
    ncols: int | None = None,
    pad: int = 1,
    upscale: int = 1,
) -> np.ndarray:
    """All channel maps of one sample (C, H, W) as one uint8 RGB picture, row-major."""
    maps = _as_maps(maps)[:max_channels]
    tiles = activation_tiles(maps, scale, channel_ranges(maps, mode, global_range))
    return tile(tiles, ncols=ncols, pad=pad, scale=upscale)


def activation_figure(
    maps: np.ndarray,
    title: str = "",
    scale: str = "diverging",
    mode: str = "unit",
    global_range: tuple[float, float] | None = None,
    max_channels: int | None = 64,
    ncols: int | None = None,
    width: float = 8.0,
) -> Figure:
    """A titled figure of one layer's channel maps (C, H, W) with a colour bar.

    At most ``max_channels`` tiles are drawn (the title says how many were left out).
    In 'unit' mode each tile has its own range, so the colour bar is labelled relative
    (-max..0..+max) and each tile is captioned with its own maximum magnitude.
    """
    maps = _as_maps(maps)
    total = len(maps)
    shown = maps[:max_channels] if max_channels else maps
    n = len(shown)
    ranges = channel_ranges(shown, mode, global_range)
    h, w = shown.shape[1:]
    upscale = max(1, math.ceil(TILE_PIXELS / max(h, w)))
    ncols = ncols or max(1, math.ceil(math.sqrt(n * h / w)))
    pad = 2
    picture = tile(activation_tiles(shown, scale, ranges), ncols=ncols, pad=pad, scale=upscale)

    aspect = picture.shape[0] / picture.shape[1]
    fig = new_figure(width, min(max(width * aspect * 0.9 + 1.2, 2.5), 14.0))
    ax = fig.add_subplot()
    ax.imshow(picture, interpolation="nearest")
    ax.set_axis_off()
    more = f" (first {n} of {total} channels)" if n < total else f" ({total} channel{'s' * (total > 1)})"
    ax.set_title(f"{title}{more}\n{h}x{w} per channel, colour range: {_mode_label(mode)}", fontsize=10)
    if n <= 64:  # caption: channel index, and in 'unit' mode the tile's own maximum
        th, tw = h * upscale, w * upscale
        for k, (lo, hi) in enumerate(ranges):
            r, c = divmod(k, ncols)
            magnitude = max(abs(lo), abs(hi)) if scale == "diverging" else hi
            caption = f"{k}: {_short(magnitude)}" if mode == "unit" else str(k)
            ax.text(
                pad + c * (tw + pad) + 1,
                pad + r * (th + pad) + th - 1,
                caption,
                fontsize=6,
                va="bottom",
                ha="left",
                bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
            )
    add_colorbar(fig, ax, scale, None if mode == "unit" else ranges[0])
    return fig


def vector_figure(
    values: np.ndarray,
    title: str = "",
    scale: str = "logit",
    labels: Sequence[str] | None = None,
    mode: str = "layer",
    global_range: tuple[float, float] | None = None,
    max_bars: int = 40,
    row_length: int | None = None,
    width: float = 8.0,
) -> Figure:
    """A 1-D layer (flatten, linear, logits, probabilities) as bars or a colour strip.

    Up to ``max_bars`` values are drawn as labelled bars coloured by value; longer
    vectors become a strip of cells wrapped into rows of ``row_length`` (row-major,
    index 0 top left; e.g. H*W after a flatten, so each row is one channel).
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ConvscopeError("cannot draw an empty vector")
    lo, hi = channel_ranges([v], "layer" if mode == "unit" else mode, global_range)[0]
    if v.size <= max_bars:
        fig = new_figure(width, max(2.0, 0.28 * v.size + 1.0))
        ax = fig.add_subplot()
        colours = colorize(v[None], scale, lo, hi)[0] / 255.0
        y = np.arange(v.size)
        ax.barh(y, v, color=colours, edgecolor="#888888", linewidth=0.5)
        names = [str(labels[i]) if labels is not None and i < len(labels) else str(i) for i in range(v.size)]
        ax.set_yticks(y, names, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0.0, color="#444444", linewidth=0.8)
        for i, value in enumerate(v):
            ax.text(value, i, f" {_short(value)} ", va="center", ha="left" if value >= 0 else "right", fontsize=7)
        ax.set_title(f"{title} ({v.size} values)", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
        return fig
    ncols = row_length if row_length and 8 <= row_length <= v.size else max(1, math.ceil(math.sqrt(v.size * 4)))
    nrows = math.ceil(v.size / ncols)
    grid = np.full(nrows * ncols, np.nan)
    grid[: v.size] = v
    picture = colorize(grid.reshape(nrows, ncols), scale, lo, hi)
    picture[np.isnan(grid.reshape(nrows, ncols))] = 255
    fig = new_figure(width, min(max(width * nrows / ncols + 1.2, 2.0), 10.0))
    ax = fig.add_subplot()
    ax.imshow(picture, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{title} ({v.size} values, {ncols} per row)\ncolour range: {_mode_label(mode)}", fontsize=10)
    add_colorbar(fig, ax, scale, (lo, hi))
    return fig


# -- helpers --------------------------------------------------------------------------
def _as_maps(maps: np.ndarray) -> np.ndarray:
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ConvscopeError(f"activation maps must be (C, H, W) for one sample, got shape {a.shape}")
    if a.shape[0] == 0:
        raise ConvscopeError("a layer with 0 channels has nothing to draw")
    return a


def _mode_label(mode: str) -> str:
    return {"unit": "per channel", "layer": "per layer", "global": "all layers"}.get(mode, mode)


def _short(x: float) -> str:
    return f"{x:.2g}" if abs(x) < 0.01 or abs(x) >= 1000 else f"{x:.2f}"
