"""The compare endpoints return what cs.compare computes on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

import convscope as cs
from convscope.server.encoding import decode_array


@pytest.fixture(scope="module")
def app(perturbed_checkpoint):
    from convscope.server import create_app

    return create_app(["default", str(perturbed_checkpoint)])


@pytest.fixture(scope="module")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


def python_side(app, model: str, image: str):
    reg = app.state.registry
    return reg.entry(model).model, reg.input_batch(model, image)


def test_two_images_distances_and_diff_pages(app, client):
    r = client.get("/api/compare", params={"model": "default", "image": "sample-3", "image_b": "sample-8"})
    assert r.status_code == 200, r.text
    got = r.json()
    m, xa = python_side(app, "default", "sample-3")
    _, xb = python_side(app, "default", "sample-8")
    want = cs.compare_images(m, xa, xb, labels=("sample-3", "sample-8")).to_json()
    assert _close(got["layers"], want["layers"])
    c = cs.compare_images(m, xa, xb)
    blob = client.get(
        "/api/compare/diff",
        params={
            "model": "default",
            "image": "sample-3",
            "image_b": "sample-8",
            "layer": "conv_1_2",
            "start": 2,
            "count": 3,
        },
    )
    header, page = decode_array(blob.content)
    assert header["start"] == 2 and header["channels"] == 10
    np.testing.assert_allclose(page, c.diff("conv_1_2")[0, 2:5], rtol=1e-6, atol=1e-6)
    row = next(x for x in got["layers"] if x["name"] == "conv_1_2")
    assert row["diff"]["max"] == pytest.approx(float(c.diff("conv_1_2").max()), rel=1e-6)


def _close(got, want) -> bool:
    for g, w in zip(got, want, strict=True):
        assert g["name"] == w["name"] and g["shape"] == w["shape"]
        for k in ("relative_l2", "cosine", "max_abs"):
            assert g[k] == pytest.approx(w[k], rel=1e-6, abs=1e-9), (g["name"], k)
    return True


def test_two_models_one_image(app, client, perturbed_layer):
    r = client.get("/api/compare", params={"model": "default", "model_b": "perturbed", "image": "sample-3"})
    assert r.status_code == 200, r.text
    got = r.json()
    ma, x = python_side(app, "default", "sample-3")
    mb, _ = python_side(app, "perturbed", "sample-3")
    want = cs.compare_models(ma, mb, x).to_json()
    assert _close(got["layers"], want["layers"])
    assert got["a"] == "default" and got["b"] == "perturbed" and got["mismatched"] == []
    first = next(row["name"] for row in got["layers"] if row["relative_l2"] > 0)
    assert first == perturbed_layer


def test_attributions_on_one_scale_and_errors(app, client):
    r = client.get(
        "/api/compare/explain",
        params={"model": "default", "image": "sample-3", "image_b": "sample-8", "method": "gradcam"},
    )
    assert r.status_code == 200, r.text
    m, xa = python_side(app, "default", "sample-3")
    _, xb = python_side(app, "default", "sample-8")
    pair = cs.compare_attributions(m, xa, m, xb, "gradcam")
    assert r.json()["top"] == pytest.approx(pair.top, rel=1e-6)
    assert r.json()["overlays"]["a"].startswith("data:image/png;base64,")
    assert client.get("/api/compare/diff", params={"model": "default", "layer": "nope"}).status_code == 404
    assert client.get("/api/compare", params={"model": "nope"}).status_code == 404
    assert client.get("/api/compare/explain", params={"model": "default", "method": "nope"}).status_code == 404
