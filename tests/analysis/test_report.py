"""The report's content (HTML and PDF) and the pure HTML/figure writers behind it."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from convscope.analysis import evaluate, misclassified
from convscope.analysis.report import build_report, write_report
from convscope.errors import ConvscopeError
from convscope.render import dataset_figures as figs
from convscope.render.figure_io import figure_bytes
from convscope.render.report import Section, Table, render_html


def inline_pngs(text: str) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(m))) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    ]


@pytest.fixture(scope="module")
def html_report(tmp_path_factory, digits_run):
    path, model, _ = digits_run
    from convscope.data import load_splits

    out = tmp_path_factory.mktemp("report") / "report.html"
    facts = write_report(
        out,
        model,
        load_splits("digits")["test"],
        split="test",
        checkpoint=path,
        embedding="pca",
        cache_dir=out.parent / "cache",
        progress=False,
    )
    return out.read_text(encoding="utf-8"), facts


def test_report_sections_and_numbers(html_report, digits_pass):
    text, facts = html_report
    stats = evaluate(digits_pass)
    assert facts["accuracy"] == pytest.approx(stats["accuracy"]) and facts["errors"] == stats["errors"]
    for title in (
        "Overview",
        "Model summary",
        "Training curves",
        "Accuracy and confusion matrix",
        "True / Pred",
        "Misclassified examples",
        "Activation maps of one sample",
        "Embedding (PCA)",
    ):
        assert f"<h2>{title}</h2>" in text, title
    assert f"{100 * stats['accuracy']:.2f}%" in text
    assert "3 epochs" in text  # the run's metrics.jsonl was found beside the checkpoint
    assert f"of {stats['errors']} mistakes" in text
    for k in range(10):  # the per-class table: images and correct per class, as the confusion matrix says
        cm = np.asarray(stats["confusion"])
        assert f'<td>{k}</td><td class="num">{cm[k].sum()}</td><td class="num">{cm[k, k]}</td>' in text


def test_report_is_self_contained(html_report):
    text, _ = html_report
    images = inline_pngs(text)
    assert len(images) == text.count("<img") >= 7
    assert all(im.size[0] > 100 and im.size[1] > 100 for im in images)
    assert not re.search(r'(src|href)="(https?:|//)', text) and "<script" not in text and "<link" not in text


def test_gradcam_section_present_or_labelled(html_report):
    text, facts = html_report
    assert "<h2>Grad-CAM</h2>" in text
    try:
        from convscope.explain import attribute  # noqa: F401
    except ImportError:
        assert "Left out: convscope.explain" in text
        assert any("Grad-CAM" in item for item in facts["left_out"])
    else:
        assert 'alt="Grad-CAM overlays"' in text


def test_pdf_without_a_run_or_embedding(tmp_path, digits_run):
    _, model, test = digits_run
    out = tmp_path / "report.pdf"
    facts = write_report(
        out, model, test.subset(list(range(60))), fmt="pdf", embedding=None, cache_dir=tmp_path, progress=False
    )
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and data.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    # cover, overview, summary, no-curves note, per-class table, confusion, grid, mistakes, maps (, Grad-CAM)
    assert pages >= 9
    assert any("training curves" in item for item in facts["left_out"]) and "embedding" not in facts
    with pytest.raises(ConvscopeError, match="html or pdf"):
        write_report(tmp_path / "r.docx", model, test, fmt="docx", progress=False)
    with pytest.raises(ConvscopeError, match="unknown embedding"):
        build_report(model, test, embedding="mds", cache_dir=tmp_path, progress=False)


def test_a_split_too_small_to_embed_still_gets_its_report(tmp_path, digits_run):
    """A 12-image folder: its test split has 1 or 2 images. The report says the embedding is left
    out instead of failing whole ('an embedding needs at least 3 points')."""
    _, model, test = digits_run
    for n in (1, 2):
        out = tmp_path / f"report-{n}.html"
        facts = write_report(
            out, model, test.subset(list(range(n))), embedding="tsne", cache_dir=tmp_path, progress=False
        )
        text = out.read_text(encoding="utf-8")
        assert facts["count"] == n and "Accuracy and confusion matrix" in text and "Embedding (" not in text
        assert f"embedding: it needs at least 3 images, the test split has {n}" in facts["left_out"]
    facts = write_report(
        tmp_path / "r3.html", model, test.subset([0, 1, 2]), embedding="pca", cache_dir=tmp_path, progress=False
    )
    assert facts["embedding"]["method"] == "pca"


def test_render_html_escapes_and_embeds():
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    text = render_html(
        "<b>title</b>",
        [Section("A & B", paragraphs=["x < y"], table=Table(["k"], [["<v>"]]), figures=[(fig, 'a "plot"')], note="n")],
    )
    assert "&lt;b&gt;title&lt;/b&gt;" in text and "x &lt; y" in text and "&lt;v&gt;" in text
    assert 'alt="a &quot;plot&quot;"' in text and '<section id="a---b">' in text
    assert inline_pngs(text)[0].format == "PNG"


def test_figures_show_what_they_are_given(digits_pass):
    r = digits_pass
    wrong = misclassified(r, limit=4)
    fig = figs.misclassified_gallery(
        [np.zeros((8, 8), np.uint8)] * 4,
        [str(m.true) for m in wrong],
        [str(m.pred) for m in wrong],
        [m.confidence for m in wrong],
        ncols=4,
    )
    titles = [t.get_text() for t in fig.axes[0].texts]
    assert titles == [f"{m.true} → {m.pred}\n{100 * m.confidence:.1f}%" for m in wrong]
    grid = figs.true_pred_grid([np.zeros((8, 8, 3), np.uint8)] * 2, ["1", "2"], ["1", "3"])
    assert [t.get_color() for t in grid.axes[0].texts] == [figs.RIGHT, figs.WRONG]
    pixels = grid.axes[0].images[0].get_array()
    assert pixels.shape[0] > 72 and (np.asarray(pixels) == 0).any()  # the black images are drawn
    cm = np.array([[3, 1], [0, 2]])
    conf = figs.confusion_figure(cm, ["a", "b"])
    assert [t.get_text() for t in conf.axes[0].texts] == ["3", "1", "2"]
    curves = figs.training_curves({"epoch": [1, 2], "train_loss": [2.0, 1.0], "val_acc": [0.5, 0.7]})
    loss_ax, acc_ax = curves.axes
    assert list(loss_ax.lines[0].get_ydata()) == [2.0, 1.0] and list(acc_ax.lines[0].get_ydata()) == [0.5, 0.7]
    scatter = figs.embedding_scatter(
        np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1]), np.array([True, True, False, True]), ["a", "b"]
    )
    assert scatter.axes[0].collections[1].get_offsets().tolist() == [[4.0, 5.0]]  # the one misclassified point
    png = figure_bytes(scatter)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
