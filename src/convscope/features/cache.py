"""An on-disk cache of activation-maximisation pictures, one file per unit.

Key: the model's fingerprint (:func:`~convscope.models.model.model_fingerprint`: a SHA-256 of its state,
so retrained weights never hit a stale picture), the layer, the objective's unit and
every setting that changes the picture (steps, parameterisation, seed, transforms ...).
Because each unit's randomness depends only on (seed, unit) (see
:func:`~convscope.features.optimize.unit_generators`), a unit's picture is the same
whichever other units it was optimised with, so caching per unit is sound. Entries are
``.npz`` files (no pickle) written atomically, safe with several readers and writers.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..io_utils import atomic_path
from ..models.model import Model, as_model, model_fingerprint
from .optimize import FeatureVis, visualize
from .progress import CancelFn, ProgressFn


class FeatureCache:
    """A directory of cached pictures: ``get``/``put`` by (model, layer, unit, settings)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def key(self, model: Model | nn.Module, layer: str, unit: int, settings: dict[str, Any]) -> str:
        blob = json.dumps(
            {"model": model_fingerprint(model), "layer": layer, "unit": int(unit), "settings": settings},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> tuple[np.ndarray, float] | None:
        """(uint8 image (H, W, C), objective value) or None; a damaged entry is deleted (then recomputed)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                image, value = z["image"], float(z["value"])
            if image.dtype == np.uint8 and image.ndim == 3 and np.isfinite(value):
                return image, value
        except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile):  # cut short or garbled
            pass
        p.unlink(missing_ok=True)
        return None

    def put(self, key: str, image: np.ndarray, value: float) -> None:
        with atomic_path(self.path(key)) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, image=np.asarray(image, np.uint8), value=np.float32(value))


def cached_visualize(
    model: Model | nn.Module,
    layer: str | None,
    units: Sequence[int],
    cache: FeatureCache,
    progress: ProgressFn = None,
    cancel: CancelFn = None,
    **settings: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Pictures for ``units`` from the cache, computing (in one batch) only the missing ones.

    Returns ``(images uint8 (B, H, W, C), values (B,))``; ``settings`` are
    :func:`~convscope.features.visualize`'s keyword arguments.
    """
    model = as_model(model)
    units = [int(u) for u in units]
    canonical = _canonical_settings(settings)
    keys = [cache.key(model, layer or "", u, canonical) for u in units]
    found = {u: cache.get(k) for u, k in zip(units, keys)}
    missing = [u for u in units if found[u] is None]
    if missing:
        vis: FeatureVis = visualize(model, layer, missing, progress=progress, cancel=cancel, **settings)
        for u, image, value in zip(missing, vis.images, vis.values):
            cache.put(keys[units.index(u)], image, float(value))
            found[u] = (image, float(value))
    elif progress is not None:
        progress(1, 1)
    return np.stack([found[u][0] for u in units]), np.array([found[u][1] for u in units], np.float32)


def _canonical_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with visualize()'s defaults filled in, so equal requests share a key."""
    import inspect

    defaults = {
        name: p.default
        for name, p in inspect.signature(visualize).parameters.items()
        if p.default is not inspect.Parameter.empty
        and name not in ("units", "layer", "progress", "cancel", "batch_size")
    }
    merged = {**defaults, **{k: v for k, v in settings.items() if k != "batch_size"}}
    t = merged.get("transforms")
    if t is not None and not isinstance(t, str):
        merged["transforms"] = t.to_dict()
    return merged
