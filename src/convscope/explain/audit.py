"""A dataset-wide audit of an attribution method: how faithful its maps are, class by class.

For every image of a dataset: the method's map for the predicted class, its deletion and
insertion AUC (:mod:`convscope.explain.metrics`), and whether the map is degenerate (not
finite, or constant: it ranks no pixel above another, so deletion and insertion then only
measure the pixel order's tie-break). :meth:`Audit.per_class` summarises per true class:
mean deletion AUC (lower is better), mean insertion AUC (higher is better) and the
fraction of degenerate maps.

Like the dataset pass it is made to be split: :func:`audit` on a shard gives a partial,
:func:`merge` concatenates partials in shard order, and each image's numbers depend
only on the batch it was in, so the Ray engine (``engine="ray"``), which keeps the local
batches, gives the same numbers bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.base import ImageDataset
from ..data.registry import as_dataset
from ..errors import ConvscopeError
from ..features.progress import CancelFn, ProgressFn, tick
from ..models.model import Model, as_model
from ..progress import ProgressArg, progress_callback
from ..scale.engine import Engine, map_merged
from .base import get_method
from .metrics import deletion, insertion


@dataclass
class Audit:
    """Per-image faithfulness of one method's maps, in dataset order."""

    method: str
    layer: str | None
    classes: list[str]
    indices: np.ndarray  # (N,) int64 positions in the full dataset
    labels: np.ndarray  # (N,) int64 true classes
    targets: np.ndarray  # (N,) int64 the class each map explains (the prediction)
    deletion: np.ndarray  # (N,) float32 deletion AUC
    insertion: np.ndarray  # (N,) float32 insertion AUC
    degenerate: np.ndarray  # (N,) bool: the map is constant or not finite

    def __len__(self) -> int:
        return int(len(self.indices))

    def per_class(self) -> list[dict[str, Any]]:
        """One row per class with images: count, mean deletion / insertion AUC, degenerate fraction."""
        rows = []
        for k, name in enumerate(self.classes):
            sel = self.labels == k
            if sel.any():
                rows.append(
                    {
                        "class": name,
                        "count": int(sel.sum()),
                        "deletion_auc": float(self.deletion[sel].mean()),
                        "insertion_auc": float(self.insertion[sel].mean()),
                        "degenerate": float(self.degenerate[sel].mean()),
                    }
                )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON: the summary over all images, per class, and the per-image arrays."""
        arrays = {k: v.tolist() for k, v in asdict(self).items() if isinstance(v, np.ndarray)}
        return {
            "method": self.method,
            "layer": self.layer,
            "count": len(self),
            "deletion_auc": float(self.deletion.mean()) if len(self) else float("nan"),
            "insertion_auc": float(self.insertion.mean()) if len(self) else float("nan"),
            "degenerate": float(self.degenerate.mean()) if len(self) else float("nan"),
            "per_class": self.per_class(),
            "images": arrays,
        }


def audit(
    model: Model | nn.Module,
    dataset: ImageDataset | str,
    method: str = "gradcam",
    layer: str | None = None,
    steps: int = 20,
    batch_size: int = 32,
    progress: ProgressFn | ProgressArg = None,
    cancel: CancelFn = None,
    engine: Engine = "local",
) -> Audit:
    """Explain every image of ``dataset`` (its predicted class) with ``method`` and score the maps.

    ``steps`` pixel fractions per deletion / insertion curve (zero and blur substrates,
    as :func:`deletion` and :func:`insertion`). ``progress(done, total)`` per batch;
    ``cancel()`` stops it. ``engine="ray"`` spreads the batches over Ray workers.
    """
    if steps < 1 or batch_size < 1:
        raise ConvscopeError(f"steps and batch_size must be at least 1, not {steps} and {batch_size}")
    dataset = as_dataset(dataset)  # a name such as "digits": its test split
    progress = progress_callback(progress, f"audit {method}", "image")  # True / False as well as a callable
    if engine not in (None, "local"):
        report = partial(tick, progress, cancel)
        return map_merged(
            engine, "audit", model, dataset, batch_size, merge, report, method=method, layer=layer, steps=steps
        )
    model = as_model(model)
    explainer = get_method(method)(model, layer)
    data = dataset.conform(model.preprocessing)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("targets", "deletion", "insertion", "degenerate")}
    done = 0
    tick(progress, cancel, 0, len(data))
    for x, _y in data.batches(model.preprocessing, batch_size):
        x = x.to(model.device)
        maps = explainer(x, None)
        flat = maps.maps.flatten(1).float()
        out["degenerate"].append((~torch.isfinite(flat).all(1) | (flat.amax(1) - flat.amin(1) <= 0)).cpu().numpy())
        out["targets"].append(maps.targets.cpu().numpy().astype(np.int64))
        out["deletion"].append(deletion(model, x, maps, steps=steps, batch_size=batch_size).auc.cpu().numpy())
        out["insertion"].append(insertion(model, x, maps, steps=steps, batch_size=batch_size).auc.cpu().numpy())
        done += len(x)
        tick(progress, cancel, done, len(data))
    cat = {
        k: np.concatenate(v) if v else np.zeros(0, bool if k == "degenerate" else np.float32) for k, v in out.items()
    }
    return Audit(
        method=method,
        layer=None if layer is None else str(layer),
        classes=list(model.classes or dataset.classes),
        indices=data.indices.numpy().astype(np.int64),
        labels=data.labels.numpy().astype(np.int64),
        targets=cat["targets"].astype(np.int64),
        deletion=cat["deletion"].astype(np.float32),
        insertion=cat["insertion"].astype(np.float32),
        degenerate=cat["degenerate"].astype(bool),
    )


def merge(partials: Sequence[Audit]) -> Audit:
    """The audit of the union of disjoint shards, concatenated in the order given (shard order)."""
    if not partials:
        raise ConvscopeError("nothing to merge")
    first = partials[0]
    if any((p.method, p.layer, p.classes) != (first.method, first.layer, first.classes) for p in partials):
        raise ConvscopeError("these audits are of different methods, layers or models; cannot merge")
    keys = ("indices", "labels", "targets", "deletion", "insertion", "degenerate")
    cat = {k: np.concatenate([getattr(p, k) for p in partials]) for k in keys}
    return Audit(method=first.method, layer=first.layer, classes=first.classes, **cat)
