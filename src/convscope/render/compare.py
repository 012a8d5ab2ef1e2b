"""Figures of a comparison of two forward passes (:mod:`convscope.compare`): pure, arrays in.

* :func:`distance_figure`: the per-layer distance curve (relative L2 and cosine
  similarity by layer), where one sees at which layer two inputs part;
* :func:`layer_figure`: one layer's maps as three aligned grids, a | b | a - b: channel
  k sits at the same place in each; a and b share one colour range (one layer's scale
  over both), the difference has its own diverging one (white = equal);
* :func:`attribution_figure`: two heatmaps on one scale and their difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvscopeError
from .activations import activation_tiles, scale_for_kind
from .figure_io import add_colorbar, new_figure
from .grid import as_rgb, tile
from .heatmap import heatmap_rgb, overlay

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

TILE_PIXELS = 40  # small maps are upscaled (nearest neighbour) to about this size


def distance_figure(
    names: Sequence[str],
    relative_l2: Sequence[float | None],
    cosine: Sequence[float | None],
    title: str = "",
    width: float | None = None,
) -> Figure:
    """Relative L2 distance ||a-b|| / ||a|| (left axis) and cosine similarity (right axis) by layer.

    Missing values (None / NaN / inf) leave a gap in their curve.
    """
    if not names:
        raise ConvscopeError("no layers to draw: the two traces have no layer in common")
    x = np.arange(len(names))
    rel = _values(relative_l2)
    cos = _values(cosine)
    fig = new_figure(width or max(6.0, 0.42 * len(names) + 2.0), 4.2)
    ax = fig.add_subplot()
    ax.plot(x, rel, marker="o", ms=4, color="#b2182b", label="relative L2  ||a-b|| / ||a||")
    ax.set_ylabel("relative L2 distance", color="#b2182b")
    ax.set_ylim(bottom=0.0)
    ax.set_xticks(x, list(names), rotation=70, ha="right", fontsize=7)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    twin = ax.twinx()
    twin.plot(x, cos, marker="s", ms=3, color="#2166ac", linestyle="--", label="cosine similarity")
    twin.set_ylabel("cosine similarity", color="#2166ac")
    twin.set_ylim(min(-0.05, float(np.nanmin(cos, initial=0.0)) - 0.05), 1.05)
    lines = ax.get_lines() + twin.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="upper left")
    ax.set_title(title or "where do the two part? distance by layer", fontsize=10)
    return fig


def layer_figure(
    a: np.ndarray,
    b: np.ndarray,
    kind: str = "conv",
    title: str = "",
    labels: tuple[str, str] = ("a", "b"),
    max_channels: int | None = 32,
    width: float = 11.0,
) -> Figure:
    """One layer of one sample, a | b | a - b: maps (C, H, W) or a vector (N,).

    a and b are coloured with one range over both (the layer's scale, :func:`scale_for_kind`);
    a - b with a diverging scale symmetric around 0. At most ``max_channels`` channels.
    """
    ma, mb = _as_maps(a), _as_maps(b)
    vector = np.ndim(a) == 1
    if ma.shape != mb.shape:
        raise ConvscopeError(f"the two maps differ in shape ({ma.shape} vs {mb.shape})")
    total = ma.shape[0]
    ma, mb = ma[:max_channels], mb[:max_channels]
    diff = ma - mb
    scale = scale_for_kind(kind)
    n, h, w = ma.shape
    ncols = max(1, math.ceil(math.sqrt(n * h / w)))
    rows = math.ceil(n / ncols)
    upscale = max(1, math.ceil(TILE_PIXELS / max(h, w)))
    both = (float(np.nanmin([ma, mb])), float(np.nanmax([ma, mb])))
    dmax = float(np.nanmax(np.abs(diff))) or 1.0
    panels = [
        (labels[0], ma, scale, both),
        (labels[1], mb, scale, both),
        (f"{labels[0]} − {labels[1]}", diff, "diverging", (-dmax, dmax)),
    ]
    fig = new_figure(width, min(max(width / 3 * rows * h / (ncols * w) + 1.4, 2.4), 12.0))
    for i, (label, maps, sc, vrange) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(tile(_tiles(maps, sc, vrange), ncols=ncols, pad=2, scale=upscale), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(label, fontsize=9)
        if i != 0:  # a's bar would repeat b's: they share one range
            add_colorbar(fig, ax, sc, vrange)
    more = f", first {n} of {total} channels" if n < total else ""
    what = f"{np.size(a)} values, {w} per row" if vector else f"{n} × {h}x{w}{more}"
    fig.suptitle(f"{title} ({what})", fontsize=10)
    return fig


def attribution_figure(
    image_a: np.ndarray,
    image_b: np.ndarray,
    map_a: np.ndarray,
    map_b: np.ndarray,
    top: float,
    labels: tuple[str, str] = ("a", "b"),
    title: str = "",
    alpha: float = 0.5,
) -> Figure:
    """Two heatmaps (H, W) over their images on one scale (``top``), and a - b alone."""
    signed = min(float(np.min(map_a)), float(np.min(map_b))) < 0
    scale = "diverging" if signed else "heat"
    diff = np.asarray(map_a, dtype=np.float64) - np.asarray(map_b, dtype=np.float64)
    dtop = float(np.abs(diff).max()) or 1.0
    fig = new_figure(9.0, 3.6)
    panels = [
        (labels[0], overlay(image_a, map_a, alpha, scale, top=top), scale, (0.0 if not signed else -top, top)),
        (labels[1], overlay(image_b, map_b, alpha, scale, top=top), scale, (0.0 if not signed else -top, top)),
        (f"{labels[0]} − {labels[1]}", heatmap_rgb(diff, "diverging", top=dtop), "diverging", (-dtop, dtop)),
    ]
    for i, (label, picture, sc, vrange) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(as_rgb(picture), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(label, fontsize=9)
        if i:
            add_colorbar(fig, ax, sc, vrange)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def _tiles(maps: np.ndarray, scale: str, vrange: tuple[float, float]) -> list[np.ndarray]:
    """Each map coloured over one range; NaN (a wrapped vector's padding) is left white."""
    tiles = activation_tiles(np.nan_to_num(maps), scale, [vrange] * len(maps))
    for t, m in zip(tiles, maps):
        t[np.isnan(m)] = 255
    return tiles


def _values(values: Sequence[float | None]) -> np.ndarray:
    v = np.array([np.nan if x is None else float(x) for x in values], dtype=np.float64)
    v[~np.isfinite(v)] = np.nan
    return v


def _as_maps(a: np.ndarray) -> np.ndarray:
    """(C, H, W) as is; (H, W) as one map; (N,) as one map wrapped into rows (NaN pads the last)."""
    m = np.asarray(a, dtype=np.float64)
    if m.ndim == 1:
        ncols = max(1, math.ceil(math.sqrt(m.size * 4)))
        grid = np.full(math.ceil(m.size / ncols) * ncols, np.nan)
        grid[: m.size] = m
        m = grid.reshape(1, -1, ncols)
    elif m.ndim == 2:
        m = m[None]
    if m.ndim != 3 or m.shape[0] == 0 or m.size == 0:
        raise ConvscopeError(f"layer maps must be (C, H, W), (H, W) or (N,) for one sample, got {np.shape(a)}")
    return m
