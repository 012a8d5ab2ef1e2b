"""The arithmetic of one convolution output channel and one output position.

For output channel ``c`` in group ``g`` (``C_g = C_in / groups`` input channels each):

.. math::

    \\text{out}[c, y, x] = b_c + \\sum_{i=0}^{C_g-1} \\underbrace{\\sum_{u,v}
        w[c, i, u, v]\\; \\tilde{x}[gC_g + i,\\; y s_h + u d_h,\\; x s_w + v d_w]}_{\\text{intermediate}_i[y, x]}

where :math:`\\tilde{x}` is the input padded by ``(left, right, top, bottom)``
(zeros, or reflect/replicate/circular copies for those padding modes), ``s`` the
stride and ``d`` the dilation. CNN Explainer shows exactly this: one intermediate map
per input channel, their sum, plus the bias.

On the CPU the recomputed values match the layer's own output to about 1e-6. On
NVIDIA GPUs PyTorch runs convolutions in TF32 by default
(``torch.backends.cudnn.allow_tf32``), so the *recorded* outputs there differ from the
exact float32 sums computed here by about 1e-3 relative (5e-4 seen on an H200).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..records import LayerRecord
from .base import Detail, check_index, item, require_kind

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@dataclass
class ConvChannel(Detail):
    """Output channel ``channel`` as the sum of one map per input channel, plus bias."""

    channel: int
    group: int
    input_channels: list[int]  # indices of the input channels this output channel reads
    inputs: torch.Tensor  # (C_g, H, W) those input maps
    padded: torch.Tensor  # (C_g, H + top + bottom, W + left + right)
    kernels: torch.Tensor  # (C_g, k_h, k_w)
    intermediate: torch.Tensor  # (C_g, H_out, W_out): each input map convolved with its kernel slice
    sum: torch.Tensor  # (H_out, W_out) = intermediate.sum(0)
    bias: float
    output: torch.Tensor  # (H_out, W_out) = sum + bias


@dataclass
class ConvPosition(Detail):
    """Output ``[channel, y, x]`` as products of receptive-field patches and kernels."""

    channel: int
    y: int
    x: int
    input_channels: list[int]
    rows: torch.Tensor  # (k_h,) input rows the kernel covers (outside 0..H-1: padding)
    cols: torch.Tensor  # (k_w,) input columns
    inside: torch.Tensor  # (k_h, k_w) bool: the position lies in the input, not the padding
    patches: torch.Tensor  # (C_g, k_h, k_w) receptive field of each input channel, padding included
    kernels: torch.Tensor  # (C_g, k_h, k_w)
    products: torch.Tensor  # (C_g, k_h, k_w) = patches * kernels
    channel_sums: torch.Tensor  # (C_g,) sum of each channel's products
    total: float  # channel_sums.sum()
    bias: float
    output: float  # total + bias


def conv_geometry(rec: LayerRecord) -> dict:
    """Stride, dilation, explicit padding and grouping of a conv record."""
    require_kind(rec, {"conv"}, "a convolution")
    p = rec.params
    c_out, c_g, kh, kw = rec.weight.shape
    groups = int(p.get("groups", 1))
    return {
        "stride": p["stride"],
        "dilation": p["dilation"],
        "pad": p["pad"],
        "groups": groups,
        "c_out": c_out,
        "c_g": c_g,
        "kernel": (kh, kw),
        "out_per_group": c_out // groups,
        "mode": _PAD_MODES.get(p.get("padding_mode", "zeros"), "constant"),
    }


def padded_input(rec: LayerRecord, x: torch.Tensor) -> torch.Tensor:
    """``x`` (C, H, W) padded the way the layer pads it."""
    g = conv_geometry(rec)
    if not any(g["pad"]):
        return x
    return F.pad(x[None], list(g["pad"]), mode=g["mode"])[0]


def _group_slice(rec: LayerRecord, c: int, batch: int):
    g = conv_geometry(rec)
    c = check_index(c, g["c_out"], "output channel", rec)
    group = c // g["out_per_group"]
    channels = list(range(group * g["c_g"], (group + 1) * g["c_g"]))
    x = item(rec.input, batch, rec)[channels[0] : channels[-1] + 1]
    return g, c, group, channels, x


def _bias(rec: LayerRecord, c: int) -> float:
    return float(rec.bias[c].detach()) if rec.bias is not None else 0.0


def conv_channel(rec: LayerRecord, c: int, batch: int = 0) -> ConvChannel:
    """Per-input-channel intermediate maps of output channel ``c``, their sum and the output."""
    g, c, group, channels, x = _group_slice(rec, c, batch)
    xp = padded_input(rec, x)
    kernels = rec.weight[c].detach()
    # each input channel convolved with its own kernel slice: a depthwise convolution
    intermediate = F.conv2d(
        xp[None], kernels[:, None], stride=g["stride"], dilation=g["dilation"], groups=len(channels)
    )[0]
    total = intermediate.sum(0)
    b = _bias(rec, c)
    return ConvChannel(c, group, channels, x, xp, kernels, intermediate, total, b, total + b)


def conv_position(rec: LayerRecord, c: int, y: int, x: int, batch: int = 0) -> ConvPosition:
    """The receptive field, kernel, products and sums behind output ``[c, y, x]``."""
    g, c, group, channels, inp = _group_slice(rec, c, batch)
    h_out, w_out = rec.output.shape[-2:]
    y = check_index(y, h_out, "output row", rec)
    x = check_index(x, w_out, "output column", rec)
    (sh, sw), (dh, dw), (kh, kw) = g["stride"], g["dilation"], g["kernel"]
    left, _, top, _ = g["pad"]
    dev = inp.device
    rows = y * sh - top + torch.arange(kh, device=dev) * dh
    cols = x * sw - left + torch.arange(kw, device=dev) * dw
    xp = padded_input(rec, inp)
    patches = xp[:, rows + top][:, :, cols + left]
    h, w = inp.shape[-2:]
    inside = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    kernels = rec.weight[c].detach()
    products = patches * kernels
    sums = products.sum(dim=(1, 2))
    total = float(sums.sum())
    b = _bias(rec, c)
    return ConvPosition(c, y, x, channels, rows, cols, inside, patches, kernels, products, sums, total, b, total + b)
