"""One set of defaults: Python, the CLI and the explorer draw the same map for the same input."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from PIL import Image

import convscope as cs
from convscope import explain
from convscope.cli.main import main

METHODS = ["smoothgrad", "integratedgradients", "occlusion", "gradcam"]


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory):
    """A real MNIST digit (the embedded offline subset) as a PNG file."""
    from convscope.data import load_splits

    digit = load_splits("mnist").val.images[0, 0].numpy().astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "digit.png"
    Image.fromarray(digit).save(path)
    return path


@pytest.fixture(scope="module")
def page(digit_png):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    with TestClient(create_app(["default"])) as c:
        image = c.post("/api/models/default/images", files={"file": ("digit.png", digit_png.read_bytes())}).json()
        yield c, image["image"]


@pytest.mark.parametrize("method", METHODS)
def test_python_cli_and_page_draw_the_same_map(method, digit_png, page, tmp_path):
    model = cs.load_model("default")
    python = cs.attribute(model, model.batch(digit_png), method=method).numpy()[0]

    assert main(["attribute", str(digit_png), "--model", "default", "--method", method, "--out", str(tmp_path)]) == 0
    cli = np.load(tmp_path / f"{method}.npy")

    client, image = page
    r = client.get("/api/models/default/explain", params={"image": image, "method": method}).json()
    served = np.frombuffer(base64.b64decode(r["map"]["data"]), "<f4").reshape(r["map"]["shape"])

    assert python.std() > 0, "a constant map would make this comparison empty"
    np.testing.assert_allclose(cli, python, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(served, python, rtol=1e-5, atol=1e-7)


def test_the_defaults_are_the_constructors():
    assert explain.IntegratedGradients.defaults()["steps"] == 32
    assert explain.SmoothGrad.defaults()["samples"] == 16 and explain.SmoothGrad.defaults()["seed"] == 0
    assert explain.Occlusion.defaults()["window"] is None  # an eighth of the input's shorter side
    assert explain.GradCAM.defaults()["relu"] is True and "fold_bn" in explain.GradCAM.defaults()


def test_occlusion_window_follows_the_input_size():
    occ = explain.Occlusion(cs.load_model("default"))
    assert occ.geometry((28, 28)) == (3, 1)
    assert occ.geometry((224, 224)) == (28, 14)
    assert explain.Occlusion(cs.load_model("default"), window=8).geometry((224, 224)) == (8, 4)
    with pytest.raises(cs.ConvscopeError, match="stride <= window"):
        explain.Occlusion(cs.load_model("default"), stride=5).geometry((28, 28))
