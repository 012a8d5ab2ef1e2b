"""Exactness-preserving speed-ups for explanations of a model in eval mode.

:func:`folded_copy` returns a deep copy of the net in which every BatchNorm that directly
follows a convolution is folded into it (``w' = w * g / sqrt(v + eps)``,
``b' = (b - m) * g / sqrt(v + eps) + beta``) and replaced by ``nn.Identity`` under the
same name, so layer names still resolve and a BatchNorm named as the target layer
still yields the same values. The user's model is never modified. Pairs are found by
a dry run (the BatchNorm's input *is* the convolution's output tensor, each called
once); a convolution that is itself the target layer keeps its BatchNorm. The copy is
checked against the original on the dry-run input and discarded if they disagree.

Which speed-ups run depends on the device, by a rule measured per device
(:func:`speedups`): on the CPU the folded copy and channels-last pay (1.2-2.2x in
``benchmarks/bench_attribution.py``); on CUDA the copy's work is what the kernels make
cheap, and Grad-CAM with it ran at 0.86x Captum on a Hopper GPU (issue 16), so there the user's net runs
as it is until a CUDA measurement shows a copy is faster. Other devices (MPS, XPU, ...)
have not been measured and also run the net as it is. A caller's explicit
``fold_bn=`` / ``channels_last=`` always wins.

:func:`precise_float32` turns TensorFloat-32 off for the duration of an explanation: by
PyTorch's default cuDNN convolutions use TF32 on Ampere and later GPUs (10 mantissa
bits), which moved Grad-CAM by 8e-4, Integrated Gradients by 0.07 and saliency by 0.11
(relative) between the CPU and a Hopper GPU. Attributions are differences and gradients of
scores, so they amplify that rounding; they are computed in full float32 instead.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
from torch import nn
from torch.utils._pytree import tree_leaves

from ..probe import get_module, observe


def _pairs(net: nn.Module, x: torch.Tensor) -> list[tuple[str, str]]:
    names = {m: n for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))}
    conv_out: dict[int, list[str]] = {}
    bn_in: list[tuple[str, int]] = []
    calls: dict[str, int] = {}
    outs = []  # keep outputs alive so ids stay unique during the run

    def hook(m, inp, out):
        name = names[m]
        calls[name] = calls.get(name, 0) + 1
        if isinstance(m, nn.BatchNorm2d):
            bn_in.append((name, id(inp[0])))
        else:
            conv_out.setdefault(id(out), []).append(name)
            outs.append(out)

    with observe(names, hook), torch.no_grad():
        net(x)
    pairs = []
    for bn, tid in bn_in:
        convs = conv_out.get(tid, [])
        if len(convs) == 1 and calls.get(convs[0]) == 1 and calls.get(bn) == 1:
            pairs.append((convs[0], bn))
    return pairs


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        scale = (
            bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
        )
        shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        new_bias = (bias - bn.running_mean) * scale + shift
        conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype), requires_grad=False)


def _set_module(net: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(get_module(net, parent) if parent else net, child, module)


def _symmetric_same_padding(m: nn.Module) -> tuple[int, int] | None:
    """(rows, columns) of zeros an EfficientNet TensorFlow-"SAME" convolution adds on each side,
    when it adds as many on both sides (stride 1, odd kernel: 12 of Lite0's 17 padded
    convolutions); None for any other module. Such a convolution is ``nn.Conv2d`` with that
    padding, which pads inside the convolution instead of copying the input into a padded
    tensor first (the pad's fill and copy were 21% of Lite0's folded channels-last forward)."""
    if type(m).__name__ != "Conv2dStaticSamePadding" or m.padding_mode != "zeros" or m.padding != (0, 0):
        return None
    pad = getattr(m, "static_padding", None)
    if type(pad).__name__ == "Identity":
        return 0, 0
    if isinstance(pad, nn.ZeroPad2d):
        left, right, top, bottom = pad.padding
        if left == right and top == bottom:
            return top, left
    return None


def _plain_conv(m: nn.Conv2d, padding: tuple[int, int]) -> nn.Conv2d:
    conv = nn.Conv2d(
        m.in_channels, m.out_channels, m.kernel_size, m.stride, padding, m.dilation, m.groups, m.bias is not None
    ).to(device=m.weight.device, dtype=m.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(m.weight)
        if m.bias is not None:
            conv.bias.copy_(m.bias)
    return conv


def folded_copy(net: nn.Module, x: torch.Tensor, keep: set[str] = frozenset(), rtol: float = 1e-3) -> nn.Module | None:
    """A BatchNorm-folded copy of ``net`` in eval mode, or None if nothing folds or the check fails.

    Convolutions that pad symmetrically by a separate zero-padding module (EfficientNet's
    ``Conv2dStaticSamePadding``) become ``nn.Conv2d`` with that padding in the copy, under
    the same name: the same zeros, the same numbers to float rounding.

    ``keep``: module names whose outputs must stay exactly as in the original (a target
    convolution keeps its BatchNorm).
    """
    if any(m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        return None
    pairs = [(c, b) for c, b in _pairs(net, x) if c not in keep]
    pads = {n: p for n, m in net.named_modules() if n and (p := _symmetric_same_padding(m)) is not None}
    if not pairs and not pads:
        return None
    try:
        clone = copy.deepcopy(net)
    except Exception:  # noqa: BLE001 - some user models (TorchScript, exotic) cannot be copied
        return None
    for conv_name, bn_name in pairs:
        _fold(get_module(clone, conv_name), get_module(clone, bn_name))
        _set_module(clone, bn_name, nn.Identity())
    for name, padding in pads.items():  # after folding: the plain convolution takes the folded weights
        _set_module(clone, name, _plain_conv(get_module(clone, name), padding))
    clone.eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        refs, gots = tree_leaves(net(x)), tree_leaves(clone(x))  # every tensor of a dict / tuple output
    if len(refs) != len(gots) or not all(_close(r, g, rtol) for r, g in zip(refs, gots)):
        return None
    return clone


def _close(ref: object, got: object, rtol: float) -> bool:
    if not isinstance(ref, torch.Tensor):
        return True
    scale = ref.abs().max().clamp_min(1e-12) if ref.numel() else 1.0
    return (
        isinstance(got, torch.Tensor)
        and got.shape == ref.shape
        and torch.allclose(got, ref, rtol=0, atol=float(rtol * scale))
    )


class Speedups(NamedTuple):
    fold_bn: bool
    channels_last: bool


MEASURED_FASTER = {"cpu": True}
"""Device types on which the folded / channels-last copy was measured faster than the net itself."""


def speedups(
    device: torch.device | str, fold_bn: bool | None, channels_last: bool | None, defaults: Speedups
) -> Speedups:
    """The speed-ups to use on ``device``: what the caller asked for, else the method's
    ``defaults`` where copies were measured faster (:data:`MEASURED_FASTER`), else none."""
    measured = MEASURED_FASTER.get(torch.device(device).type, False)
    return Speedups(
        defaults.fold_bn and measured if fold_bn is None else fold_bn,
        defaults.channels_last and measured if channels_last is None else channels_last,
    )


_TF32 = threading.Lock()
_holders = 0
_saved: list[tuple[object, str, object]] = []


def _precision_flags() -> list[tuple[object, str]]:
    """The TF32 switches of this torch: the per-backend ``fp32_precision`` (torch >= 2.9; the
    legacy ``allow_tf32`` flags must not be mixed with them) or the legacy flags."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        return [(matmul, "fp32_precision"), (conv, "fp32_precision")]
    return [(matmul, "allow_tf32"), (cudnn, "allow_tf32")]


@contextmanager
def precise_float32() -> Iterator[None]:
    """TF32 off for matmuls and convolutions inside the block; the previous flags come back
    after it. Re-entrant and thread-safe: the flags are process-wide, so the first of
    overlapping blocks saves them and the last one out restores them."""
    global _holders
    with _TF32:
        if _holders == 0:
            _saved[:] = [(obj, attr, getattr(obj, attr)) for obj, attr in _precision_flags()]
            for obj, attr, _ in _saved:
                setattr(obj, attr, "ieee" if attr == "fp32_precision" else False)
        _holders += 1
    try:
        yield
    finally:
        with _TF32:
            _holders -= 1
            if _holders == 0:
                for obj, attr, value in _saved:
                    setattr(obj, attr, value)
