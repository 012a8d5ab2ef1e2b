"""What activation maximisation maximises: a channel, one neuron, or a class logit.

Each objective turns a layer's output ``A`` (B, C, H, W) or (B, C) into one number per
image ``b`` for its own target unit ``u_b`` (several channels are optimised in one
batch, image ``b`` for channel ``u_b``):

* ``channel``: the mean activation of the channel, ``mean_{y,x} A[b, u_b, y, x]``;
* ``neuron``: one position of the channel, ``A[b, u_b, y0, x0]`` (default: the centre);
* ``logit``: the class score ``z[b, u_b]`` at the network's output (before softmax).

For a flat (B, C) output (a linear layer) ``channel`` and ``neuron`` both read
``A[b, u_b]``.
"""

from __future__ import annotations

import torch

from ..errors import ConvscopeError

OBJECTIVES = ("channel", "neuron", "logit")


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ConvscopeError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    return objective


def default_position(shape: torch.Size | tuple[int, ...]) -> tuple[int, int] | None:
    """The centre (y, x) of a (B, C, H, W) layer output; None for a flat output."""
    if len(shape) < 4:
        return None
    return (int(shape[-2]) // 2, int(shape[-1]) // 2)


def objective_values(
    act: torch.Tensor, units: torch.Tensor, objective: str, position: tuple[int, int] | None = None
) -> torch.Tensor:
    """One value per image: ``act`` (B, C, ...) read at unit ``units[b]`` -> (B,)."""
    idx = torch.arange(act.shape[0], device=act.device)
    per_unit = act[idx, units.to(act.device)]  # (B,) or (B, H, W)
    if per_unit.dim() == 1:
        return per_unit
    if objective == "neuron":
        if position is None:
            position = default_position(act.shape)
        y, x = position
        if not (0 <= y < act.shape[-2] and 0 <= x < act.shape[-1]):
            raise ConvscopeError(f"position ({y}, {x}) is outside the layer's {act.shape[-2]}x{act.shape[-1]} map")
        return per_unit[:, y, x]
    return per_unit.flatten(1).mean(1)
