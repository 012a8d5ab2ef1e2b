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
    return {
        "epoch": epoch,
        "train_loss": 2.0 / epoch,
        "train_acc": 0.5 + 0.1 * epoch,
        "val_loss": 2.2 / epoch,
        "val_acc": 0.45 + 0.1 * epoch,
        "lr": 0.001,
        "seconds": 1.0,
        "images_per_s": 100.0,
    }


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


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/nope/metrics",
        "/api/runs/../a/metrics",
        "/api/runs/%2E%2E%2Fa/metrics",
        "/api/runs/a/snapshots/9",
        "/api/runs/empty/metrics",
    ],
)
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


# -- damaged runs and links leading out of a run folder ------------------------------------------


def runs_client(root, **kwargs):
    from fastapi.testclient import TestClient

    from convscope.server import create_app
    from convscope.server.registry import Registry

    return TestClient(create_app(registry=Registry(["default"]), runs=root), **kwargs)


@pytest.mark.parametrize("damage", [b"not json\n", b'{"epoch": 2, "note": "caf\xe9"}\n'], ids=["not-json", "not-utf8"])
def test_a_damaged_metrics_line_costs_one_epoch_and_hides_no_run(runs, damage):
    root, _ = runs
    metrics = root / "a" / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    metrics.write_bytes(lines[0] + damage + lines[1])  # epoch 1, the damaged line, epoch 2
    with runs_client(root, raise_server_exceptions=False) as c:
        listing = c.get("/api/runs")
        assert listing.status_code == 200, listing.text
        rows = {r["name"]: r for r in listing.json()["runs"]}
        assert sorted(rows) == ["a", "group/b"]  # the damaged run is listed, the others still show
        assert rows["group/b"]["problems"] == [] and rows["group/b"]["epochs"] == 3
        assert rows["a"]["problems"] == [
            "metrics.jsonl:2 is not " + ("JSON" if b"not json" in damage else "UTF-8 text") + "; skipped"
        ]
        d = c.get("/api/runs/a/metrics")
        assert d.status_code == 200, d.text
        assert d.json()["curves"]["epoch"] == [1.0, 2.0] and d.json()["problems"] == rows["a"]["problems"]


def test_non_finite_numbers_in_a_run_travel_as_null(runs):
    root, _ = runs
    with open(root / "a" / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 3, "train_loss": NaN, "val_loss": Infinity, "val_acc": 0.1}\n{"epoch": NaN}\n')
    with runs_client(root, raise_server_exceptions=False) as c:
        listing = c.get("/api/runs")
        assert listing.status_code == 200, listing.text
        a = next(r for r in listing.json()["runs"] if r["name"] == "a")
        assert a["epochs"] == 3 and a["last"]["train_loss"] is None and a["last"]["val_loss"] is None
        assert c.get("/api/runs/a/metrics").json()["curves"]["train_loss"][-1] is None


def test_files_linked_in_from_outside_the_run_folder_are_not_read(tmp_path, runs):
    root, net = runs
    secret = tmp_path / "secret"
    write_run(secret, 4, net)  # a real run, outside the runs folder
    torch.save({"format": "not ours"}, secret / "last.pt")
    run = root / "linked"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to(secret / "metrics.jsonl")
    (run / "last.pt").symlink_to(secret / "last.pt")
    (run / "snapshots").mkdir()
    (run / "snapshots" / "epoch_001.npz").symlink_to(secret / "snapshots" / "epoch_001.npz")
    (root / "a" / "snapshots" / "epoch_002.npz").unlink()
    (root / "a" / "snapshots" / "epoch_002.npz").symlink_to(secret / "snapshots" / "epoch_002.npz")
    (root / "group" / "b" / "snapshots").rename(tmp_path / "b-snapshots")
    (root / "group" / "b" / "snapshots").symlink_to(tmp_path / "b-snapshots")
    with runs_client(root, raise_server_exceptions=False) as c:
        rows = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
        assert rows["linked"]["epochs"] == 0 and rows["linked"]["last"] is None
        assert rows["linked"]["problems"] == [
            "metrics.jsonl leads outside the run folder (a symlink); not read",
            "last.pt leads outside the run folder (a symlink); not read",
        ]
        d = c.get("/api/runs/linked/metrics").json()
        assert d["curves"] == {} and d["snapshots"] == []
        assert d["version"] == "0." + d["version"].split(".")[1] + ".0"  # nothing of the outside files
        assert c.get("/api/runs/linked/snapshots/1").status_code == 404
        assert c.get("/api/runs/a/metrics").json()["snapshots"] == [0, 1]  # its own, not the linked one
        assert c.get("/api/runs/a/snapshots/2").status_code == 404
        assert c.get("/api/runs/a/snapshots/1").status_code == 200
        assert c.get("/api/runs/group/b/metrics").json()["snapshots"] == []
        assert c.get("/api/runs/group/b/snapshots/1").status_code == 404
        assert "snapshots leads outside" in rows["group/b"]["problems"][0]


def test_run_history_does_not_follow_a_metrics_link_out_of_the_folder(tmp_path, runs):
    from convscope.analysis import run_history

    root, _ = runs
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "best.pt").write_bytes(b"x")
    (folder / "metrics.jsonl").symlink_to(root / "group" / "b" / "metrics.jsonl")
    assert run_history(folder / "best.pt", {}) == []
    inside = folder / "real.jsonl"
    inside.write_text(json.dumps(record(1)) + "\n")
    (folder / "metrics.jsonl").unlink()
    (folder / "metrics.jsonl").symlink_to("real.jsonl")  # a link that stays inside is fine
    assert [r["epoch"] for r in run_history(folder / "best.pt", {})] == [1]


def test_a_run_that_cannot_be_described_still_answers_its_curves(runs, monkeypatch):
    """Defence in depth: whatever makes a run's description fail (here its checkpoint's meta
    cannot be read) is that run's error in the list and in its own answer, never a 500."""
    from convscope.server.routes_runs import RunIndex

    root, _ = runs
    real = RunIndex.meta

    def meta(self, run):
        if run.name == "a":
            raise PermissionError(13, "Permission denied", str(run.path / "last.pt"))
        return real(self, run)

    monkeypatch.setattr(RunIndex, "meta", meta)
    with runs_client(root, raise_server_exceptions=False) as c:
        rows = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
        assert rows["a"]["status"] == "error" and "Permission denied" in rows["a"]["error"]
        assert rows["group/b"]["status"] != "error"
        d = c.get("/api/runs/a/metrics")
        assert d.status_code == 200, d.text
        assert d.json()["run"]["status"] == "error" and d.json()["curves"]["epoch"] == [1.0, 2.0]
