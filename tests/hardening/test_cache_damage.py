"""A damaged cache file never breaks a view: a dataset pass, an embedding or a feature
picture whose file was cut short, garbled or swapped is discarded and recomputed, and
the view answers 200 with the numbers a direct computation gives."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from convscope.analysis import DatasetPass, embed, run_pass
from convscope.data import load_splits
from convscope.models import load_model

from hardening_helpers import finish

BASE = "/api/models/default"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 3 : len(data) // 3 + 64] = bytes(range(64))
    path.write_bytes(bytes(data))


def wrong_rows(path: Path) -> None:
    """A readable pass whose rows are not the split's (first ten rows only)."""
    p = DatasetPass.load(path)
    short = DatasetPass(
        **{k: getattr(p, k)[:10] for k in ("labels", "preds", "probs", "loss", "features", "indices")},
        classes=p.classes,
        layer=p.layer,
        feature_side=p.feature_side,
        dataset=p.dataset,
        meta=p.meta,
    )
    path.unlink()
    short.save(path)


def app_on(cache: Path, monkeypatch):
    """A fresh explorer (nothing in memory) on the default model and `digits`, caching under ``cache``."""
    from convscope.server import create_app

    monkeypatch.setenv("CONVSCOPE_CACHE", str(cache))
    app = create_app(["default"], data="digits")
    app.state.explain.cache_dir = cache / "features"
    return TestClient(app)


@pytest.fixture(scope="module")
def reference():
    model = load_model("default")
    test = load_splits("digits", seed=0, download=False, progress=False).test.conform(model.preprocessing)
    return run_pass(model, test, progress=False)


@pytest.mark.parametrize("damage", [truncate, garble, wrong_rows, lambda p: p.write_bytes(b"")])
def test_a_damaged_dataset_pass_is_recomputed(tmp_path, monkeypatch, reference, damage):
    with app_on(tmp_path, monkeypatch) as c:
        assert finish(c, c.post(f"{BASE}/dataset/test/pass"))["status"] == "done"
    (entry,) = (tmp_path / "dataset-pass").glob("*.npz")
    damage(entry)
    with app_on(tmp_path, monkeypatch) as c, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        job = finish(c, c.post(f"{BASE}/dataset/test/pass"))
        assert job["status"] == "done" and job["result"]["cached"] is False, job
        s = c.get(f"{BASE}/dataset/test/summary")
    assert s.status_code == 200 and s.json()["count"] == len(reference) == 180
    assert s.json()["accuracy"] == pytest.approx(float(reference.correct.mean()))
    assert any("damaged cache entry" in str(w.message) for w in seen)
    np.testing.assert_allclose(DatasetPass.load(entry).probs, reference.probs, atol=1e-6)  # rewritten whole


@pytest.mark.parametrize("damage", [truncate, garble])
def test_a_damaged_embedding_is_recomputed(tmp_path, monkeypatch, reference, damage):
    with app_on(tmp_path, monkeypatch) as c:
        finish(c, c.post(f"{BASE}/dataset/test/pass"))
        assert finish(c, c.post(f"{BASE}/dataset/test/embedding", params={"method": "pca"}))["status"] == "done"
    (entry,) = (tmp_path / "embedding").glob("*.npz")
    damage(entry)
    with app_on(tmp_path, monkeypatch) as c, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finish(c, c.post(f"{BASE}/dataset/test/pass"))
        job = finish(c, c.post(f"{BASE}/dataset/test/embedding", params={"method": "pca"}))
        assert job["status"] == "done", job
        e = c.get(f"{BASE}/dataset/test/embedding", params={"method": "pca"})
    assert e.status_code == 200
    direct = embed(reference.features, method="pca", seed=0).coords
    np.testing.assert_allclose(np.c_[e.json()["x"], e.json()["y"]], direct, atol=2e-4)


@pytest.mark.parametrize("damage", [truncate, garble])
def test_a_damaged_feature_picture_is_recomputed(tmp_path, monkeypatch, damage):
    where = {"channel": 2, "steps": 6}
    with app_on(tmp_path, monkeypatch) as c:
        layer = c.get(f"{BASE}/explain/options").json()["layers"][0]["name"]  # the first convolution
        url = f"{BASE}/layers/{layer}/visualization"
        assert finish(c, c.post(url, params=where))["status"] == "done"
        first = c.get(url, params=where).json()
    assert first["cached"] is True
    (entry,) = (tmp_path / "features").rglob("*.npz")
    damage(entry)
    with app_on(tmp_path, monkeypatch) as c:
        peek = c.get(url, params=where)
        assert peek.status_code == 200 and peek.json()["cached"] is False  # gone, not a 500
        assert not entry.exists()
        assert finish(c, c.post(url, params=where))["status"] == "done"
        again = c.get(url, params=where).json()
    assert again["cached"] is True and again["image"] == first["image"] and again["value"] == first["value"]
