"""Colour scales, as pure functions from arrays to uint8 RGB.

CNN Explainer's conventions: grey for the input, a diverging red-blue scale centred on
zero for conv / ReLU / pool activations, orange for logits. Colour ranges are chosen by
the caller (per unit, per layer or global) via ``vmin`` / ``vmax``.
"""

from __future__ import annotations

from functools import cache

import numpy as np

# name -> matplotlib colormap name
SCALES = {"diverging": "RdBu_r", "grey": "gray", "logit": "Oranges", "heat": "jet", "viridis": "viridis"}


@cache
def _lut(name: str) -> np.ndarray:
    from matplotlib import colormaps

    cmap = colormaps[SCALES.get(name, name)]
    return (cmap(np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


def colorize(
    values: np.ndarray, scale: str = "diverging", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map an array (H, W) to uint8 RGB (H, W, 3).

    For the diverging scale the range is symmetric around zero (``max(|vmin|, |vmax|)``),
    so white always means 0. Defaults take the range from ``values`` (per-unit mode).
    """
    v = np.asarray(values, dtype=np.float64)
    lo = float(np.nanmin(v)) if vmin is None else float(vmin)
    hi = float(np.nanmax(v)) if vmax is None else float(vmax)
    if scale == "diverging":
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    span = (hi - lo) or 1.0
    idx = np.clip((v - lo) / span * 255.0, 0, 255)
    idx = np.nan_to_num(idx, nan=0.0).astype(np.uint8)
    return _lut(scale)[idx]


def value_range(arrays: list[np.ndarray] | np.ndarray, mode: str = "unit") -> list[tuple[float, float]]:
    """Per-array (vmin, vmax) under a colour-range mode: 'unit' (each its own) or 'layer'/'global'
    (one range over all arrays given; the caller passes one layer's or all layers' maps)."""
    arrays = list(arrays)
    if mode == "unit":
        return [(float(np.min(a)), float(np.max(a))) for a in arrays]
    lo = min(float(np.min(a)) for a in arrays)
    hi = max(float(np.max(a)) for a in arrays)
    return [(lo, hi)] * len(arrays)
