"""features.constant_channels: the channels of a layer that hold one value on every image."""

from __future__ import annotations

import torch

from convscope.features import constant_channels


def test_dead_channels_of_the_default_model_match_plain_pytorch(default_model, mnist_val, truncated):
    found = constant_channels(default_model, mnist_val, "relu_2_2")
    # independently: the net cut after relu_2_2, run on every image, min == max per channel
    x = default_model.preprocessing.normalize(mnist_val.images)
    with torch.no_grad():
        act = truncated(default_model.net, "relu_2_2")(x.to(default_model.device)).float().cpu()
    lo, hi = act.transpose(0, 1).flatten(1).aminmax(dim=1)
    dead = {c: float(lo[c]) for c in range(act.shape[1]) if lo[c] == hi[c]}
    assert dead, "the shipped default model has a dead channel in relu_2_2 (channel 0)"
    assert found.values == dead
    assert found.seen == len(mnist_val) and found.layer == "relu_2_2"
    assert 0 in found and 1 not in found


def test_only_the_asked_channels_are_checked(default_model, mnist_val):
    found = constant_channels(default_model, mnist_val, "relu_2_2", channels=[1, 2])
    assert found.values == {}
