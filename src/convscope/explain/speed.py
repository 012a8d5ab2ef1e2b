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
        refs, gots = tree_leaves(net(x)), tree_leaves(clone(x))  # every tensor of a dict / tuple output
    if len(refs) != len(gots) or not all(_close(r, g, rtol) for r, g in zip(refs, gots)):
        return None
    return clone


def _close(ref: object, got: object, rtol: float) -> bool:
    if not isinstance(ref, torch.Tensor):
        return True
    scale = ref.abs().max().clamp_min(1e-12) if ref.numel() else 1.0
    return isinstance(got, torch.Tensor) and got.shape == ref.shape and \
        torch.allclose(got, ref, rtol=0, atol=float(rtol * scale))
