"""Small shared inputs for the explain tests: a seeded ResNet-18-shaped net and images."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.models.reference_nets import ResNet18Shaped


def _seeded_resnet(width: int) -> nn.Module:
    torch.manual_seed(0)
    net = ResNet18Shaped(num_classes=10, width=width).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding them is really tested
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net


@pytest.fixture(scope="module")
def resnet():
    """resnet18_shaped() (in-place ReLUs, BatchNorm, residual adds), random seeded weights, eval."""
    return _seeded_resnet(64)


@pytest.fixture(scope="module")
def small_resnet():
    """The same layout 8x narrower (64 channels in layer4): for tests of the protocol, not of numbers."""
    return _seeded_resnet(8)


@pytest.fixture(scope="module")
def resnet_x():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 64, 64, generator=g)


@pytest.fixture(scope="session")
def effnet_x(efficientnet, photo_coffee):
    """The coffee photo as EfficientNet-Lite0 input (1, 3, 224, 224)."""
    return efficientnet.batch(photo_coffee)


@pytest.fixture(scope="session")
def effnet_x2(efficientnet, photo_coffee, photo_chelsea):
    """Both bundled photos as one batch (2, 3, 224, 224)."""
    return torch.cat([efficientnet.batch(photo_coffee), efficientnet.batch(photo_chelsea)])


class ReLU6AsReLU(nn.ReLU):
    """ReLU6 dressed as an ``nn.ReLU``: Captum's Guided Backprop only hooks ReLU modules."""

    def forward(self, x):
        return F.hardtanh(x, 0.0, 6.0)


def _relu6_as_relu(net: nn.Module) -> nn.Module:
    twin = copy.deepcopy(net)
    for module in list(twin.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU6):
                setattr(module, name, ReLU6AsReLU())
    return twin


def _rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    """max |got - want| relative to max |want| (the issue's 1e-4 relative criterion)."""
    assert got.shape == want.shape, (got.shape, want.shape)
    return float((got - want).abs().max() / want.abs().max().clamp_min(1e-30))


@pytest.fixture(scope="session")
def rel_err():
    return _rel_err


@pytest.fixture(scope="session")
def relu6_as_relu():
    return _relu6_as_relu
