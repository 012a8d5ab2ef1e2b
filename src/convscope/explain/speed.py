"""Exactness-preserving speed-ups for explanations of a model in eval mode.

:func:`folded_copy` returns a deep copy of the net in which every BatchNorm that directly
follows a convolution is folded into it (``w' = w * g / sqrt(v + eps)``,
``b' = (b - m) * g / sqrt(v + eps) + beta``) and replaced by ``nn.Identity`` under the
same name, so layer names still resolve and a BatchNorm named as the target layer
still yields the same values. The user's model is never modified. Pairs are found by
a dry run (the BatchNorm's input *is* the convolution's output tensor, each called
once); a convolution that is itself the target layer keeps its BatchNorm. The copy is
checked against the original on the dry-run input and discarded if they disagree.
"""

from __future__ import annotations

import copy
import threading

import torch
from torch import nn

from .layers import get_module


def _pairs(net: nn.Module, x: torch.Tensor) -> list[tuple[str, str]]:
    me = threading.get_ident()
    conv_out: dict[int, list[str]] = {}
    bn_in: list[tuple[str, int]] = []
    calls: dict[str, int] = {}
    handles = []

    def conv_hook(name):
        def hook(_m, _i, out):
            if threading.get_ident() == me:
                calls[name] = calls.get(name, 0) + 1
                conv_out.setdefault(id(out), []).append(name)
        return hook

    def bn_hook(name):
        def hook(_m, inp, _o):
            if threading.get_ident() == me:
                calls[name] = calls.get(name, 0) + 1
                bn_in.append((name, id(inp[0])))
        return hook

    outs = []  # keep outputs alive so ids stay unique during the run
    try:
        for name, m in net.named_modules():
            if isinstance(m, nn.BatchNorm2d):
                handles.append(m.register_forward_hook(bn_hook(name)))
            elif isinstance(m, nn.Conv2d):
                handles.append(m.register_forward_hook(conv_hook(name)))
        keep = lambda _m, _i, o: outs.append(o)  # noqa: E731
        handles += [m.register_forward_hook(keep) for m in net.modules() if isinstance(m, nn.Conv2d)]
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    pairs = []
    for bn, tid in bn_in:
        convs = conv_out.get(tid, [])
        if len(convs) == 1 and calls.get(convs[0]) == 1 and calls.get(bn) == 1:
            pairs.append((convs[0], bn))
    return pairs


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else 1.0 / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
        new_bias = (bias - bn.running_mean) * scale + shift
        conv.bias = nn.Parameter(new_bias.to(conv.weight.dtype), requires_grad=False)


def _set_module(net: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(get_module(net, parent) if parent else net, child, module)


def folded_copy(net: nn.Module, x: torch.Tensor, keep: set[str] = frozenset(),
                rtol: float = 1e-3) -> nn.Module | None:
    """A BatchNorm-folded copy of ``net`` in eval mode, or None if nothing folds or the check fails.

    ``keep``: module names whose outputs must stay exactly as in the original (a target
    convolution keeps its BatchNorm).
    """
    if any(m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
        return None
    pairs = [(c, b) for c, b in _pairs(net, x) if c not in keep]
    if not pairs:
        return None
    try:
        clone = copy.deepcopy(net)
    except Exception:  # noqa: BLE001 - some user models (TorchScript, exotic) cannot be copied
        return None
    for conv_name, bn_name in pairs:
        _fold(get_module(clone, conv_name), get_module(clone, bn_name))
        _set_module(clone, bn_name, nn.Identity())
    clone.eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        ref, got = net(x), clone(x)
    scale = ref.abs().max().clamp_min(1e-12)
    if not torch.allclose(got, ref, rtol=0, atol=float(rtol * scale)):
        return None
    return clone


def model_version(net: nn.Module) -> tuple:
    """Changes whenever a parameter or buffer of ``net`` is replaced or modified in place."""
    return tuple((id(t), t._version) for t in (*net.parameters(), *net.buffers()))
