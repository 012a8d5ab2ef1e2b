"""Guided backpropagation's hook: positive gradients only through every ReLU module.

The hook belongs to one explanation call: it acts only on forwards of the thread that
installed it (:func:`convscope.probe.observe`) and is removed in ``finally``, so two
explanations at once on one net never see each other. Layer activations are captured
with :func:`convscope.probe.capture`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..probe import observe


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

    def hook(_m, _inp, out):
        if isinstance(out, torch.Tensor) and torch.is_grad_enabled():
            return _GuidedGrad.apply(out)
        return None

    modules = [m for m in net.modules() if isinstance(m, types)]
    with observe(modules, hook):
        yield len(modules)
