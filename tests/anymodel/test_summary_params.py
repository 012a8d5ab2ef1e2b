"""Every parameter a layer owns is counted in its summary row, so the rows add up to the total."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from nets import convnextish, seeded
from torch import nn

import convscope as cs


class FunctionalNet(nn.Module):
    """A net with its own nn.Parameters, used through torch.nn.functional."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3))
        self.b = nn.Parameter(torch.zeros(4))
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(F.relu(F.conv2d(x, self.w, self.b)).mean((2, 3)))


def test_convnext_layer_scale_is_counted():
    net = seeded(convnextish)
    s = cs.trace(net, torch.rand(1, 3, 32, 32)).summary()
    assert sum(r.params for r in s.rows) == s.total_params == sum(p.numel() for p in net.parameters())
    mul = next(r for r in s.rows if r.kind == "mul" and r.params)
    assert mul.params == net[1].layer_scale.numel()


def test_a_functional_nets_own_parameters_are_counted():
    net = FunctionalNet().eval()
    s = cs.trace(net, torch.rand(1, 3, 8, 8)).summary()
    assert sum(r.params for r in s.rows) == s.total_params == 4 * 27 + 4 + 4 * 3 + 3
