"""Activation maximisation on the shipped MNIST Tiny VGG, checked with plain PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convscope.errors import ConvscopeError
from convscope.features import Cancelled, visualize
from convscope.models import Model, Preprocessing
from convscope.models.reference_nets import FunctionalCNN, resnet18_shaped


def _pixels(vis) -> torch.Tensor:
    """The returned uint8 pictures back to network input, as a user would feed them."""
    return torch.from_numpy(vis.images).permute(0, 3, 1, 2).float() / 255.0


def test_channels_driven_far_above_random_and_dataset_images(default_model, mnist_val, channel_means):
    net, layer, units = default_model.net, "relu_2_2", [2, 5, 9]
    vis = visualize(default_model, layer, units, steps=64, lr=0.1, seed=0)
    reached = channel_means(net, layer, _pixels(vis))[torch.arange(3), torch.tensor(units)]
    # the reported values are the objective of the returned pictures
    np.testing.assert_allclose(vis.values, reached.numpy(), rtol=1e-4, atol=1e-5)
    data = channel_means(net, layer, mnist_val.images.float() / 255.0)[:, units].max(0).values
    g = torch.Generator().manual_seed(1)
    noise = channel_means(net, layer, torch.rand(500, 1, 28, 28, generator=g))[:, units].max(0).values
    # at least 1.5x the best of 500 real digits and of 500 uniform-noise images, per channel
    assert (reached > 1.5 * torch.maximum(data, noise)).all(), (reached, data, noise)


def test_fourier_beats_pixels_on_the_same_budget_for_class_logits(default_model):
    """Measure: mean class logit of the final pictures after 32 Adam steps (lr 0.05), classes 0-4.

    (On this net it holds for logits; for mid-layer channels at 128 steps plain pixels reach
    slightly higher raw activations, see benchmarks/bench_features.py's notes.)"""
    fft = visualize(default_model, None, range(5), objective="logit", steps=32, param="fft")
    pixel = visualize(default_model, None, range(5), objective="logit", steps=32, param="pixel")
    with torch.no_grad():
        logits = default_model.net(_pixels(fft))
    np.testing.assert_allclose(fft.values, logits[torch.arange(5), torch.arange(5)].numpy(), rtol=1e-4)
    assert fft.values.mean() > 1.2 * pixel.values.mean(), (fft.values, pixel.values)


def test_same_seed_same_picture_whatever_the_batch(default_model):
    a = visualize(default_model, "conv_2_1", [1, 3], steps=6, seed=7)
    b = visualize(default_model, "conv_2_1", [1, 3], steps=6, seed=7)
    alone = visualize(default_model, "conv_2_1", [3], steps=6, seed=7)
    other = visualize(default_model, "conv_2_1", [3], steps=6, seed=8)
    assert np.array_equal(a.images, b.images)
    assert np.abs(a.images[1].astype(int) - alone.images[0].astype(int)).max() <= 1
    assert not np.array_equal(alone.images, other.images)
    assert a.images.dtype == np.uint8 and a.images.shape == (2, 28, 28, 1)


def test_neuron_objective_reads_one_position(default_model, truncated):
    vis = visualize(default_model, "conv_2_2", [4], objective="neuron", position=(3, 5), steps=8, param="pixel")
    with torch.no_grad():
        act = truncated(default_model.net, "conv_2_2")(_pixels(vis))
    assert vis.values[0] == pytest.approx(float(act[0, 4, 3, 5]), rel=1e-4, abs=1e-5)
    assert vis.settings["position"] == [3, 5]


def test_model_state_restored_and_parameters_untouched(default_model):
    net = default_model.net
    net.train()
    net.conv_1_1.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    try:
        visualize(default_model, "relu_1_2", [0, 1], steps=3, l2=0.1, tv=0.1)
        assert net.training and all(m.training for m in net.modules())
        assert not net.conv_1_1.weight.requires_grad and net.conv_1_2.weight.requires_grad
        assert all(p.grad is None for p in net.parameters())
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
        assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    finally:
        net.eval()
        net.conv_1_1.weight.requires_grad_(True)


def test_progress_and_cancel(default_model):
    seen = []
    visualize(default_model, "conv_1_1", [0], steps=5, batch_size=1, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (0, 5) and seen[-1] == (5, 5)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    calls = []
    with pytest.raises(Cancelled):
        visualize(default_model, "conv_1_1", [0], steps=50, cancel=lambda: len(calls) > 3 or calls.append(1))
    assert all(not m._forward_hooks for m in default_model.net.modules())


def test_clear_errors(default_model):
    with pytest.raises(ConvscopeError, match="did you mean"):
        visualize(default_model, "conv_22", [0], steps=1)
    with pytest.raises(ConvscopeError, match="out of range"):
        visualize(default_model, "conv_2_2", [99], steps=1)
    with pytest.raises(ConvscopeError, match="parameterisation"):
        visualize(default_model, "conv_2_2", [0], steps=1, param="wavelet")
    with pytest.raises(ConvscopeError, match="do not name a layer"):
        visualize(default_model, "conv_2_2", [0], objective="logit", steps=1)


def test_residual_functional_and_colour_nets():
    """ResNet-18 shape (in-place ReLU, BatchNorm, shortcuts) and functional ops, RGB input."""
    torch.manual_seed(0)
    prep = Preprocessing(size=(64, 64), channels=3, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4))
    resnet = Model(resnet18_shaped(num_classes=10).eval(), preprocessing=prep, name="resnet")
    vis = visualize(resnet, "layer2.0.relu", [0, 7], steps=4)
    assert vis.images.shape == (2, 64, 64, 3) and vis.history.shape == (4, 2)
    assert np.isfinite(vis.values).all()
    assert vis.history[-1].mean() > vis.history[0].mean()
    fun = Model(FunctionalCNN().eval(), preprocessing=Preprocessing(size=(32, 32)), name="fun")
    vis = visualize(fun, "branch", [1], steps=4, param="pixel")
    assert vis.images.shape == (1, 32, 32, 3)


def test_two_threads_on_one_model_do_not_disturb_each_other(default_model):
    """Hooks act only on the thread that installed them (the explorer runs jobs in threads)."""
    import threading

    alone = {u: visualize(default_model, "relu_2_1", [u], steps=3).images for u in (1, 6)}
    together: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def job(u: int) -> None:
        try:
            together[u] = visualize(default_model, "relu_2_1", [u], steps=3).images
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(u,)) for u in (1, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for u in (1, 6):
        assert np.array_equal(together[u], alone[u]), u
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in default_model.net.modules())
