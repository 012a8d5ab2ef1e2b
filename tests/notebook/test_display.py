"""Result objects display themselves: PNG / HTML reprs, show(), save(), printing, progress bars.

Real models and real digits (the embedded dataset); the pictures are decoded back and the
sanity table's numbers read out of the HTML and compared with the report's own arrays.
"""

from __future__ import annotations

import base64
import io
import re

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

import convscope as cs
from convscope.data import load_splits
from convscope.errors import ConvscopeError


@pytest.fixture(scope="module")
def model():
    return cs.load_model("default")


@pytest.fixture(scope="module")
def digits(model) -> torch.Tensor:
    test = load_splits("digits", seed=0, download=False, progress=False).test.conform(model.preprocessing)
    return model.batch([im.permute(1, 2, 0).numpy() for im in test.images[:3]])


@pytest.fixture(scope="module")
def report(model, digits):
    return cs.sanity_check(model, digits[:2], methods=("gradcam", "saliency"), max_steps=2, progress=False)


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def inline_pngs(html: str) -> list[np.ndarray]:
    return [decode_png(base64.b64decode(b)) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)]


def test_trace_html_is_its_summary_and_an_activation_overview(model, digits):
    t = cs.trace(model, digits[:1])
    html = t._repr_html_()
    for row in t.summary().rows:  # every layer of the summary table is in the HTML table
        assert f"<td>{row.name} ({row.op})</td>" in html
    assert f"Total params: {t.summary().total_params:,}" in html
    (overview,) = inline_pngs(html)
    assert overview.shape == t.picture().shape
    assert overview.std() > 0  # not a blank picture
    assert decode_png(t._repr_png_()).shape == overview.shape


def test_attribution_draws_its_maps_over_the_input(model, digits):
    r = cs.GradCAM(model)(digits)
    assert repr(r) == f"Attribution('gradcam' at 'max_pool_2', 3 maps 28x28, classes {r.targets.tolist()})"
    over = decode_png(r._repr_png_())
    assert np.array_equal(over, r.picture())
    inputs = r.pixels()
    assert inputs.shape == (3, 28, 28, 1) and inputs.dtype == np.uint8
    assert np.array_equal(inputs, model.to_display(digits))
    r.pixels = None  # an attribution that does not know its input shows the bare heatmaps
    bare = r.picture()
    assert bare.shape == over.shape and not np.array_equal(bare, over)


def test_sanity_report_prints_its_table_and_shows_its_numbers(report, capsys):
    print(report)
    printed = capsys.readouterr().out.strip()
    assert printed == report.table() == repr(report)
    assert "tensor(" not in printed
    html = report._repr_html_()
    rows = re.findall(r"<tr><td>([^<]*)</td>(.*?)</tr>", html)
    assert [step for step, _ in rows] == ["(original)", *report.steps]
    for i, (_, cells) in enumerate(rows):
        values = [tuple(map(float, c.split(" / "))) for c in re.findall(r"<td[^>]*>([^<]*)</td>", cells)]
        assert len(values) == len(report.methods)
        for m, (rho, s) in zip(report.methods, values):
            assert rho == pytest.approx(float(report.spearman[m][i].nanmean()), abs=5e-4)
            assert s == pytest.approx(float(report.ssim[m][i].mean()), abs=5e-4)
    (figure,) = inline_pngs(html)
    assert figure.shape == report.picture().shape


def test_feature_vis_and_embedding_draw(model):
    from convscope.analysis.embedding import embed

    vis = cs.visualize(model, "conv_2_2", units=[0, 1], steps=2, progress=False)
    assert repr(vis) == "FeatureVis('conv_2_2', units [0, 1], 28x28 pixels)"
    assert decode_png(vis._repr_png_()).shape == vis.picture().shape
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    features = rng.normal(size=(90, 6)) + 4 * labels[:, None]
    plain = embed(features, "pca")
    coloured = embed(features, "pca", labels=labels, preds=labels, class_names=["a", "b", "c"])
    assert repr(coloured) == "Embedding('pca' via sklearn, 90 points, seed 0)"
    a, b = decode_png(plain._repr_png_()), decode_png(coloured._repr_png_())
    assert a.shape == b.shape and not np.array_equal(a, b)  # coloured by label


def test_save_png_svg_html_by_suffix(model, digits, report, tmp_path):
    from convscope.analysis.embedding import Embedding, embed

    r = cs.Saliency(model)(digits[:1])
    for obj, stem in ((r, "saliency"), (report, "sanity"), (cs.trace(model, digits[:1]), "trace")):
        png = obj.save(tmp_path / f"{stem}.png")
        assert np.array_equal(decode_png(png.read_bytes()), obj.picture())
        svg = (obj.save(tmp_path / f"{stem}.svg")).read_text()
        assert svg.startswith("<?xml") and "<svg" in svg
        page = obj.save(tmp_path / f"{stem}.html").read_text()
        assert page.startswith("<!doctype html>") and len(inline_pngs(page)) == 1
    with pytest.raises(ConvscopeError, match="not 'x.jpg'"):
        r.save(tmp_path / "x.jpg")
    emb = embed(np.random.default_rng(1).normal(size=(20, 4)), "pca")
    emb.save(tmp_path / "e.png")
    assert decode_png((tmp_path / "e.png").read_bytes()).shape == emb.picture().shape
    assert Embedding.load(emb.save(tmp_path / "e.npz")).coords.tolist() == emb.coords.tolist()


def test_show_under_agg(model, digits):
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    r = cs.GradCAM(model)(digits[:1])
    fig = r.show()
    try:
        assert fig.number in plt.get_fignums()
        assert tuple(fig.get_size_inches() * fig.dpi) == pytest.approx(r.picture().shape[1::-1])
    finally:
        plt.close(fig)


def test_drawing_a_sanity_figure_keeps_the_notebooks_backend(report):
    """render.heatmap used to call matplotlib.use('Agg'), switching a notebook's inline backend away."""
    import matplotlib.pyplot as plt

    from convscope.render.heatmap import sanity_figure

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        first = {m: report.maps[m][:, 0].numpy() for m in report.methods}
        sanity_figure(
            np.zeros((28, 28), np.uint8),
            report.steps,
            first,
            {m: report.spearman[m][:, 0].numpy() for m in report.methods},
            {m: report.ssim[m][:, 0].numpy() for m in report.methods},
        )
        assert matplotlib.get_backend() == "svg" and plt.get_fignums() == []
    finally:
        matplotlib.use(before)


def test_long_calls_show_a_bar_unless_asked_not_to(model, digits, capsys, monkeypatch):
    monkeypatch.setattr("convscope.progress.DELAY", 0.0)  # the default bar waits a second; not here
    cs.sanity_check(model, digits[:1], methods=("gradcam",), max_steps=2)
    out = capsys.readouterr()
    assert re.search(r"sanity check: +\d+%\|.*\| \d/3 ", out.err) and out.out == ""  # a bar of the 3 steps
    cs.visualize(model, "conv_2_2", units=[0], steps=3)
    assert "visualize conv_2_2" in capsys.readouterr().err
    cs.sanity_check(model, digits[:1], methods=("gradcam",), max_steps=2, progress=False)
    cs.visualize(model, "conv_2_2", units=[0], steps=3, progress=False)
    assert capsys.readouterr().err == ""
    calls: list[tuple[int, int]] = []  # a caller's own callback is called, and no bar is drawn
    cs.sanity_check(model, digits[:1], methods=("gradcam",), max_steps=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 3), (2, 3), (3, 3)] and capsys.readouterr().err == ""
    with pytest.raises(ConvscopeError, match="progress must be"):
        cs.visualize(model, "conv_2_2", units=[0], steps=1, progress="yes")
