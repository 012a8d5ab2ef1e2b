"""Redirected ReLU gradients, so that activation maximisation can leave a dead start.

Starting from a grey image many ReLU units are off, and a unit that is off everywhere
has a zero gradient: plain gradient ascent never moves. Lucid's remedy (used for its
InceptionV1 renders) is kept here: during the optimisation every ``nn.ReLU`` /
``nn.ReLU6`` module's backward is replaced, per image ``b`` of the batch, by

    g_relu = g * [0 < x < upper]                                 (the true gradient)
    g_redir = g, except 0 where (x <= 0 and g > 0) or (x >= upper and g < 0)
    grad_b = g_relu_b  if ||g_relu_b|| > 0  else  g_redir_b

(``g`` is the gradient of the loss being minimised): when the true gradient of an
image vanishes, the gradient may still flow through an inactive unit, but only in the
direction that would switch it on. Forward values are unchanged. It is installed by
forward hooks that act only on the installing thread, removed in ``finally``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..probe import observe


class _RedirectedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, upper: float | None) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(0, upper) if upper is not None else x.clamp_min(0)

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (x,) = ctx.saved_tensors
        upper = ctx.upper
        inside = (x > 0) if upper is None else (x > 0) & (x < upper)
        relu_grad = g * inside
        alive = relu_grad.flatten(1).ne(0).any(1)
        if bool(alive.all()):  # the usual case once the units are on: nothing to redirect
            return relu_grad, None
        blocked = (x <= 0) & (g > 0)
        if upper is not None:
            blocked = blocked | ((x >= upper) & (g < 0))
        redirected = g.masked_fill(blocked, 0.0)
        shape = (-1,) + (1,) * (g.dim() - 1)
        return torch.where(alive.view(shape), relu_grad, redirected), None


def _upper(module: nn.Module) -> float | None:
    if isinstance(module, nn.ReLU6):
        return 6.0
    return None


@contextmanager
def redirected_relu(net: nn.Module) -> Iterator[None]:
    """Redirect the gradients of all ``nn.ReLU`` / ``nn.ReLU6`` modules of ``net`` in the block."""
    stash: dict[int, list[torch.Tensor]] = {}

    def pre_hook(module: nn.Module, inputs: tuple) -> None:
        if torch.is_grad_enabled():
            x = inputs[0]
            stash.setdefault(id(module), []).append(x.clone() if getattr(module, "inplace", False) else x)

    def hook(module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        pending = stash.get(id(module))
        if not pending:
            return None
        return _RedirectedReLU.apply(pending.pop(), _upper(module))

    with observe([m for m in net.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))], hook, pre_hook):
        yield
