"""On-disk cache of dataset passes and embeddings, keyed by what determines them.

A pass depends on the model's weights and architecture, its preprocessing and class
names, the dataset, split and seed, and the feature layer; the key hashes exactly those
(the weights by their bytes, so a retrained checkpoint under the same file name is a
new key). Files are plain ``.npz`` written atomically, read without pickle. The cache
lives in ``$CONVSCOPE_CACHE`` or ``~/.cache/convscope``. An entry that cannot be read or
does not fit what it caches (a write cut short, a full disk, a garbled file) is deleted
with a warning and recomputed: a cache is never the only copy of anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from torch import nn

from ..data.base import ImageDataset
from ..errors import ConvscopeError
from ..models.model import Model, model_fingerprint
from .dataset_pass import DatasetPass, Progress, run_pass
from .embedding import Embedding, embed


def cache_root(root: str | Path | None = None) -> Path:
    """The cache folder: ``root``, else ``$CONVSCOPE_CACHE``, else ``~/.cache/convscope``."""
    if root is not None:
        return Path(root)
    env = os.environ.get("CONVSCOPE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "convscope"


def dataset_fingerprint(dataset: ImageDataset) -> str:
    """Which images these are: name, size, and the hash of their indices and labels."""
    h = hashlib.sha256()
    h.update(f"{dataset.name}|{len(dataset)}|{dataset.images.shape}|".encode())
    h.update(dataset.indices.numpy().astype(np.int64).tobytes())
    h.update(dataset.labels.numpy().astype(np.int64).tobytes())
    return h.hexdigest()


def pass_key(
    model: Model | nn.Module, dataset: ImageDataset, split: str = "", seed: int | None = None, layer: str | None = None
) -> str:
    """The cache key of :func:`cached_pass` (hex, 32 characters)."""
    parts = {
        "model": model_fingerprint(model),
        "dataset": dataset.name,
        "split": split,
        "seed": seed,
        "images": dataset_fingerprint(dataset),
        "layer": layer,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


Entry = TypeVar("Entry")


def read_entry(path: Path, load: Callable[[Path], Entry], fits: Callable[[Entry], bool]) -> Entry | None:
    """The cache entry at ``path``; None when there is none, or it was damaged and is now deleted."""
    if not path.is_file():
        return None
    try:
        entry = load(path)
        if fits(entry):
            return entry
        reason = "it does not fit what it caches"
    except (ConvscopeError, AttributeError, KeyError, TypeError, ValueError) as exc:  # a garbled header
        reason = str(exc)
    warnings.warn(f"discarding the damaged cache entry {path} ({reason}); it is recomputed", stacklevel=3)
    path.unlink(missing_ok=True)
    return None


def _fits(result: DatasetPass, dataset: ImageDataset) -> bool:
    """A cached pass belongs to ``dataset``: one row per image, in its order, with its labels."""
    n = len(dataset)
    return (
        all(len(getattr(result, k)) == n for k in ("labels", "preds", "probs", "loss", "features", "indices"))
        and result.probs.ndim == 2
        and result.features.ndim == 2
        and np.array_equal(result.indices, dataset.indices.numpy())
        and np.array_equal(result.labels, dataset.labels.numpy())
    )


def cached_pass(
    model: Model | nn.Module,
    dataset: ImageDataset,
    split: str = "",
    seed: int | None = None,
    layer: str | None = None,
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
    progress: bool = True,
    callback: Progress | None = None,
    refresh: bool = False,
    engine: Any = "local",
) -> DatasetPass:
    """:func:`run_pass` through the disk cache; ``meta['key']`` names the entry.

    ``engine`` only says where a missing entry is computed: both engines give the same
    numbers, so they share the entry.
    """
    key = pass_key(model, dataset, split, seed, layer)
    path = cache_root(cache_dir) / "dataset-pass" / f"{key}.npz"
    result = None if refresh else read_entry(path, DatasetPass.load, lambda r: _fits(r, dataset))
    if result is not None:
        result.meta["cached"] = True
        if callback is not None:
            callback(len(result), len(result))
        return result
    result = run_pass(
        model, dataset, layer=layer, batch_size=batch_size, progress=progress, callback=callback, engine=engine
    )
    result.meta.update({"key": key, "split": split, "seed": seed})
    result.save(path)
    result.meta["cached"] = False
    return result


def cached_embedding(
    result: DatasetPass,
    method: str = "tsne",
    seed: int = 0,
    cache_dir: str | Path | None = None,
    refresh: bool = False,
    **options: Any,
) -> Embedding:
    """:func:`embed` of ``result.features``, cached when the pass came from :func:`cached_pass`."""
    key = result.meta.get("key")
    if not key:
        return embed(result.features, method=method, seed=seed, **options)
    opts = json.dumps({"method": method, "seed": seed, **options}, sort_keys=True, default=str)
    name = hashlib.sha256(f"{key}|{opts}".encode()).hexdigest()[:32]
    path = cache_root(cache_dir) / "embedding" / f"{name}.npz"
    emb = None if refresh else read_entry(path, Embedding.load, lambda e: e.coords.shape == (len(result), 2))
    if emb is not None:
        return emb
    emb = embed(result.features, method=method, seed=seed, **options)
    emb.save(path)
    return emb
