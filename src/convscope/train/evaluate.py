"""Accuracy, per-class accuracy and the confusion matrix of a model on a dataset.

The confusion matrix ``C`` counts images by true class (row) and predicted class
(column): ``C[i, j] = #{n : y_n = i, argmax_k f(x_n)_k = j}``. Accuracy is
``trace(C) / sum(C)``; the accuracy of class ``i`` is ``C[i, i] / sum_j C[i, j]``
(its recall), undefined (None) for a class with no images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data import ImageDataset, as_dataset
from ..errors import ConvscopeError
from ..models import Model, Preprocessing
from ..probe import model_state


@torch.no_grad()
def predict_logits(
    net: nn.Module,
    dataset: ImageDataset,
    preprocessing: Preprocessing,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
) -> torch.Tensor:
    """Logits (N, K) on the CPU for a dataset already conformed to ``preprocessing``.

    The net runs in eval mode and every module's previous mode is restored. A net that cannot
    take this input shape gets a one-line :class:`ConvscopeError`.
    """
    out = []
    with model_state(net):
        for x, _ in dataset.batches(preprocessing, batch_size=batch_size):
            try:
                out.append(net(x.to(device)).float().cpu())
            except RuntimeError as exc:
                first = str(exc).strip().splitlines()[0][:200]
                raise ConvscopeError(
                    f"the model cannot take input of shape {tuple(x.shape[1:])} "
                    f"(as {preprocessing.channels}x{preprocessing.size[0]}x{preprocessing.size[1]}): "
                    f"{first}"
                ) from None
    if not out:
        raise ConvscopeError(f"{dataset.name} has no images to evaluate")
    return torch.cat(out)


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """``C[i, j]`` = number of images of true class i predicted as j (int64, K x K)."""
    flat = np.asarray(labels, np.int64) * num_classes + np.asarray(preds, np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def wilson_interval(right: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson's score interval for ``right`` successes in ``n`` trials (95% by default); (0, 1)
    for no trials. Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = right / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Evaluation:
    """What :func:`evaluate` measured; ``to_dict()`` is the ``--json`` output."""

    classes: list[str]
    confusion: np.ndarray  # (K, K) int64, rows = true class, columns = predicted
    loss: float
    dataset: str = ""
    split: str = ""
    note: str = ""
    predictions: np.ndarray | None = None  # (N,) predicted class per image, in dataset order
    extra: dict[str, Any] = field(default_factory=dict)  # added to to_dict(), e.g. the split seed

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.n, 1))

    @property
    def accuracy_interval(self) -> tuple[float, float]:
        """The 95% Wilson score interval of the accuracy: how far the accuracy of a split of this
        size can sit from the model's accuracy on more data of the same kind (1/1 right gives
        0.21-1.00: a tiny test split says little, and this says how little)."""
        return wilson_interval(int(np.trace(self.confusion)), self.n)

    @property
    def per_class(self) -> list[float | None]:
        rows = self.confusion.sum(1)
        return [float(self.confusion[i, i] / r) if r else None for i, r in enumerate(rows)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "note": self.note,
            "images": self.n,
            "accuracy": self.accuracy,
            "accuracy_95": list(self.accuracy_interval),
            "loss": self.loss,
            "classes": list(self.classes),
            "per_class_accuracy": dict(zip(self.classes, self.per_class)),
            "confusion_matrix": self.confusion.tolist(),
            **self.extra,
        }


def evaluate(
    model: Model, dataset: ImageDataset | str, batch_size: int = 512, split: str = "", engine: Any = "local"
) -> Evaluation:
    """Run ``model`` over ``dataset`` (conformed to the model's input first) and count.

    The model's outputs are read as scores over the dataset's classes in order, so the
    class counts must agree. ``engine="ray"`` (or a RayEngine) runs the pass on Ray workers
    (:func:`convscope.analysis.run_pass`): the same predictions, the loss to float32 rounding.
    """
    if isinstance(dataset, str):  # a name such as "digits": its test split unless split= says another
        split = split or "test"
    dataset = as_dataset(dataset, split or "test")
    k = len(dataset.classes)
    if model.classes is not None and len(model.classes) != k:
        raise ConvscopeError(f"{model.name} predicts {len(model.classes)} classes but {dataset.name} has {k}")
    data = dataset.conform(model.preprocessing)
    if engine not in (None, "local"):
        from ..analysis.dataset_pass import run_pass

        result = run_pass(model, data, batch_size=batch_size, progress=False, engine=engine)
        if result.num_classes != k:
            raise ConvscopeError(f"{model.name} outputs {result.num_classes} class scores, not {k}")
        loss, preds = float(result.loss.mean()), result.preds
    else:
        logits = predict_logits(model.net, data, model.preprocessing, model.device, batch_size)
        if logits.dim() != 2 or logits.shape[1] != k:
            raise ConvscopeError(f"{model.name} outputs shape {tuple(logits.shape[1:])}, not {k} class scores")
        loss = float(torch.nn.functional.cross_entropy(logits, data.labels))
        preds = logits.argmax(1).numpy()
    cm = confusion_matrix(data.labels.numpy(), preds, k)
    return Evaluation(
        list(dataset.classes), cm, loss, dataset=dataset.name, split=split, note=dataset.note, predictions=preds
    )
