"""One batched pass of a model over a dataset: predictions, probabilities, losses, features.

Every dataset-level view (accuracy, confusion matrix, misclassified gallery, the
"True / Pred" grid, the embedding) is read off a :class:`DatasetPass`, so the model
runs over the data once. A pass over a shard (``dataset.shard(i, n)``) is a partial
result; :func:`merge` of all shards equals the pass over the whole dataset exactly,
so a large dataset can be split across workers and stitched back together.

Rows are in dataset order: row ``r`` is ``dataset.images[r]``, and ``indices[r]`` is
that image's position in the full, unsplit dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data.base import ImageDataset
from ..data.registry import as_dataset
from ..errors import ConvscopeError, NotFound
from ..io_utils import load_arrays, save_arrays
from ..models.model import Model, as_model
from ..outputs import OutputSpec
from ..probe import capture, model_state, resolve_layer
from ..scale.engine import Engine, engine_scope

#: ``callback(done, total)`` after every batch; raising from it cancels the pass.
Progress = Callable[[int, int], None]

_ARRAYS = ("labels", "preds", "probs", "loss", "features", "indices")


@dataclass
class DatasetPass:
    """What one model did on every image of a dataset (or of one shard of it).

    ``probs`` are softmax probabilities (N, K); ``loss`` the per-sample cross-entropy
    ``-log softmax(z)[y]``; ``features`` (N, D) the flattened ``feature_side`` of
    ``layer`` (by default the input of the last ``nn.Linear``: the penultimate features).
    """

    labels: np.ndarray
    preds: np.ndarray
    probs: np.ndarray
    loss: np.ndarray
    features: np.ndarray
    indices: np.ndarray
    classes: list[str]
    layer: str
    feature_side: str = "input"
    dataset: str = ""
    shard: tuple[int, int] | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-able: model name, split, seed, cache key

    def __len__(self) -> int:
        return int(len(self.labels))

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class, (N,)."""
        return self.probs[np.arange(len(self)), self.preds]

    @property
    def correct(self) -> np.ndarray:
        return self.preds == self.labels

    def class_name(self, k: int) -> str:
        return self.classes[k] if 0 <= k < len(self.classes) else str(k)

    # -- persistence (NumPy arrays + JSON, never pickle) ---------------------------
    def save(self, path: str | Path) -> Path:
        """Write atomically as ``.npz`` (loadable with ``allow_pickle=False``)."""
        header = {
            "classes": self.classes,
            "layer": self.layer,
            "feature_side": self.feature_side,
            "dataset": self.dataset,
            "shard": list(self.shard) if self.shard else None,
            "meta": self.meta,
        }
        return save_arrays(path, header, {k: getattr(self, k) for k in _ARRAYS})

    @classmethod
    def load(cls, path: str | Path) -> DatasetPass:
        header, arrays = load_arrays(path, _ARRAYS, "dataset pass")
        shard = tuple(header["shard"]) if header.get("shard") else None
        return cls(
            **arrays,
            classes=header["classes"],
            layer=header["layer"],
            feature_side=header["feature_side"],
            dataset=header["dataset"],
            shard=shard,
            meta=header.get("meta") or {},
        )


def last_linear(net: nn.Module) -> str:
    """Qualified name of the last ``nn.Linear`` in registration order (the classifier head)."""
    name = None
    for n, m in net.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    if name is None:
        raise NotFound(
            "the model has no nn.Linear layer, so its penultimate features are undefined; "
            "name a layer explicitly (layer=...)"
        )
    return name


def run_pass(
    model: Model | nn.Module,
    dataset: ImageDataset | str,
    layer: str | None = None,
    batch_size: int = 256,
    shard: tuple[int, int] | None = None,
    progress: bool = True,
    callback: Progress | None = None,
    output: OutputSpec = None,
    engine: Engine = "local",
) -> DatasetPass:
    """Run ``model`` over ``dataset`` (or its ``shard=(i, n)``) in batches, in eval mode.

    ``layer=None`` takes the input of the last ``nn.Linear`` as the features; a named
    layer takes that module's output, flattened per sample. The dataset is conformed to
    the model's channels and size first. Shows a tqdm bar unless ``progress=False`` and
    calls ``callback(done, total)`` after each batch (raise from it to cancel). ``output`` picks
    the logits of a dict / tuple output (:mod:`convscope.outputs`; default: the Model's).
    A layer is named as everywhere (:mod:`convscope.probe`), a trace record such as ``add_1`` too.
    ``engine="ray"`` (or a :class:`convscope.scale.RayEngine`) runs the batches on Ray workers
    and merges them: the same numbers, bit for bit (:mod:`convscope.scale`).
    """
    if batch_size < 1:
        raise ConvscopeError(f"batch_size must be at least 1, not {batch_size}")
    dataset = as_dataset(dataset)  # a name such as "digits": its test split
    if engine not in (None, "local"):
        return _distributed(model, dataset, engine, layer, batch_size, shard, progress, callback, output)
    model = as_model(model)
    if shard is not None:
        dataset = dataset.shard(*shard)
    dataset = dataset.conform(model.preprocessing)
    side = "input" if layer is None else "output"
    layer = layer or last_linear(model.net)
    ref = resolve_layer(model.net, layer)
    total = len(dataset)
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in ("preds", "probs", "loss", "features")}
    net = model.net
    bar = tqdm(total=total, unit="img", desc=f"{model.name} on {dataset.name}", disable=not progress, leave=False)
    try:
        with model_state(net), torch.no_grad(), capture(net, ref, side=side) as store:
            done = 0
            for x, y in dataset.batches(model.preprocessing, batch_size=batch_size):
                logits = model.scores(store.run(x.to(model.device)), output).float()
                _check_logits(logits, y, dataset)
                y = y.to(logits.device)
                outs["probs"].append(logits.softmax(-1).cpu())
                outs["preds"].append(logits.argmax(-1).cpu())
                outs["loss"].append(F.cross_entropy(logits, y, reduction="none").cpu())
                outs["features"].append(store[ref].flatten(1).float().cpu())
                done += len(y)
                bar.update(len(y))
                if callback is not None:
                    callback(done, total)
    finally:
        bar.close()
    n_classes = len(model.classes or dataset.classes)
    return DatasetPass(
        labels=dataset.labels.numpy().astype(np.int64),
        preds=_stack(outs["preds"], (0,), np.int64),
        probs=_stack(outs["probs"], (0, n_classes), np.float32),
        loss=_stack(outs["loss"], (0,), np.float32),
        features=_stack(outs["features"], (0, 0), np.float32),  # an empty shard: width unknown
        indices=dataset.indices.numpy().astype(np.int64),
        classes=list(model.classes or dataset.classes),
        layer=layer,
        feature_side=side,
        dataset=dataset.name,
        shard=tuple(shard) if shard else None,
        meta={"model": model.name},
    )


def _distributed(
    model: Any,
    dataset: ImageDataset,
    engine: Engine,
    layer: str | None,
    batch_size: int,
    shard: tuple[int, int] | None,
    progress: bool,
    callback: Progress | None,
    output: OutputSpec,
) -> DatasetPass:
    """:func:`run_pass` on an engine's workers, block by block, then :func:`merge`."""
    if shard is not None:
        dataset = dataset.shard(*shard)
    bar = tqdm(
        total=len(dataset),
        unit="img",
        desc=f"{getattr(model, 'name', 'model')} on {dataset.name}",
        disable=not progress,
        leave=False,
    )

    def advance(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if callback is not None:
            callback(done, total)

    try:
        with engine_scope(engine) as workers:
            parts = workers.map("pass", model, dataset, batch_size, advance, layer=layer, output=output)
    finally:
        bar.close()
    return replace(merge(parts), shard=tuple(shard) if shard else None)


def _stack(chunks: list[torch.Tensor], empty_shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return torch.cat(chunks).numpy() if chunks else np.zeros(empty_shape, dtype)


def _check_logits(logits: torch.Tensor, y: torch.Tensor, dataset: ImageDataset) -> None:
    if logits.dim() != 2:
        raise ConvscopeError(
            f"the model returned shape {tuple(logits.shape)}; a classifier must return (batch, classes)"
        )
    if len(y) and int(y.max()) >= logits.shape[1]:
        raise ConvscopeError(
            f"{dataset.name} has label {int(y.max())} but the model has only {logits.shape[1]} outputs "
            f"({len(dataset.classes)} dataset classes): wrong model for this dataset?"
        )


def merge(partials: Sequence[DatasetPass]) -> DatasetPass:
    """Concatenate shard results into the pass over the whole dataset.

    Partials that carry ``shard=(i, n)`` are put in shard order and must cover
    ``0..n-1`` exactly once; partials without one are concatenated as given.

    The result is bit-identical to the single pass wherever the backend computes a
    sample the same way whatever else is in its batch (true of PyTorch's CPU kernels
    here, except that a batch of one image may take another convolution kernel and
    differ in the last float32 bit).
    """
    if not partials:
        raise ConvscopeError("merge() needs at least one partial result")
    parts = list(partials)
    first = parts[0]
    for p in parts[1:]:
        if (p.classes, p.layer, p.feature_side, p.dataset) != (
            first.classes,
            first.layer,
            first.feature_side,
            first.dataset,
        ):
            raise ConvscopeError("cannot merge passes of different models, layers or datasets")
        if p.features.shape[1:] != first.features.shape[1:] and len(p) and len(first):
            raise ConvscopeError(f"feature sizes differ: {p.features.shape[1:]} vs {first.features.shape[1:]}")
    shards = [p.shard for p in parts]
    if any(s is not None for s in shards):
        if any(s is None for s in shards):
            raise ConvscopeError("cannot merge sharded and unsharded partial results")
        n = shards[0][1]
        got = sorted(s[0] for s in shards)
        if any(s[1] != n for s in shards) or got != list(range(n)):
            raise ConvscopeError(f"shards do not cover 0..{n - 1} exactly once: got {sorted(shards)}")
        parts.sort(key=lambda p: p.shard[0])
    nonempty = [p for p in parts if len(p)] or parts[:1]
    arrays = {k: np.concatenate([getattr(p, k) for p in nonempty]) for k in _ARRAYS}
    meta = {k: v for k, v in first.meta.items() if k not in ("shard", "key")}
    return replace(first, **arrays, shard=None, meta=meta)
