"""Dead channels: maps that hold one value on every image are marked constant, not ranked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convscope.cli.main import main
from convscope.data import load_splits
from convscope.features import TopExamples, merge, top_examples
from convscope.models import load_model

LAYER = "relu_2_2"


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def mnist():
    return load_splits("mnist", download=False, progress=False)["test"]  # the embedded subset offline


@pytest.fixture(scope="module")
def dead(model, mnist) -> list[int]:
    """relu_2_2's channels that are constant over the data, found with plain PyTorch."""
    seen = []
    hook = dict(model.net.named_children())[LAYER].register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    with torch.no_grad():
        model.net(mnist.images.float() / 255.0)
    hook.remove()
    act = seen[0].transpose(0, 1).flatten(1)  # (C, N*H*W)
    found = torch.nonzero(act.amax(1) == act.amin(1)).flatten().tolist()
    assert found, "the default model has a dead channel in relu_2_2 on MNIST (issue 12's example)"
    return found


def test_top_examples_marks_the_dead_channels_constant(model, mnist, dead, tmp_path):
    result = top_examples(model, mnist, LAYER, k=4)
    assert np.flatnonzero(result.constant).tolist() == dead
    assert np.all(result.maximum[dead] == 0)  # a dead ReLU: zeros
    # kept through save/load and through merging shards
    again = TopExamples.load(result.save(tmp_path / "r.npz"))
    assert np.array_equal(again.constant, result.constant)
    halves = merge([top_examples(model, mnist.shard(i, 2), LAYER, k=4) for i in range(2)])
    assert np.array_equal(halves.constant, result.constant)


def test_the_look_for_panel_json_says_constant(model, mnist, dead):
    from convscope.server.feature_views import Examples, data_choice

    examples = Examples()
    one = examples.channel_json(model, LAYER, dead[0], 4, data_choice(model, mnist))
    assert one["constant"] is True and one["constant_value"] == 0.0
    live = next(c for c in range(16) if c not in dead)
    assert examples.channel_json(model, LAYER, live, 4, data_choice(model, mnist))["constant"] is False


def test_convscope_examples_prints_the_dead_channel(dead, mnist, tmp_path, capsys):
    channels = f"{dead[0]},{dead[0] + 1}"
    assert (
        main(
            [
                "examples",
                "--data",
                "mnist",
                "--layer",
                LAYER,
                "--channels",
                channels,
                "--k",
                "3",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"channel {dead[0]} is constant (0) on all {len(mnist)} images: a dead channel" in out
    assert f"channel {dead[0] + 1} is constant" not in out
