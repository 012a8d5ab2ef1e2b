"""Figures of dataset-level results, as pure functions from arrays to matplotlib Figures.

The tutorials' views: training curves, the confusion matrix, the "True / Pred" grid,
a misclassified gallery, an embedding scatter, activation maps of one sample, and
heatmap overlays. Figures are built with :class:`matplotlib.figure.Figure` (no pyplot
global state, so they are safe in a server thread) and turned into PNG or SVG bytes by
:func:`convscope.render.figure_io.figure_bytes`; the HTML report and ``PdfPages`` reuse
the same objects. Image grids are drawn as one canvas with text on it rather than one
axes per image, which is several times faster to build and save.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from .colormap import colorize, value_range
from .grid import as_rgb
from .heatmap import overlay

RIGHT, WRONG = "#1a7f37", "#cf222e"


def training_curves(curves: dict[str, Sequence[float]]) -> Figure:
    """Loss and accuracy per epoch, train and validation side by side.

    ``curves`` holds columns such as ``epoch``, ``train_loss``, ``val_loss``,
    ``train_acc``, ``val_acc`` (see :func:`convscope.analysis.runs.curves`).
    """
    epochs = list(curves.get("epoch") or range(1, 1 + max((len(v) for v in curves.values()), default=0)))
    fig = Figure(figsize=(9, 3.4))
    for ax, kind, title in zip(fig.subplots(1, 2), ("loss", "acc"), ("loss", "accuracy")):
        for key, values in curves.items():
            if key != "epoch" and key.endswith(kind):
                style = "--" if key.startswith("val") else "-"
                ax.plot(epochs[: len(values)], values, style, marker="o", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: np.ndarray, class_names: Sequence[str], per_class: np.ndarray | None = None) -> Figure:
    """The confusion matrix (rows: true class, columns: predicted), counts written in the cells.

    With ``per_class`` given, a bar chart of per-class accuracy sits beside it.
    """
    k = len(confusion)
    size = min(0.45 * k + 2.5, 14)
    fig = Figure(figsize=(size * (1.6 if per_class is not None else 1.0), size))
    axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]}) if per_class is not None else [fig.subplots()]
    ax = axes[0]
    ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(k), class_names, rotation=90 if k > 12 else 0, fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if k <= 30:
        top = confusion.max() or 1
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    ax.text(
                        j,
                        i,
                        str(int(confusion[i, j])),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if confusion[i, j] > top / 2 else "black",
                    )
    ax.set_title("confusion matrix")
    if per_class is not None:
        bar = axes[1]
        bar.barh(range(k), np.nan_to_num(per_class), color="#4c72b0")
        bar.set_yticks(range(k), class_names, fontsize=8)
        bar.invert_yaxis()
        bar.set_xlim(0, 1)
        bar.set_title("per-class accuracy")
    fig.tight_layout()
    return fig


Caption = tuple[float, float, str, str, str]  # x, y (pixels, text bottom), text, colour, alignment


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    """Nearest-neighbour resize of a uint8 image to ``height`` rows, keeping its aspect."""
    rgb = as_rgb(image)
    width = max(1, round(height * rgb.shape[1] / rgb.shape[0]))
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.NEAREST))


def _canvas_figure(canvas: np.ndarray, captions: Sequence[Caption], fontsize: float = 8, dpi: int = 100) -> Figure:
    """One picture at its own pixel size with text on it: far faster than one axes per image."""
    h, w = canvas.shape[:2]
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="nearest")
    ax.set_axis_off()
    for x, y, text, color, align in captions:
        ax.text(x, y, text, color=color, ha=align, va="bottom", fontsize=fontsize, linespacing=1.1)
    return fig


def labelled_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    colors: Sequence[str] | None = None,
    ncols: int = 8,
    cell: int = 72,
) -> Figure:
    """Images (uint8 HWC or HW) in a grid, each ``cell`` pixels high under a coloured caption."""
    cells = [_fit(img, cell) for img in images] or [np.full((cell, cell, 3), 255, np.uint8)]
    ncols = min(ncols, len(cells))
    nrows = math.ceil(len(cells) / ncols)
    cw = max(c.shape[1] for c in cells)
    pad, top = 6, 2 + 13 * max((t.count("\n") + 1 for t in titles), default=1)
    canvas = np.full((nrows * (cell + top + pad) + pad, ncols * (cw + pad) + pad, 3), 255, np.uint8)
    captions = []
    for i, c in enumerate(cells[: len(images)]):
        r, k = divmod(i, ncols)
        x, y = pad + k * (cw + pad), pad + r * (cell + top + pad) + top
        canvas[y : y + cell, x : x + c.shape[1]] = c
        captions.append((x + c.shape[1] / 2, y - 2, titles[i], colors[i] if colors else "black", "center"))
    return _canvas_figure(canvas, captions)


def true_pred_grid(
    images: Sequence[np.ndarray], true_names: Sequence[str], pred_names: Sequence[str], ncols: int = 8
) -> Figure:
    """The tutorials' grid: each image captioned "True: a / Pred: b", green if right, red if wrong."""
    titles = [f"True: {t}\nPred: {p}" for t, p in zip(true_names, pred_names)]
    colors = [RIGHT if t == p else WRONG for t, p in zip(true_names, pred_names)]
    return labelled_images(images, titles, colors, ncols)


def misclassified_gallery(
    images: Sequence[np.ndarray],
    true_names: Sequence[str],
    pred_names: Sequence[str],
    confidences: Sequence[float],
    ncols: int = 8,
) -> Figure:
    """Misclassified images captioned "true → pred (confidence)", in the order given."""
    titles = [f"{t} → {p}\n{100 * c:.1f}%" for t, p, c in zip(true_names, pred_names, confidences)]
    return labelled_images(images, titles, [WRONG] * len(titles), ncols)


def embedding_scatter(
    coords: np.ndarray, labels: np.ndarray, correct: np.ndarray, class_names: Sequence[str], title: str = "embedding"
) -> Figure:
    """2-D points coloured by true class; misclassified points drawn as black-edged crosses.

    Points are rasterised so that 10,000 of them stay light in SVG and PDF.
    """
    coords, labels, correct = np.asarray(coords), np.asarray(labels), np.asarray(correct, bool)
    k = len(class_names)
    cmap = "tab10" if k <= 10 else "tab20"
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    size = 6 if len(coords) > 3000 else 14
    # both sets of points on one colour scale: a class has one colour, right or wrong
    scale = {"cmap": cmap, "vmin": -0.5, "vmax": max(k, 10 if k <= 10 else 20) - 0.5, "rasterized": True}
    sc = ax.scatter(
        coords[correct, 0], coords[correct, 1], c=labels[correct], s=size, alpha=0.75, linewidths=0, **scale
    )
    wrong = ~correct
    if wrong.any():
        ax.scatter(
            coords[wrong, 0],
            coords[wrong, 1],
            c=labels[wrong],
            **scale,
            s=size * (5 if size > 6 else 3),
            marker="X",
            edgecolors="black",
            linewidths=0.6 if size > 6 else 0.3,
            label=f"misclassified ({int(wrong.sum())})",
        )
        ax.legend(loc="best", fontsize=8)
    if k <= 20:
        cbar = fig.colorbar(sc, ax=ax, ticks=range(k), fraction=0.04)
        cbar.ax.set_yticklabels(list(class_names), fontsize=8)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig


def activation_maps(
    maps: dict[str, np.ndarray], input_image: np.ndarray | None = None, max_channels: int = 12, cell: int = 48
) -> Figure:
    """One row per layer: up to ``max_channels`` channel maps (C, H, W) on one shared,
    zero-centred diverging scale per layer (CNN Explainer's 'layer' range mode); the
    input image, when given, leads the first row."""
    rows = [(name, np.asarray(m)[:max_channels]) for name, m in maps.items() if np.asarray(m).ndim == 3]
    ncols = max([len(m) for _, m in rows] + [1]) + 1
    pad, top = 4, 14
    canvas = np.full((max(len(rows), 1) * (cell + top + pad) + pad, ncols * (cell + pad) + pad, 3), 255, np.uint8)
    captions: list[Caption] = []
    for r, (name, shown) in enumerate(rows):
        lo, hi = value_range(list(shown), mode="layer")[0]
        y = pad + r * (cell + top + pad) + top
        if r == 0 and input_image is not None:
            img = _fit(input_image, cell)[:, :cell]
            canvas[y : y + cell, pad : pad + img.shape[1]] = img
            captions.append((pad + cell / 2, y - 1, "input", "black", "center"))
        x0 = pad + cell + pad
        captions.append((x0, y - 1, name, "black", "left"))
        for c, channel in enumerate(shown):
            x = x0 + c * (cell + pad)
            canvas[y : y + cell, x : x + cell] = _fit(colorize(channel, "diverging", lo, hi), cell)[:, :cell]
    return _canvas_figure(canvas, captions, fontsize=7)


def heatmap_overlays(
    images: Sequence[np.ndarray],
    heatmaps: Sequence[np.ndarray],
    titles: Sequence[str],
    alpha: float = 0.5,
    cell: int = 96,
) -> Figure:
    """Each image (top) above its heatmap (any (h, w) map, resized; 'heat' colours from 0 to its max) blended over it."""
    pad, top = 6, 16
    pairs = []
    for img, heat in zip(images, heatmaps):
        pairs.append((_fit(img, cell), _fit(overlay(img, heat, alpha, scale="heat"), cell)))
    cw = max([p[0].shape[1] for p in pairs] + [cell])
    canvas = np.full((2 * cell + top + 3 * pad, len(pairs) * (cw + pad) + pad, 3), 255, np.uint8)
    captions: list[Caption] = []
    for k, ((plain, blended), title) in enumerate(zip(pairs, titles)):
        x, y = pad + k * (cw + pad), pad + top
        canvas[y : y + cell, x : x + plain.shape[1]] = plain
        canvas[y + cell + pad : y + 2 * cell + pad, x : x + blended.shape[1]] = blended
        captions.append((x + plain.shape[1] / 2, y - 2, title, "black", "center"))
    return _canvas_figure(canvas, captions)


def table_figure(header: Sequence[str] | None, rows: Sequence[Sequence[object]], title: str = "") -> Figure:
    """A table as a figure (for the PDF report, where HTML tables do not exist)."""
    fig = Figure(figsize=(8, 0.3 * (len(rows) + 2) + 0.4))
    ax = fig.subplots()
    ax.axis("off")
    cells = [[str(c) for c in r] for r in rows] or [[""] * len(header or [""])]
    table = ax.table(cellText=cells, colLabels=list(header) if header else None, loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    if title:
        ax.set_title(title)
    return fig
