"""``convscope explain`` end to end: printed top-5 against independent predictions, the
files it writes (valid PNG/SVG, trace.json, a self-contained index.html), and errors."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_vgg_names import TINY_VGG_CHILDREN

from convscope.cli.main import main
from convscope.models import load_model

TINY_VGG_LAYERS = ["input", *TINY_VGG_CHILDREN]


def _printed_top(out: str) -> list[tuple[str, float]]:
    rows = re.findall(r"^\s*\d+\.\s+(.+?)\s+([\d.]+)%$", out, flags=re.M)
    return [(name, float(p) / 100) for name, p in rows]


def _assert_self_contained(page: Path) -> None:
    text = page.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text
    refs = re.findall(r"(?:src|href)='([^']+)'", text)
    assert refs
    for ref in refs:
        assert (page.parent / ref).is_file(), ref


def _assert_png(path: Path) -> None:
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) > 10


def test_cnn_explainer_model_json(cnn_explainer_dir, cnn_explainer_reference, tmp_path, capsys):
    reference = cnn_explainer_reference
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps(reference["classes"]))
    out = tmp_path / "out"
    rc = main(
        [
            "explain",
            str(cnn_explainer_dir / "images" / "espresso_1.jpeg"),
            "--model",
            str(cnn_explainer_dir / "model.json"),
            "--classes",
            str(classes),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    printed = _printed_top(capsys.readouterr().out)
    # TF.js' probabilities on the same Pillow decode, ranked
    probs = np.array(reference["images"]["espresso_1.jpeg"]["pillow_decode"]["probs"])
    expected = [(reference["classes"][i], probs[i]) for i in np.argsort(-probs)[:5]]
    assert [n for n, _ in printed] == [n for n, _ in expected]
    np.testing.assert_allclose([p for _, p in printed], [p for _, p in expected], atol=6e-5)

    trace = json.loads((out / "trace.json").read_text())
    assert [layer["name"] for layer in trace["layers"]] == TINY_VGG_LAYERS
    assert trace["layers"][1]["output_shape"] == [1, 10, 62, 62]
    figures = sorted((out / "layers").glob("*.png"))
    assert [f.stem for f in figures] == [f"{i:02d}_{n}" for i, n in enumerate(TINY_VGG_LAYERS)] + ["13_softmax"]
    for f in figures[:2] + figures[-2:]:
        _assert_png(f)
    assert sorted(f.stem for f in (out / "kernels").glob("*.png")) == ["conv_1_1", "conv_1_2", "conv_2_1", "conv_2_2"]
    _assert_png(out / "prediction.png")
    _assert_self_contained(out / "index.html")
    assert "10x62x62" in (out / "index.html").read_text()


def test_mnist_cnn_png_svg_and_layer_range(tmp_path, capsys):
    grey = np.zeros((50, 40), np.uint8)
    grey[10:40, 15:25] = 255  # a white bar on black, not 28x28, saved as a palette PNG
    image = tmp_path / "digit.png"
    Image.fromarray(grey, "L").convert("P").save(image)
    torch.manual_seed(0)
    expected = load_model("mnist-cnn").predict(image, top=5)[0]
    torch.manual_seed(0)  # the same untrained weights inside the command
    out = tmp_path / "out"
    assert (
        main(
            [
                "explain",
                str(image),
                "-m",
                "mnist-cnn",
                "-o",
                str(out),
                "--range",
                "layer",
                "--format",
                "svg",
                "--device",
                "cpu",
                "--max-channels",
                "16",
            ]
        )
        == 0
    )
    printed = _printed_top(capsys.readouterr().out)
    assert [n for n, _ in printed] == [n for n, _ in expected]
    np.testing.assert_allclose([p for _, p in printed], [p for _, p in expected], atol=6e-5)
    svgs = sorted((out / "layers").glob("*.svg"))
    assert len(svgs) == 14  # input + 12 layers + softmax
    root = ET.parse(svgs[1]).getroot()
    assert root.tag.endswith("svg")
    assert "conv1 (conv)" in svgs[1].read_text() and "per layer" in svgs[1].read_text()
    assert sorted(f.stem for f in (out / "kernels").glob("*.svg")) == ["conv1", "conv2", "conv3"]
    assert "as grey images" in (out / "kernels" / "conv1.svg").read_text()  # first layer: 1 input channel
    _assert_self_contained(out / "index.html")


def test_efficientnet_real_photo_selected_layers(efficientnet, photo_coffee, tmp_path, capsys):
    photo = tmp_path / "coffee.jpg"
    Image.fromarray(photo_coffee).save(photo, quality=95)
    expected = efficientnet.predict(photo, top=5)[0]
    out = tmp_path / "out"
    assert (
        main(
            [
                "explain",
                str(photo),
                "--model",
                "efficientnet-lite0",
                "--out",
                str(out),
                "--layers",
                "_conv_stem",
                "_blocks.15._project_conv",
                "_fc",
                "--max-channels",
                "8",
                "--format",
                "svg",
                "--range",
                "global",
            ]
        )
        == 0
    )
    printed = _printed_top(capsys.readouterr().out)
    assert [n for n, _ in printed] == [n for n, _ in expected]
    assert printed[0][0] == "espresso"
    figures = sorted(p.name for p in (out / "layers").glob("*.svg"))
    assert len(figures) == 4 and figures[-1].endswith("_softmax.svg")
    stem = next((out / "layers").glob("*__conv_stem.svg")).read_text()
    assert "first 8 of 32 channels" in stem and "all layers" in stem
    assert sorted(p.stem for p in (out / "kernels").glob("*.svg")) == ["_blocks.15._project_conv", "_conv_stem"]
    assert "as RGB images" in (out / "kernels" / "_conv_stem.svg").read_text()
    assert "rows: output channels (8 of 320)" in (out / "kernels" / "_blocks.15._project_conv.svg").read_text()
    assert len(json.loads((out / "trace.json").read_text())["layers"]) > 100  # the whole trace, all layers
    _assert_self_contained(out / "index.html")


@pytest.mark.parametrize("case", ["not-an-image", "untraceable", "unknown-layer", "missing-model"])
def test_errors_are_one_line_exit_2(case, tmp_path, capsys, cnn_explainer_dir):
    image = cnn_explainer_dir / "images" / "bus_1.jpeg"
    model = str(cnn_explainer_dir / "model.json")
    extra: list[str] = []
    if case == "not-an-image":
        image = tmp_path / "notes.jpg"
        image.write_text("this is text, not a JPEG")
    elif case == "untraceable":
        (tmp_path / "badnet.py").write_text(
            "from torch import nn\n"
            "def make():\n"
            "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))\n"
        )
        model = f"{tmp_path / 'badnet.py'}:make"
    elif case == "unknown-layer":
        extra = ["--layers", "conv_9_9"]
    else:
        model = str(tmp_path / "nowhere" / "model.json")
    rc = main(["explain", str(image), "--model", model, "--out", str(tmp_path / "out"), *extra])
    said = capsys.readouterr()
    err = said.err.strip()
    assert rc == 2
    assert said.out == ""  # nothing before the error: a wrong --layers name is caught before the top-5 is printed
    assert len(err.splitlines()) == 1 and err.startswith("convscope explain: error:")
    assert {
        "not-an-image": "not an image",
        "untraceable": "failed on input",
        "unknown-layer": "conv_9_9",
        "missing-model": "no such model file",
    }[case] in err
