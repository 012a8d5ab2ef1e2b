"""The input/prediction panel: the pixels the network saw, beside its top-k classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvscopeError
from .colormap import colorize
from .figure_io import new_figure
from .grid import as_rgb

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure


def top_k(probs: np.ndarray, labels: Sequence[str] | None = None, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable classes as ``(label, probability)``, most probable first."""
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    order = np.argsort(-p, kind="stable")[:k]
    return [(str(labels[i]) if labels is not None and i < len(labels) else str(i), float(p[i])) for i in order]


def prediction_panel(
    image: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str] | None = None,
    k: int = 5,
    title: str = "",
    width: float = 8.0,
) -> Figure:
    """Image (H, W[, C]) uint8 on the left, the top-``k`` probabilities as orange bars on the right."""
    img = np.asarray(image)
    if img.ndim not in (2, 3) or img.dtype != np.uint8:
        raise ConvscopeError(f"the panel needs a uint8 image (H, W) or (H, W, C), got {img.dtype} {img.shape}")
    top = top_k(probs, labels, k)
    fig = new_figure(width, width * 0.42)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.3])
    left.imshow(as_rgb(img), interpolation="nearest")
    left.set_title(f"input {img.shape[1]}x{img.shape[0]}", fontsize=9)
    left.set_axis_off()
    values = np.array([p for _, p in top])
    colours = colorize(values[None], "logit", 0.0, 1.0)[0] / 255.0
    y = np.arange(len(top))
    right.barh(y, values, color=colours, edgecolor="#7f2704", linewidth=0.6)
    right.set_yticks(y, [name for name, _ in top], fontsize=9)
    right.invert_yaxis()
    right.set_xlim(0.0, 1.0)
    right.set_xlabel("probability", fontsize=8)
    for i, p in enumerate(values):
        inside = p > 0.75  # white text inside a long (dark) bar, black text after a short one
        right.text(
            p - 0.01 if inside else p + 0.01,
            i,
            f"{p:.1%}",
            va="center",
            fontsize=8,
            ha="right" if inside else "left",
            color="white" if inside else "black",
        )
    right.spines[["top", "right"]].set_visible(False)
    right.set_title(f"top {len(top)}", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
