"""Input mismatches are said where the prediction is: polarity and colour into a digit net."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from convscope.cli.main import main
from convscope.server import create_app
from convscope.server.images import mnist_digits


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(["default"]))


@pytest.fixture(scope="module")
def seven() -> np.ndarray:
    return next(p for label, p in mnist_digits() if label == "7")


def _upload(client, data: bytes) -> str:
    return client.post("/api/models/default/images", files={"file": ("x.png", data)}).json()["image"]


def test_a_dark_digit_on_white_is_flagged_and_the_inverted_copy_fixes_it(client, seven):
    image = _upload(client, _png(255 - seven))
    trace = client.get("/api/models/default/trace", params={"image": image}).json()
    assert [w["kind"] for w in trace["warnings"]] == ["polarity"]
    assert trace["warnings"][0]["fix"] == "invert" and "white digits on black" in trace["warnings"][0]["message"]
    assert trace["prediction"]["top"][0]["name"] != "7"  # the mistake the warning explains

    fixed = client.post(f"/api/models/default/images/{image}/inverted").json()["image"]
    again = client.get("/api/models/default/trace", params={"image": fixed}).json()
    assert again["warnings"] == [] and again["prediction"]["top"][0]["name"] == "7"


def test_a_colour_photo_into_the_digit_net_is_flagged(client, photo_coffee):
    image = _upload(client, _png(photo_coffee))
    warnings = client.get("/api/models/default/trace", params={"image": image}).json()["warnings"]
    assert "colour" in [w["kind"] for w in warnings]
    assert next(w for w in warnings if w["kind"] == "colour")["fix"] == "photo-model"


def test_real_white_on_black_digits_get_no_warning(client):
    samples = client.get("/api/models/default/samples").json()
    for s in samples:
        assert client.get("/api/models/default/trace", params={"image": s["id"]}).json()["warnings"] == []


def test_convscope_explain_prints_the_warning_and_its_fix(seven, tmp_path, capsys):
    path = tmp_path / "dark7.png"
    path.write_bytes(_png(255 - seven))
    assert main(["explain", str(path), "--layers", "conv_1_1", "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "warning: default expects white digits on black" in out and "--invert" in out
    assert (
        main(["explain", str(path), "--invert", "--layers", "conv_1_1", "--out", str(tmp_path / "o"), "--no-progress"])
        == 0
    )
    out = capsys.readouterr().out
    assert "warning" not in out and out.splitlines()[1].split()[1] == "7"
