"""The confusion-matrix figure: a pure function from a count matrix to a picture."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .figure import figure_to_array


def confusion_figure(
    matrix: np.ndarray, classes: Sequence[str] | None = None, title: str | None = None, annotate: bool | None = None
) -> np.ndarray:
    """Render ``matrix[i, j]`` (true class i, predicted j) as uint8 RGB (H, W, 3).

    Cells are coloured by the row-normalised rate ``C[i, j] / sum_j C[i, j]`` (so rare
    classes are as readable as common ones) and labelled with the raw counts; the
    diagonal holds each class's correct predictions. ``annotate`` defaults to counts
    only when there are at most 30 classes.
    """
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {m.shape}")
    k = m.shape[0]
    names = [str(c) for c in (classes if classes is not None else range(k))]
    rows = m.sum(1, keepdims=True)
    rate = np.divide(m, rows, out=np.zeros(m.shape, float), where=rows > 0)
    annotate = k <= 30 if annotate is None else annotate

    from matplotlib.figure import Figure

    side = min(max(4.0, 0.45 * k + 2.0), 24.0)
    fig = Figure(figsize=(side + 1.2, side), dpi=100)
    ax = fig.add_subplot()
    im = ax.imshow(rate, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ticks = np.arange(k)
    ax.set_xticks(ticks, names if k <= 60 else [""] * k, rotation=90 if max(map(len, names)) > 3 else 0)
    ax.set_yticks(ticks, names if k <= 60 else [""] * k)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if annotate:
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(
                        j,
                        i,
                        str(int(m[i, j])),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if rate[i, j] > 0.5 else "black",
                    )
    total = int(m.sum())
    acc = float(np.trace(m)) / total if total else 0.0
    ax.set_title(title or f"confusion matrix: accuracy {acc:.2%} of {total} images")
    fig.tight_layout()
    return figure_to_array(fig)
