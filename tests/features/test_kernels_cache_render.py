"""Kernels, the on-disk cache and the pictures drawn from feature arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convscope.errors import ConvscopeError
from convscope.features import FeatureCache, cached_visualize, kernels, model_fingerprint
from convscope.models import load_model
from convscope.render.colormap import colorize
from convscope.render.features import examples_grid, feature_grid, kernel_grid, kernel_image, overlay


def test_kernels_are_the_weights_with_their_scale(default_model):
    first = kernels(default_model, "conv_1_1")
    w = default_model.net.conv_1_1.weight.detach().numpy()
    assert np.array_equal(first.weight, w) and first.scale == pytest.approx(float(np.abs(w).max()))
    assert first.first and first.as_image and first.layer == "conv_1_1"
    deep = kernels(default_model, "conv_2_2", channels=[3, 1])
    w2 = default_model.net.conv_2_2.weight.detach().numpy()
    assert np.array_equal(deep.weight, w2[[3, 1]]) and not deep.first and not deep.as_image
    assert np.array_equal(deep.bias, default_model.net.conv_2_2.bias.detach().numpy()[[3, 1]])
    with pytest.raises(ConvscopeError, match="not a convolution"):
        kernels(default_model, "relu_1_1")
    with pytest.raises(ConvscopeError, match="out of range"):
        kernels(default_model, "conv_1_1", channels=[10])


def test_rgb_first_layer_kernel_pictures():
    tiny = load_model("tiny-vgg")
    k = kernels(tiny, "conv_1_1")
    assert k.as_image and k.weight.shape == (10, 3, 3, 3)
    pic = kernel_image(k.weight[0], k.scale)
    expected = np.clip(np.round(127.5 + 127.5 * k.weight[0] / k.scale), 0, 255).astype(np.uint8)
    assert np.array_equal(pic, np.moveaxis(expected, 0, -1))
    grid = kernel_grid(k.weight, k.scale, k.as_image, cell=9, pad=1)
    assert grid.shape == (3 * 10 + 1, 4 * 10 + 1, 3)  # 10 kernels: 4 columns, 3 rows
    assert np.array_equal(grid[1:10, 1:10], pic.repeat(3, 0).repeat(3, 1))


def test_deep_kernel_grid_rows_are_output_channels(default_model):
    k = kernels(default_model, "conv_2_2", channels=[0, 1])
    grid = kernel_grid(k.weight, k.scale, k.as_image, cell=3, pad=1)
    assert grid.shape == (2 * 4 + 1, 10 * 4 + 1, 3)
    cell = grid[5:8, 1 + 4 * 2 : 4 + 4 * 2]  # output channel 1, input channel 2
    assert np.array_equal(cell, colorize(k.weight[1, 2], "diverging", -k.scale, k.scale))


def test_overlay_and_grids():
    img = np.zeros((4, 4, 1), np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[1, 2] = 2.0
    out = overlay(img, heat, vmax=2.0, alpha=0.5)
    assert (out[0, 0] == 0).all()  # no activation: the image unchanged
    red = colorize(np.array([[1.0]]), "heat", 0.0, 1.0)[0, 0]
    assert np.array_equal(out[1, 2], np.round(red * 0.5).astype(np.uint8))
    grid = examples_grid(np.zeros((2, 3, 4, 4, 1), np.uint8), np.ones((2, 3, 4, 4)), min_size=8, pad=1)
    assert grid.shape == (2 * 9 + 1, 3 * 9 + 1, 3)
    assert feature_grid(np.zeros((5, 28, 28, 1), np.uint8), min_size=56, pad=2).shape == (2 * 58 + 2, 3 * 58 + 2, 3)


def test_cache_computes_each_unit_once(default_model, tmp_path, monkeypatch):
    from convscope.features import cache as cache_mod

    calls = []
    real = cache_mod.visualize

    def counting(*args, **kwargs):
        calls.append(list(args[2]))
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "visualize", counting)
    store = FeatureCache(tmp_path)
    a, va = cached_visualize(default_model, "conv_2_1", [2, 5], store, steps=4)
    b, vb = cached_visualize(default_model, "conv_2_1", [5, 2, 7], store, steps=4)
    assert calls == [[2, 5], [7]]
    assert np.array_equal(b[1], a[0]) and np.array_equal(b[0], a[1]) and vb[0] == va[1]
    direct = real(default_model, "conv_2_1", [7], steps=4)
    assert np.abs(direct.images[0].astype(int) - b[2].astype(int)).max() <= 1
    cached_visualize(default_model, "conv_2_1", [2], store, steps=5)
    assert calls[-1] == [2]  # other settings: another entry
    assert len(list(tmp_path.rglob("*.npz"))) == 4


def test_fingerprint_follows_the_weights():
    m = load_model("mnist-cnn")
    before = model_fingerprint(m)
    assert model_fingerprint(m) == before
    with torch.no_grad():
        m.net.conv1.weight[0, 0, 0, 0] += 1.0
    assert model_fingerprint(m) != before
