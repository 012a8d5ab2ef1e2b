"""Fixtures for the features tests: the shipped default model and real MNIST images."""

from __future__ import annotations

import pytest
import torch
from torch import nn


@pytest.fixture(scope="module")
def default_model():
    """Tiny VGG trained on MNIST (1x28x28), shipped inside convscope."""
    from convscope.models import default_checkpoint_path, load_model

    if not default_checkpoint_path().is_file():
        pytest.skip("src/convscope/assets/default.pt is not built in this checkout")
    return load_model("default")


@pytest.fixture(scope="module")
def mnist_val(default_model):
    from convscope.data import load_splits

    return load_splits("mnist").val.conform(default_model.preprocessing)


def _truncated(net: nn.Sequential, layer: str) -> nn.Sequential:
    names = [n for n, _ in net.named_children()]
    return nn.Sequential(*list(net.children())[: names.index(layer) + 1])


@pytest.fixture()
def truncated():
    """``truncated(net, layer)``: the zoo net up to and including ``layer``, an independent
    way (no hooks) to read a layer's output."""
    return _truncated


@pytest.fixture()
def channel_means():
    """``channel_means(net, layer, x)``: (N, C) mean activation per channel, plain PyTorch."""

    def means(net: nn.Sequential, layer: str, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return _truncated(net, layer)(x).flatten(2).mean(2)

    return means
