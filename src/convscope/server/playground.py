"""The hyper-parameter playground: one convolution on a crop of a real activation map.

For an n x n input, kernel k, padding p, stride s and dilation d the output side is

    out = floor((n + 2p - d(k - 1) - 1) / s) + 1

A combination is *invalid* when no kernel position fits (``d(k-1)+1 > n + 2p``) or
when the stride does not tile the padded input exactly (``(n + 2p - d(k-1) - 1) % s != 0``):
PyTorch then silently drops the last rows and columns; CNN Explainer forbids it, and so
do we, with the reason and the strides that would fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

LIMITS = {"crop": (1, 32), "kernel": (1, 9), "padding": (0, 6), "stride": (1, 8), "dilation": (1, 4)}
KERNELS = ("mean", "edge")


@dataclass(frozen=True)
class Settings:
    crop: int
    kernel: int
    padding: int
    stride: int
    dilation: int
    kernel_type: str = "mean"


def output_size(n: int, k: int, p: int, s: int, d: int) -> float:
    """The exact (possibly fractional) output side before flooring."""
    return (n + 2 * p - d * (k - 1) - 1) / s + 1


def problems(st: Settings, map_side: int) -> list[str]:
    """Every reason the settings cannot give a clean convolution (empty when valid)."""
    out: list[str] = []
    for name, (lo, hi) in LIMITS.items():
        v = getattr(st, name)
        if not lo <= v <= hi:
            out.append(f"{name} must be between {lo} and {hi} in this playground (got {v})")
    if st.crop > map_side:
        out.append(f"the crop ({st.crop}) is larger than the activation map ({map_side} x {map_side})")
    if st.kernel_type not in KERNELS:
        out.append(f"kernel type must be one of {', '.join(KERNELS)}")
    if out:
        return out
    n, k, p, s, d = st.crop, st.kernel, st.padding, st.stride, st.dilation
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        out.append(
            f"the kernel spans {span} pixels (dilation {d} x (kernel {k} - 1) + 1) but the padded input "
            f"is only {n + 2 * p} wide ({n} + 2 x {p}): not one position fits"
        )
    elif (n + 2 * p - span) % s:
        rest = (n + 2 * p - span) % s
        fits = fitting_strides(n, k, p, d)
        out.append(
            f"stride {s} does not fit: (n + 2p - d(k-1) - 1) / s = ({n} + {2 * p} - {span - 1} - 1) / {s} = "
            f"{(n + 2 * p - span) / s:g} is not a whole number, so the last {rest} row(s) and column(s) "
            f"would be skipped (PyTorch floors silently). Strides that fit: {', '.join(map(str, fits))}"
        )
    if not out and p >= span and p > 0:
        out.append(f"padding {p} is at least the kernel span {span}: the outer output ring would see only zeros")
    return out


def fitting_strides(n: int, k: int, p: int, d: int) -> list[int]:
    span = d * (k - 1) + 1
    room = n + 2 * p - span
    lo, hi = LIMITS["stride"]
    return [s for s in range(lo, hi + 1) if room >= 0 and room % s == 0]


def make_kernel(kind: str, k: int) -> np.ndarray:
    """'mean': every weight 1/k^2 (a blur); 'edge': centre 1, the rest share -1 (sums to 0)."""
    if kind == "edge" and k > 1:
        w = np.full((k, k), -1.0 / (k * k - 1))
        w[k // 2, k // 2] = 1.0
        return w
    return np.full((k, k), 1.0 / (k * k))


def run(activation: np.ndarray, st: Settings) -> dict[str, Any]:
    """Validate ``st`` against a 2-D map and, when valid, convolve its centre crop."""
    side = int(min(activation.shape))
    errs = problems(st, side)
    n, k, p, s, d = st.crop, st.kernel, st.padding, st.stride, st.dilation
    result: dict[str, Any] = {
        "settings": st.__dict__,
        "map_side": side,
        "valid": not errs,
        "problems": errs,
        "formula": "out = floor((n + 2p − d(k − 1) − 1) / s) + 1",
        "substituted": f"floor(({n} + 2·{p} − {d}·({k} − 1) − 1) / {s}) + 1",
        "exact": output_size(n, k, p, s, d) if s > 0 else None,
        "fitting_strides": fitting_strides(n, k, p, d) if not any("between" in e for e in errs) else [],
    }
    if errs:
        return result
    h, w = activation.shape
    top, left = (h - n) // 2, (w - n) // 2
    crop = np.asarray(activation[top : top + n, left : left + n], dtype=np.float32)
    kernel = make_kernel(st.kernel_type, k).astype(np.float32)
    out = F.conv2d(
        torch.from_numpy(crop)[None, None], torch.from_numpy(kernel)[None, None], stride=s, padding=p, dilation=d
    )[0, 0].numpy()
    result.update(
        output_size=int(out.shape[0]),
        crop_origin=[top, left],
        input=crop.tolist(),
        padded=np.pad(crop, p).tolist(),
        kernel=kernel.tolist(),
        output=out.tolist(),
    )
    return result
