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

from ..i18n import message

LIMITS = {"crop": (1, 32), "kernel": (1, 9), "padding": (0, 6), "stride": (1, 8), "dilation": (1, 4)}
KERNELS = ("mean", "edge")
OUT_OF_RANGE = "server.playground.out_of_range"


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


def problem_messages(st: Settings, map_side: int) -> list[dict[str, Any]]:
    """Every reason the settings cannot give a clean convolution (empty when valid), each a
    catalogue message (keys ``server.playground.*``) with its numbers."""
    out: list[dict[str, Any]] = []
    for name, (lo, hi) in LIMITS.items():
        v = getattr(st, name)
        if not lo <= v <= hi:
            out.append(message(OUT_OF_RANGE, name=message(f"server.playground.setting.{name}"), lo=lo, hi=hi, got=v))
    if st.crop > map_side:
        out.append(message("server.playground.crop_too_large", crop=st.crop, side=map_side))
    if st.kernel_type not in KERNELS:
        out.append(message("server.playground.kernel_type", choices=", ".join(KERNELS)))
    if out:
        return out
    n, k, p, s, d = st.crop, st.kernel, st.padding, st.stride, st.dilation
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        out.append(message("server.playground.no_position", span=span, d=d, k=k, padded=n + 2 * p, n=n, p=p))
    elif (n + 2 * p - span) % s:
        out.append(
            message(
                "server.playground.stride",
                s=s,
                n=n,
                two_p=2 * p,
                span_1=span - 1,
                quotient=f"{(n + 2 * p - span) / s:g}",
                rest=(n + 2 * p - span) % s,
                fits=", ".join(map(str, fitting_strides(n, k, p, d))),
            )
        )
    if not out and p >= span and p > 0:
        out.append(message("server.playground.padding_zeros", p=p, span=span))
    return out


def problems(st: Settings, map_side: int) -> list[str]:
    """:func:`problem_messages` in English."""
    return [m["text"] for m in problem_messages(st, map_side)]


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
    said = problem_messages(st, side)
    errs = [m["text"] for m in said]
    n, k, p, s, d = st.crop, st.kernel, st.padding, st.stride, st.dilation
    result: dict[str, Any] = {
        "settings": st.__dict__,
        "map_side": side,
        "valid": not errs,
        "problems": errs,
        "problems_i18n": said,
        "formula": "out = floor((n + 2p − d(k − 1) − 1) / s) + 1",
        "substituted": f"floor(({n} + 2·{p} − {d}·({k} − 1) − 1) / {s}) + 1",
        "exact": output_size(n, k, p, s, d) if s > 0 else None,
        "fitting_strides": fitting_strides(n, k, p, d) if not any(m["key"] == OUT_OF_RANGE for m in said) else [],
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
