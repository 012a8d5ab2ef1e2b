"""The tutorials' "True / Pred" grid: images titled with their true and predicted labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .figure import figure_to_array
from .grid import as_rgb


def prediction_grid(
    images: Sequence[np.ndarray],
    true: Sequence[str],
    pred: Sequence[str],
    probs: Sequence[float] | None = None,
    ncols: int | None = None,
) -> np.ndarray:
    """uint8 images (H, W[, C]) with "True: t / Pred: p (prob)" titles -> uint8 RGB picture.

    Titles are green where the prediction is right and red where it is wrong.
    """
    n = len(images)
    if not (n == len(true) == len(pred)) or (probs is not None and len(probs) != n) or n == 0:
        raise ValueError("prediction_grid needs one true label, one prediction (and one probability) per image")
    ncols = ncols or min(n, 8)
    nrows = int(np.ceil(n / ncols))

    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.6 * ncols, 1.9 * nrows), dpi=100)
    for k, image in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        rgb = as_rgb(image)
        ax.imshow(rgb, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        label = f"True: {true[k]}\nPred: {pred[k]}" + (f" ({probs[k]:.0%})" if probs is not None else "")
        ax.set_title(label, fontsize=8, color="tab:green" if str(true[k]) == str(pred[k]) else "tab:red")
    fig.tight_layout()
    return figure_to_array(fig)
