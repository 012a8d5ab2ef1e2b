"""``convscope attribute`` and ``convscope sanity`` end to end on the shipped default model:
the files they write hold the same numbers as the Python API, and mistakes get one line."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from convscope import explain as ex
from convscope.cli.main import main
from convscope.explain.interpret import describe_metrics
from convscope.models import load_model


@pytest.fixture(scope="module")
def digit(tmp_path_factory):
    """A 28x28 greyscale stroke, like an MNIST digit."""
    a = np.zeros((28, 28), np.uint8)
    a[5:23, 13:16] = 255
    a[5:8, 9:16] = 255
    path = tmp_path_factory.mktemp("img") / "one.png"
    Image.fromarray(a).save(path)
    return path


def test_attribute_writes_maps_overlays_figure_and_metrics(digit, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(
        [
            "attribute",
            str(digit),
            "--model",
            "default",
            "--method",
            "gradcam,saliency,gradcam++,occlusion",
            "--target",
            "1",
            "--metrics",
            "--metric-steps",
            "4",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "explaining class 1" in printed and "deletion AUC" in printed
    model = load_model("default")
    x = model.batch(str(digit))
    want = ex.GradCAM(model)(x, 1)
    assert np.allclose(np.load(out / "gradcam.npy"), want.numpy()[0], atol=1e-6)
    assert np.load(out / "gradcam_raw.npy").shape == tuple(want.raw.shape[1:])
    assert np.load(out / "saliency_raw.npy").shape == (1, 28, 28)
    for stem in ("gradcam", "saliency", "gradcampp", "occlusion"):
        with Image.open(out / f"{stem}.png") as im:
            assert im.size == (28, 28) and im.mode == "RGB"
    with Image.open(out / "methods.png") as im:
        assert im.size[0] > im.size[1] > 100
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class"] == 1 and set(metrics["methods"]) == {"gradcam", "saliency", "gradcam++", "occlusion"}
    d = ex.deletion(model, x, want, steps=4)
    assert metrics["methods"]["gradcam"]["deletion_auc"] == pytest.approx(float(d.auc[0]), abs=1e-6)
    i = ex.insertion(model, x, want, steps=4)
    assert f"gradcam: {describe_metrics(d.fractions, d.scores[0], i.scores[0])}" in printed  # the one-line reading
    assert (out / "deletion.png").is_file() and (out / "insertion.png").is_file()


def test_sanity_writes_table_and_figure(digit, tmp_path, capsys):
    out = tmp_path / "s"
    rc = main(
        [
            "sanity",
            str(digit),
            "--model",
            "default",
            "--method",
            "gradcam,guidedbackprop",
            "--max-steps",
            "3",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader((out / "sanity.csv").open()))
    assert len(rows) == 2 * 4 and rows[0]["randomized_down_to"] == "(original)" and float(rows[0]["spearman"]) == 1
    report = ex.sanity_check(load_model("default"), str(digit), ["gradcam", "guidedbackprop"], max_steps=3)
    assert [r["randomized_down_to"] for r in rows[1:4]] == report.steps
    assert float(rows[5]["ssim"]) == pytest.approx(float(report.ssim["guidedbackprop"][1, 0]), abs=1e-5)
    assert report.steps[0] in printed
    assert all(f"{m}: {why}" in printed for m, (_, why) in report.verdicts.items())  # pass/fail with the reason
    assert json.loads((out / "sanity.json").read_text())["methods"] == ["gradcam", "guidedbackprop"]
    with Image.open(out / "sanity.png") as im:
        assert im.size[0] > 300


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--method", "nope"], "unknown attribution method"),
        (["--layer", "conv_9"], "no layer named"),
        (["--target", "10"], "out of range"),
    ],
)
def test_mistakes_get_one_line_and_exit_2(digit, tmp_path, capsys, argv, message):
    rc = main(["attribute", str(digit), "--model", "default", "--out", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1


def test_missing_image(tmp_path, capsys):
    assert main(["attribute", str(tmp_path / "none.png"), "--model", "default", "--out", str(tmp_path)]) == 2
    assert "no such image" in capsys.readouterr().err
