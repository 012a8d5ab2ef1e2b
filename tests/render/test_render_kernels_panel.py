"""Kernel pictures and the input/prediction panel."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from convscope.errors import ConvscopeError
from convscope.render.figure_io import figure_bytes
from convscope.render.kernels import kernel_figure, kernel_grid, kernel_images
from convscope.render.panel import prediction_panel, top_k


def test_first_layer_kernels_as_rgb_images_mid_grey_is_zero():
    w = np.zeros((2, 3, 2, 2))
    w[0, 0, 0, 0] = 0.5  # red channel of filter 0 at its max
    w[1, 2, 1, 1] = -0.5  # blue channel of filter 1 at -max
    a, b = kernel_images(w)
    assert a.shape == (2, 2, 3)
    assert tuple(a[0, 0]) == (255, 128, 128)
    assert tuple(a[1, 1]) == (128, 128, 128)
    assert tuple(b[1, 1]) == (128, 128, 0)
    (g,) = kernel_images(np.array([[[[-1.0, 1.0]]]]))
    assert tuple(g[0, 0]) == (0, 0, 0) and tuple(g[0, 1]) == (255, 255, 255)
    with pytest.raises(ConvscopeError, match="1 or 3"):
        kernel_images(np.zeros((2, 4, 3, 3)))


def test_kernel_grid_rows_are_outputs_columns_inputs():
    w = np.zeros((4, 2, 3, 3))
    w[2, 1] = 1.0
    w[0, 0] = -1.0
    grid = kernel_grid(w)
    assert grid.shape == (4 * 4 + 1, 2 * 4 + 1, 3)
    red = np.array(colormaps["RdBu_r"](1.0)[:3]) * 255
    blue = np.array(colormaps["RdBu_r"](0.0)[:3]) * 255
    np.testing.assert_allclose(grid[2 * 4 + 1 + 1, 4 + 1 + 1], red, atol=3)  # out 2, in 1
    np.testing.assert_allclose(grid[2, 2], blue, atol=3)  # out 0, in 0
    assert grid[4 + 2, 2].min() > 240  # a zero kernel is white
    assert kernel_grid(np.ones((5, 7, 1, 1))).shape == (5, 7, 3)  # 1x1: the weight matrix, no gaps
    assert kernel_grid(np.ones((9, 1, 3, 3))).shape == (3 * 4 + 1, 3 * 4 + 1, 3)  # depthwise wraps
    assert kernel_grid(np.ones((40, 30, 3, 3)), max_out=8, max_in=4).shape == (8 * 4 + 1, 4 * 4 + 1, 3)


def test_kernel_figures_render():
    rng = np.random.default_rng(0)
    for w in (rng.normal(size=(10, 3, 3, 3)), rng.normal(size=(64, 48, 3, 3)), rng.normal(size=(16, 1, 5, 5))):
        svg = figure_bytes(kernel_figure(w, "conv"), "svg").decode()
        assert "x".join(map(str, w.shape)) in svg
    assert "32 of 64" in figure_bytes(kernel_figure(rng.normal(size=(64, 48, 3, 3)), "c"), "svg").decode()


def test_top_k_and_prediction_panel():
    probs = np.array([0.1, 0.6, 0.05, 0.25])
    assert top_k(probs, ["a", "b", "c", "d"], 3) == [("b", 0.6), ("d", 0.25), ("a", 0.1)]
    assert top_k(probs, None, 1) == [("1", 0.6)]
    image = np.zeros((20, 30, 3), np.uint8)
    fig = prediction_panel(image, probs, ["a", "b", "c", "d"], k=3)
    png = Image.open(io.BytesIO(figure_bytes(fig)))
    assert png.size == tuple((fig.get_size_inches() * fig.dpi).round().astype(int))
    svg = figure_bytes(fig, "svg").decode()
    assert "60.0%" in svg and ">d<" in svg and ">c<" not in svg
    with pytest.raises(ConvscopeError, match="uint8"):
        prediction_panel(image.astype(float), probs)
