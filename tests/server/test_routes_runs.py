"""The training view's API: run discovery, curves (live, with versions), snapshots, bad names."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from convscope.analysis import read_metrics
from convscope.models.zoo import TinyVGG
from convscope.train.snapshots import save_snapshot


def record(epoch: int) -> dict:
    return {"epoch": epoch, "train_loss": 2.0 / epoch, "train_acc": 0.5 + 0.1 * epoch, "val_loss": 2.2 / epoch,
            "val_acc": 0.45 + 0.1 * epoch, "lr": 0.001, "seconds": 1.0, "images_per_s": 100.0}


def write_run(folder, epochs: int, net: torch.nn.Module) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(record(e)) + "\n" for e in range(1, epochs + 1)))
    image = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for e in range(epochs + 1):
        save_snapshot(folder, e, net, image, image.float() / 255, label=3)


@pytest.fixture()
def runs(tmp_path):
    torch.manual_seed(0)
    net = TinyVGG(in_channels=1, num_classes=10, input_size=(16, 16))
    write_run(tmp_path / "runs" / "a", 2, net)
    write_run(tmp_path / "runs" / "group" / "b", 3, net)
    (tmp_path / "runs" / "empty").mkdir()
    return tmp_path / "runs", net


@pytest.fixture()
def client(runs):
    from fastapi.testclient import TestClient

    from convscope.server import create_app
    from convscope.server.registry import Registry

    app = create_app(registry=Registry(["default"]), runs=runs[0])
    with TestClient(app) as c:
        yield c


def test_lists_runs_nested_and_skips_folders_without_one(client):
    found = client.get("/api/runs").json()
    assert [r["name"] for r in found["runs"]] == ["a", "group/b"]
    a = found["runs"][0]
    assert a["epochs"] == 2 and a["best_epoch"] == 2 and a["best_val_acc"] == pytest.approx(0.65)


def test_curves_equal_the_metrics_file_and_versions_track_changes(client, runs):
    root, _ = runs
    d = client.get("/api/runs/group/b/metrics").json()
    expected = read_metrics(root / "group" / "b" / "metrics.jsonl")
    assert d["curves"]["epoch"] == [1.0, 2.0, 3.0]
    assert d["curves"]["val_loss"] == pytest.approx([r["val_loss"] for r in expected])
    assert d["snapshots"] == [0, 1, 2, 3]
    same = client.get("/api/runs/group/b/metrics", params={"since": d["version"]}).json()
    assert same == {"name": "group/b", "version": d["version"], "changed": False}
    # the trainer appends an epoch, and is half-way through writing the next line
    with open(root / "group" / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record(4)) + "\n" + '{"epoch": 5, "train_lo')
    after = client.get("/api/runs/group/b/metrics", params={"since": d["version"]}).json()
    assert after["changed"] and after["curves"]["epoch"] == [1.0, 2.0, 3.0, 4.0]
    assert after["curves"]["train_loss"][-1] == pytest.approx(0.5)


def test_snapshot_sends_the_first_conv_weights_and_maps(client, runs):
    _, net = runs
    s = client.get("/api/runs/a/snapshots/1").json()
    conv = net.conv_1_1
    w = np.frombuffer(base64.b64decode(s["weight"]["data"]), "<f4").reshape(s["weight"]["shape"])
    np.testing.assert_array_equal(w, conv.weight.detach().numpy())
    assert s["weight_range"] == pytest.approx(float(conv.weight.detach().abs().max()))
    a = np.frombuffer(base64.b64decode(s["activations"]["data"]), "<f4").reshape(s["activations"]["shape"])
    image = torch.randint(0, 256, (1, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = conv(image.float().unsqueeze(0) / 255)[0].numpy()
    np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-6)
    assert s["label"] == 3 and s["layer"] == "conv_1_1" and s["image"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("path", ["/api/runs/nope/metrics", "/api/runs/../a/metrics", "/api/runs/%2E%2E%2Fa/metrics",
                                  "/api/runs/a/snapshots/9", "/api/runs/empty/metrics"])
def test_unknown_runs_and_epochs_are_404(client, path):
    r = client.get(path)
    assert r.status_code == 404


def test_no_runs_folder_lists_nothing():
    from fastapi.testclient import TestClient

    from convscope.server import create_app
    from convscope.server.registry import Registry

    with TestClient(create_app(registry=Registry(["default"]))) as c:
        assert c.get("/api/runs").json() == {"root": None, "runs": []}
        assert "--runs" in c.get("/api/runs/x/metrics").json()["detail"]
