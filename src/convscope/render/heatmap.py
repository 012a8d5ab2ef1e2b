"""Heatmaps over images, the side-by-side methods figure and the sanity-check figure.

Pure functions from NumPy arrays to uint8 RGB pictures: nothing here runs a model.
Non-negative maps use the 'heat' scale from 0 to (nearly) their maximum; signed maps the
diverging red-blue scale centred on zero (white = 0), so a negative attribution never
looks like a weak positive one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .colormap import colorize
from .grid import as_rgb


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float map (h, w) -> (H, W) bilinearly; no-op when the size already matches."""
    v = np.asarray(values, dtype=np.float32)
    if v.shape == tuple(size):
        return v
    return np.asarray(Image.fromarray(v, mode="F").resize((size[1], size[0]), Image.BILINEAR))


def clip_top(*maps: np.ndarray, clip_percentile: float = 99.5) -> float:
    """The top of a heatmap's range: the ``clip_percentile`` of |values| over all ``maps``
    together (one scale for several maps), else their maximum, else 1."""
    v = np.abs(np.nan_to_num(np.concatenate([np.asarray(m, dtype=np.float64).ravel() for m in maps])))
    if v.size == 0:
        return 1.0
    return float(np.percentile(v, clip_percentile)) or float(v.max()) or 1.0


def heatmap_rgb(
    values: np.ndarray, scale: str | None = None, clip_percentile: float = 99.5, top: float | None = None
) -> np.ndarray:
    """A map (H, W) -> uint8 RGB: 'heat' from 0 when it has no negatives, else 'diverging'.

    The top of the range is the ``clip_percentile`` of the absolute values, so a few
    extreme pixels (typical of gradients) do not wash out the rest; 100 uses the maximum.
    ``top`` gives it instead (several maps drawn on one scale: :func:`clip_top` of them all).
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    if scale is None:
        scale = "diverging" if v.min() < 0 else "heat"
    top = clip_top(v, clip_percentile=clip_percentile) if top is None else float(top)
    if scale == "diverging":
        return colorize(np.clip(v, -top, top), "diverging", vmin=-top, vmax=top)
    return colorize(np.clip(v, None, top), scale, vmin=0.0 if v.min() >= 0 else None, vmax=top)


def overlay(
    image: np.ndarray, values: np.ndarray, alpha: float = 0.5, scale: str | None = None, top: float | None = None
) -> np.ndarray:
    """Blend the coloured map over ``image`` (uint8 (H, W[, C])); the map is resized to the image.
    ``top``: the range's top, as :func:`heatmap_rgb` takes it."""
    img = as_rgb(image).astype(np.float32)
    heat = heatmap_rgb(_resize(values, img.shape[:2]), scale, top=top).astype(np.float32)
    return np.clip((1 - alpha) * img + alpha * heat, 0, 255).round().astype(np.uint8)


def _figure_array(fig) -> np.ndarray:
    from .figure import figure_to_array

    return figure_to_array(fig)


def _new_figure(width: float, height: float):
    """A figure outside pyplot: drawing one never switches the caller's backend (a notebook's
    inline one) nor leaves a figure open in pyplot."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100)


def methods_figure(
    image: np.ndarray,
    maps: dict[str, np.ndarray],
    title: str = "",
    notes: dict[str, str] | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """The input and one overlay per method side by side, titled; ``notes`` go under each panel."""
    notes = notes or {}
    n = len(maps) + 1
    fig = _new_figure(2.4 * n, 2.9)
    panels = [("input", as_rgb(image))] + [(k, overlay(image, v, alpha)) for k, v in maps.items()]
    for i, (name, pic) in enumerate(panels):
        ax = fig.add_subplot(1, n, i + 1)
        ax.imshow(pic)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if name in notes:
            ax.set_xlabel(notes[name], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _figure_array(fig)


def sanity_figure(
    image: np.ndarray,
    steps: Sequence[str],
    maps: dict[str, np.ndarray],
    spearman: dict[str, np.ndarray],
    ssim: dict[str, np.ndarray],
    max_columns: int = 8,
    words: bool = True,
) -> np.ndarray:
    """Cascading randomisation at a glance.

    Top: per method (rows) the map on the original model and after a spread of
    randomisation steps (columns, at most ``max_columns``). Bottom: Spearman and SSIM
    against the original, per method, over all steps. ``maps[m]`` is (steps + 1, H, W),
    ``spearman[m]`` / ``ssim[m]`` are (steps + 1,).

    ``words=False`` is the page's figure: steps are numbered (0 = the original) instead of
    named, and there is no title, so no English is drawn into the pixels; the page writes the
    caption and the step names beside it in the reader's language. Method names, "Spearman"
    and "SSIM" are names and stay.
    """
    methods = list(maps)
    total = len(steps) + 1
    cols = sorted(set(np.linspace(0, total - 1, min(max_columns, total)).round().astype(int).tolist()))
    labels = ["original"] + [f"to {s}" for s in steps] if words else [str(i) for i in range(total)]
    nrows = len(methods) + 1
    fig = _new_figure(1.7 * (len(cols) + 1), 1.8 * len(methods) + 3.2)
    grid = fig.add_gridspec(nrows, len(cols) + 1, height_ratios=[1] * len(methods) + [1.7])
    for r, m in enumerate(methods):
        ax = fig.add_subplot(grid[r, 0])
        ax.imshow(as_rgb(image))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(m, fontsize=9)
        for c, step in enumerate(cols):
            ax = fig.add_subplot(grid[r, c + 1])
            ax.imshow(heatmap_rgb(np.abs(maps[m][step])))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(labels[step], fontsize=7)
    half = (len(cols) + 1) // 2
    curves = [("Spearman rank correlation (|map|)" if words else "Spearman", spearman), ("SSIM", ssim)]
    for k, (label, values) in enumerate(curves):
        ax = fig.add_subplot(grid[nrows - 1, k * half : (k + 1) * half if k == 0 else len(cols) + 1])
        for m in methods:
            ax.plot(range(total), np.asarray(values[m], dtype=float), marker="o", ms=3, label=m)
        ax.set_xticks(range(total))
        ax.set_xticklabels(labels, rotation=90 if words else 0, fontsize=6)
        low = min([-0.2] + [float(np.nanmin(np.asarray(values[m], dtype=float))) - 0.05 for m in methods])
        ax.set_ylim(max(low, -1.05), 1.05)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7)
    if words:
        fig.suptitle("Sanity check: cascading randomisation from the output (Adebayo et al. 2018)", fontsize=10)
    fig.tight_layout()
    return _figure_array(fig)


def curves_figure(fractions: np.ndarray, curves: dict[str, np.ndarray], title: str) -> np.ndarray:
    """Deletion or insertion curves of several methods on one plot (probability vs fraction)."""
    fig = _new_figure(4.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    for name, values in curves.items():
        ax.plot(np.asarray(fractions), np.asarray(values), label=name)
    ax.set_xlabel("fraction of pixels")
    ax.set_ylabel("class probability")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _figure_array(fig)
