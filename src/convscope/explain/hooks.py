"""Forward hooks that belong to one explanation call only.

Every hook here is a closure created for one call, holding its own storage and the id
of the thread that made it; on any other thread it does nothing. Two explanations
running at once on the same net therefore never see each other's activations, and no
state is ever stored on the module. Hooks are removed in ``finally``.

Gradients are never taken with full backward hooks (they break on in-place ReLU):
:func:`capture` replaces the layer's output by a fresh leaf tensor and the caller uses
``torch.autograd.grad`` with respect to it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ..errors import ConvscopeError
from .layers import LayerRef, get_module


class Captured:
    """What :func:`capture` saw: ``activation`` (B, C, h, w) of the layer's chosen call."""

    activation: torch.Tensor | None = None


@contextmanager
def capture(net: nn.Module, layer: LayerRef, grad_above: bool) -> Iterator[Captured]:
    """Record the layer's output during forwards run inside the block, on this thread.

    With ``grad_above`` the forward is meant to run under ``torch.no_grad()``: at the
    layer the hook switches grad recording on and continues from a detached leaf, so
    autograd builds a graph only for the part of the net above the layer (no graph, no
    saved tensors below it). ``Captured.activation`` is that leaf; the net continues with
    a clone of it, so an in-place op after the layer cannot change what we recorded.
    """
    me = threading.get_ident()
    box = Captured()
    calls = [0]

    def hook(_m, _inp, out):
        if threading.get_ident() != me:
            return None
        k = calls[0]
        calls[0] += 1
        if k != layer.call:
            return None
        if not isinstance(out, torch.Tensor):
            raise ConvscopeError(f"layer {layer.name!r} returns {type(out).__name__}, not a tensor")
        if grad_above:
            torch.set_grad_enabled(True)  # thread-local; the caller's no_grad block restores it
            leaf = out.detach().requires_grad_(True)
            box.activation = leaf
            return leaf.clone()
        box.activation = out.detach().clone()
        return None

    handle = get_module(net, layer.name).register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


class _GuidedGrad(torch.autograd.Function):
    """Identity forward; backward lets only positive gradients through (Springenberg et al. 2015).

    Placed right after a ReLU (or ReLU6) output, the chain rule then gives
    ``relu(g) * relu'(x)``: the usual ReLU mask on the input *and* on the gradient.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D401
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g: torch.Tensor) -> torch.Tensor:
        return g.clamp(min=0)


GUIDED_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)


@contextmanager
def guided_relus(net: nn.Module, types: tuple[type[nn.Module], ...] = GUIDED_TYPES) -> Iterator[int]:
    """Make every ReLU / ReLU6 *module* guided for forwards on this thread; yields how many.

    Nothing in the model is replaced: a forward hook wraps each activation's output in
    :class:`_GuidedGrad`, which also works for in-place ReLUs (the hook sees the result
    after the in-place op) and for activations used several times. Functional
    ``F.relu`` calls are not modules and are not guided (Captum has the same limit).
    """
    me = threading.get_ident()

    def hook(_m, _inp, out):
        if threading.get_ident() == me and isinstance(out, torch.Tensor) and torch.is_grad_enabled():
            return _GuidedGrad.apply(out)
        return None

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, types)]
    try:
        yield len(handles)
    finally:
        for h in handles:
            h.remove()

