"""Activation-map colours and figures, checked against matplotlib's own colour maps."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib import colormaps
from PIL import Image

from convscope.errors import ConvscopeError
from convscope.render.activations import (
    activation_figure,
    activation_grid,
    activation_tiles,
    channel_ranges,
    scale_for_kind,
    vector_figure,
)
from convscope.render.figure_io import figure_bytes, save_figure


def _rgb(cmap: str, x: float) -> list[np.ndarray]:
    """The colour of position x in [0, 1] on a 256-entry colour table (floor or nearest entry)."""
    entries = {int(np.floor(x * 255 + 1e-9)), int(np.rint(x * 255))}
    return [np.array(colormaps[cmap](i / 255)[:3]) * 255 for i in sorted(entries)]


def _close(actual, expected, tol=1.0):
    candidates = expected if isinstance(expected, list) else [np.asarray(expected, float)]
    a = np.asarray(actual, float)
    assert any(np.abs(a - c).max() <= tol for c in candidates), (a, candidates)


def test_kinds_pick_cnn_explainer_scales():
    assert scale_for_kind("input") == "grey"
    assert scale_for_kind("linear") == "logit" and scale_for_kind("softmax") == "logit"
    for kind in ("conv", "relu", "maxpool", "avgpool", "batchnorm", "add"):
        assert scale_for_kind(kind) == "diverging"


def test_unit_mode_zero_is_white_and_extremes_are_the_ends():
    a = np.array([[-2.0, 0.0, 1.0]])
    b = np.array([[0.0, 3.0, 4.0]])
    ta, tb = activation_tiles(np.stack([a, b]), "diverging", channel_ranges([a, b], "unit"))
    _close(ta[0, 1], _rgb("RdBu_r", 0.5))  # 0 -> the white centre
    assert ta[0, 1].min() > 240
    _close(ta[0, 0], _rgb("RdBu_r", 0.0))  # -2 = -max|a| -> the blue end
    _close(ta[0, 2], _rgb("RdBu_r", 0.75))  # 1 on a symmetric -2..2 scale
    _close(tb[0, 2], _rgb("RdBu_r", 1.0))  # 4 = max|b| -> the red end, in b's own range
    _close(tb[0, 0], _rgb("RdBu_r", 0.5))


def test_layer_and_global_modes_share_one_range():
    a = np.array([[-2.0, 0.0, 1.0]])
    b = np.array([[0.0, 3.0, 4.0]])
    ta, tb = activation_tiles(np.stack([a, b]), "diverging", channel_ranges([a, b], "layer"))
    _close(ta[0, 2], _rgb("RdBu_r", 0.625))  # 1 on the layer's -4..4 scale
    _close(ta[0, 0], _rgb("RdBu_r", 0.25))
    _close(tb[0, 2], _rgb("RdBu_r", 1.0))
    (tg,) = activation_tiles(a[None], "diverging", channel_ranges([a], "global", global_range=(-10.0, 8.0)))
    _close(tg[0, 1], _rgb("RdBu_r", 0.5))
    _close(tg[0, 0], _rgb("RdBu_r", 0.4))  # -2 on -10..10
    with pytest.raises(ConvscopeError, match="global"):
        channel_ranges([a], "global")
    with pytest.raises(ConvscopeError, match="colour range"):
        channel_ranges([a], "image")


def test_grey_input_and_orange_logits():
    (g,) = activation_tiles(np.array([[[0.2, 0.5, 0.8]]]), "grey")
    _close(g[0, 0], [0, 0, 0], tol=0.5)
    _close(g[0, 2], [255, 255, 255], tol=0.5)
    (o,) = activation_tiles(np.array([[[-3.0, 7.0]]]), "logit")
    _close(o[0, 0], _rgb("Oranges", 0.0))
    _close(o[0, 1], _rgb("Oranges", 1.0))


def test_activation_grid_layout():
    maps = np.random.default_rng(0).normal(size=(5, 4, 6))
    grid = activation_grid(maps, ncols=3, pad=1)
    assert grid.shape == (2 * (4 + 1) + 1, 3 * (6 + 1) + 1, 3) and grid.dtype == np.uint8
    assert (grid[6:10, 15:21] == 255).all()  # the sixth slot is empty background
    first = activation_tiles(maps[:1])[0]
    np.testing.assert_array_equal(grid[1:5, 1:7], first)
    assert activation_grid(maps, max_channels=2, ncols=2, pad=0).shape == (4, 12, 3)


def test_activation_figure_png_and_svg(tmp_path):
    maps = np.random.default_rng(1).normal(size=(12, 7, 7))
    fig = activation_figure(maps, "block.3", "diverging", mode="layer", max_channels=8)
    width, height = (fig.get_size_inches() * fig.dpi).round().astype(int)
    png = save_figure(fig, tmp_path / "a.png")
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (width, height)
    svg = save_figure(fig, tmp_path / "a.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert float(root.get("width").removesuffix("pt")) == pytest.approx(fig.get_size_inches()[0] * 72)
    assert "first 8 of 12 channels" in svg.read_text()  # text kept as text
    with pytest.raises(ConvscopeError, match="png or svg"):
        figure_bytes(fig, "gif")


def test_vector_figure_bars_and_strip():
    fig = vector_figure(np.array([1.0, -2.0, 3.0]), "logits", labels=["a", "b", "c"])
    assert Image.open(io.BytesIO(figure_bytes(fig))).format == "PNG"
    svg = figure_bytes(fig, "svg").decode()
    assert all(f">{name}<" in svg for name in "abc")
    fig = vector_figure(np.arange(1690.0), "flatten", "diverging", row_length=169)
    assert "169 per row" in figure_bytes(fig, "svg").decode()
    with pytest.raises(ConvscopeError):
        vector_figure(np.array([]), "empty")
