"""The dataset view's API on the default model and `digits`, checked against a direct
``convscope.analysis`` pass, scikit-learn's metrics and plain PyTorch."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.analysis import embed, run_pass
from convscope.data import load_splits
from convscope.models import load_model

from server_helpers import digits_app


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from fastapi.testclient import TestClient

    with digits_app(tmp_path_factory.mktemp("cache")) as app, TestClient(app) as c:
        yield c


def wait(client, job: dict) -> dict:
    deadline = time.time() + 120
    while job["status"] not in ("done", "failed", "cancelled"):
        assert time.time() < deadline, job
        time.sleep(0.1)
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["status"] == "done", job
    return job


@pytest.fixture(scope="module")
def reference():
    """The pass computed directly, without the server."""
    model = load_model("default")
    test = load_splits("digits", seed=0, download=False, progress=False).test.conform(model.preprocessing)
    return model, test, run_pass(model, test, progress=False)


@pytest.fixture(scope="module")
def client(setup):
    assert "no dataset pass" in setup.get("/api/models/default/dataset/test/summary").json()["detail"]
    job = wait(setup, setup.post("/api/models/default/dataset/test/pass").json())
    assert job["done"] == job["total"] == 180
    return setup


def test_summary_matches_sklearn(client, reference):
    from sklearn.metrics import accuracy_score, confusion_matrix, recall_score

    _, _, ref = reference
    s = client.get("/api/models/default/dataset/test/summary").json()
    assert s["dataset"] == "digits" and s["count"] == 180
    assert s["accuracy"] == pytest.approx(accuracy_score(ref.labels, ref.preds))
    np.testing.assert_array_equal(s["confusion"], confusion_matrix(ref.labels, ref.preds, labels=range(10)))
    np.testing.assert_allclose(
        s["per_class_accuracy"], recall_score(ref.labels, ref.preds, average=None, labels=range(10), zero_division=0)
    )


def test_cell_mistakes_and_random_rows(client, reference):
    _, _, ref = reference
    t, p = 7, 2
    cell = client.get("/api/models/default/dataset/test/cell", params={"true": t, "pred": p}).json()
    expected = np.flatnonzero((ref.labels == t) & (ref.preds == p))
    assert cell["count"] == len(expected) > 0
    assert [r["row"] for r in cell["rows"]] == expected.tolist()
    assert all(r["image"] == f"data-test-{r['row']}" for r in cell["rows"])
    m = client.get("/api/models/default/dataset/test/mistakes", params={"limit": 500}).json()
    wrong = np.flatnonzero(ref.preds != ref.labels)
    assert m["count"] == len(wrong) == len(m["rows"])
    conf = [r["confidence"] for r in m["rows"]]
    assert conf == sorted(conf, reverse=True)
    top = m["rows"][0]
    assert top["confidence"] == pytest.approx(float(ref.probs[top["row"]].max()), abs=1e-6)
    rnd = client.get("/api/models/default/dataset/test/random", params={"count": 24}).json()["rows"]
    assert len({r["row"] for r in rnd}) == 24
    assert all(r["pred"] == ref.preds[r["row"]] for r in rnd)


def test_dataset_image_in_the_explorer_is_the_image_the_pass_saw(client, reference):
    model, test, ref = reference
    row = int(np.flatnonzero(ref.preds != ref.labels)[0])
    png = client.get(f"/api/models/default/dataset/test/images/{row}.png").content
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("L")), test.images[row, 0].numpy())
    trace = client.get("/api/models/default/trace", params={"image": f"data-test-{row}"}).json()
    with torch.no_grad():
        probs = model.net(model.preprocessing.normalize(test.images[row : row + 1])).softmax(-1)[0]
    assert trace["prediction"]["top"][0]["index"] == int(ref.preds[row]) == int(probs.argmax())
    assert trace["prediction"]["top"][0]["prob"] == pytest.approx(float(probs.max()), abs=1e-5)
    explorer_png = client.get(f"/api/models/default/images/data-test-{row}.png").content
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(explorer_png)).convert("L")), test.images[row, 0].numpy()
    )


def test_pca_embedding_equals_a_direct_call(client, reference):
    _, _, ref = reference
    wait(client, client.post("/api/models/default/dataset/test/embedding", params={"method": "pca"}).json())
    e = client.get("/api/models/default/dataset/test/embedding", params={"method": "pca"}).json()
    direct = embed(ref.features, method="pca", seed=0).coords
    np.testing.assert_allclose(np.c_[e["x"], e["y"]], direct, atol=2e-3)
    assert e["label"] == ref.labels.tolist() and e["correct"] == (ref.labels == ref.preds).tolist()
    assert e["image_prefix"] == "data-test-"


@pytest.mark.parametrize(
    "path,status",
    [
        ("/api/models/default/dataset/nope/summary", 404),
        ("/api/models/nope/dataset/test/summary", 404),
        ("/api/models/default/dataset/test/cell?true=10&pred=0", 404),
        ("/api/models/default/dataset/test/images/180.png", 404),
        ("/api/models/default/images/data-test-999.png", 404),
        ("/api/models/default/dataset/test/embedding?method=umap", 400),
    ],
)
def test_bad_requests(client, path, status):
    assert client.get(path).status_code == status


def test_unknown_embedding_method_is_refused(client):
    r = client.post("/api/models/default/dataset/test/embedding", params={"method": "lda"})
    assert r.status_code == 400 and "pca" in r.json()["detail"]


def test_viewing_many_dataset_images_keeps_a_bounded_number_of_pngs(client):
    """Display PNGs of samples and dataset images are cached, but not every one ever viewed:
    paging through a split used to keep each image's PNG for the life of the server."""
    registry = client.app.state.registry
    viewed = 300
    for row in range(viewed):
        r = client.get(f"/api/models/default/images/data-train-{row}.png")
        assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0 < len(registry._pngs) < viewed
    again = client.get("/api/models/default/images/data-train-0.png")  # dropped long ago: made again, the same
    assert again.content == client.get("/api/models/default/images/data-train-0.png").content
