"""What is read off a dataset pass: accuracy, confusion, mistakes, a random sample.

Positions returned here are rows of the pass, which are rows of the dataset it ran on
(``dataset.images[row]``); ``DatasetPass.indices[row]`` maps them to the full dataset.
All results are plain NumPy arrays or JSON-able dicts, ready for a figure or the API.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..errors import ConvscopeError
from .dataset_pass import DatasetPass


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of images of true class ``i`` predicted as ``j`` (int64, K x K)."""
    labels, preds = np.asarray(labels, np.int64), np.asarray(preds, np.int64)
    if labels.shape != preds.shape:
        raise ConvscopeError(f"{labels.shape[0]} labels but {preds.shape[0]} predictions")
    if len(labels) and (min(labels.min(), preds.min()) < 0 or max(labels.max(), preds.max()) >= num_classes):
        raise ConvscopeError(f"labels and predictions must lie in 0..{num_classes - 1}")
    return np.bincount(labels * num_classes + preds, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Recall of each class, ``C[i, i] / sum_j C[i, j]``; NaN for a class with no images."""
    totals = confusion.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def cell_rows(result: DatasetPass, true: int, pred: int) -> np.ndarray:
    """Rows of the images behind confusion cell (true, pred), in dataset order."""
    return np.flatnonzero((result.labels == true) & (result.preds == pred))


@dataclass(frozen=True)
class Mistake:
    """One misclassified image: its row, its index in the full dataset, and the verdict."""

    row: int
    index: int
    true: int
    pred: int
    confidence: float  # probability the model gave its (wrong) prediction
    true_prob: float  # probability it gave the right class


def misclassified(result: DatasetPass, limit: int | None = None) -> list[Mistake]:
    """Misclassified images, most confident mistakes first (ties broken by row)."""
    rows = np.flatnonzero(~result.correct)
    conf = result.confidence[rows]
    order = rows[np.lexsort((rows, -conf))]
    if limit is not None:
        order = order[:limit]
    return [
        Mistake(
            int(r),
            int(result.indices[r]),
            int(result.labels[r]),
            int(result.preds[r]),
            float(result.probs[r, result.preds[r]]),
            float(result.probs[r, result.labels[r]]),
        )
        for r in order
    ]


def random_rows(n_rows: int, count: int, seed: int = 0) -> np.ndarray:
    """A seeded random sample of ``count`` distinct rows (for the "True / Pred" grid)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=min(count, n_rows), replace=False))


def evaluate(result: DatasetPass) -> dict[str, Any]:
    """The summary numbers as JSON: accuracy, mean loss, per-class accuracy, confusion matrix."""
    cm = confusion_matrix(result.labels, result.preds, result.num_classes)
    per_class = per_class_accuracy(cm)
    return {
        "count": len(result),
        "accuracy": float(result.correct.mean()) if len(result) else float("nan"),
        "mean_loss": float(result.loss.mean()) if len(result) else float("nan"),
        "classes": list(result.classes),
        "per_class_accuracy": [None if np.isnan(a) else float(a) for a in per_class],
        "confusion": cm.tolist(),
        "errors": int((~result.correct).sum()),
    }


def mistakes_json(mistakes: list[Mistake], result: DatasetPass) -> list[dict[str, Any]]:
    """:func:`misclassified` as JSON rows with class names."""
    return [
        {**asdict(m), "true_name": result.class_name(m.true), "pred_name": result.class_name(m.pred)} for m in mistakes
    ]
