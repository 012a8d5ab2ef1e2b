"""render.heatmap (pure functions from arrays): colours, blending and the figures' shapes."""

from __future__ import annotations

import re

import numpy as np

from convscope.render.colormap import colorize
from convscope.render.heatmap import curves_figure, heatmap_rgb, methods_figure, overlay, sanity_figure


def test_heatmap_scale_follows_the_sign_and_clips_outliers():
    v = np.zeros((40, 40))
    v[0, 0] = 1000.0  # one outlier pixel
    v[20:, :] = 1.0
    rgb = heatmap_rgb(v)
    # non-negative: 'heat' scale; 1.0 is the 99.5th percentile, so it gets the top colour, not a faint one
    assert (rgb[39, 39] == colorize(np.array([[1.0]]), "heat", vmin=0, vmax=1)[0, 0]).all()
    assert (rgb[0, 0] == rgb[39, 39]).all()
    signed = heatmap_rgb(np.array([[-1.0, 0.0, 1.0]]), clip_percentile=100)
    assert (signed[0, 1] == colorize(np.array([[0.0]]), "diverging", -1, 1)[0, 0]).all()  # white at zero
    assert signed[0, 0, 2] > signed[0, 0, 0] and signed[0, 2, 0] > signed[0, 2, 2]  # blue < 0 < red


def test_overlay_blends_and_resizes():
    img = np.full((8, 12, 3), 100, np.uint8)
    values = np.ones((2, 3))  # layer resolution: resized to the image
    out = overlay(img, values, alpha=0.5)
    heat = heatmap_rgb(np.ones((8, 12)))
    assert out.shape == (8, 12, 3) and out.dtype == np.uint8
    assert np.allclose(out.astype(float), 0.5 * 100 + 0.5 * heat.astype(float), atol=1)
    assert (overlay(img, values, alpha=0.0) == img).all()


def test_figures_are_rgb_arrays():
    img = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    maps = {"a": np.random.rand(16, 16), "b": np.random.rand(4, 4) - 0.5}
    fig = methods_figure(img, maps, title="t", notes={"a": "note"})
    assert fig.ndim == 3 and fig.shape[2] == 3 and fig.shape[1] > 2 * fig.shape[0]
    steps = ["fc", "block2", "block1"]
    s = sanity_figure(
        img,
        steps,
        {"a": np.random.rand(4, 16, 16)},
        {"a": np.array([1, 0.5, 0.2, -0.6])},
        {"a": np.array([1, 0.4, 0.3, 0.1])},
    )
    assert s.ndim == 3 and s.shape[2] == 3
    c = curves_figure(np.linspace(0, 1, 5), {"a": np.linspace(1, 0, 5)}, "deletion")
    assert c.shape[2] == 3


def test_the_pages_sanity_figure_draws_no_words(monkeypatch):
    """words=False (the page's figure, captioned in the reader's language): every text drawn is a
    number, a method name, 'Spearman' or 'SSIM'; the CLI's figure keeps its English titles."""
    import matplotlib.text

    from convscope.render import heatmap

    drawn: list[list[str]] = []
    keep = heatmap._figure_array

    def record(fig):
        drawn.append([t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()])
        return keep(fig)

    monkeypatch.setattr(heatmap, "_figure_array", record)
    img = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    args = (img, ["fc", "block2", "block1"], {"gradcam": np.random.rand(4, 16, 16)})
    curves = ({"gradcam": np.array([1, 0.5, 0.2, -0.6])}, {"gradcam": np.array([1, 0.4, 0.3, 0.1])})
    sanity_figure(*args, *curves, words=False)
    sanity_figure(*args, *curves)
    page, cli = drawn
    number = re.compile(r"^[\u2212\-]?\d+(\.\d+)?$")
    assert page and all(number.match(w) or w in {"gradcam", "Spearman", "SSIM"} for w in page), page
    assert {"original", "to fc"} <= set(cli) and any(w.startswith("Sanity check") for w in cli)
