"""Model and checkpoint files: a malicious pickle never runs; broken TF.js shards get a clear error.

The pickle below would create a file if it were ever unpickled. Every entry point
(Python, ``convscope serve``, ``convscope evaluate``, the explorer's lazy model
loading) must refuse it with a message and leave that file unwritten.
"""

from __future__ import annotations

import builtins
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from convscope.cli.main import main
from convscope.errors import ConvscopeError
from convscope.models import load_model


class Payload:
    """Unpickling this calls open(marker, 'w'): the file appears if the pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.fixture(params=["torch-zip", "raw-pickle"])
def evil(request, tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    obj = {"format": "convscope.checkpoint", "version": 1, "meta": "{}", "state_dict": {}, "x": Payload(marker)}
    if request.param == "torch-zip":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj))
    return path, marker


def test_the_payload_really_runs_when_trusted(evil):
    """Control: with trust (an explicit opt-in) the same file does execute, so the refusals below mean something."""
    path, marker = evil
    try:
        load_model(str(path), trust=True)
    except Exception:
        pass
    assert marker.exists()


def test_python_refuses(evil):
    path, marker = evil
    with pytest.raises(ConvscopeError, match="refused"):
        load_model(str(path))
    assert not marker.exists()


def test_serve_refuses(evil, monkeypatch, capsys):
    import uvicorn

    path, marker = evil
    started = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(app))
    assert main(["serve", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "--trust" in err and len(err.strip().splitlines()) == 1
    assert not started and not marker.exists()


def test_evaluate_refuses(evil, capsys, tmp_path):
    path, marker = evil
    assert main(["evaluate", str(path), "--offline", "--out", str(tmp_path / "eval")]) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


def test_explorer_refuses_a_lazily_loaded_model(evil):
    from fastapi.testclient import TestClient

    from convscope.server import Registry, create_app

    path, marker = evil
    reg = Registry(["default", str(path)])
    with TestClient(create_app(registry=reg), raise_server_exceptions=False) as c:
        r = c.get("/api/models/evil")
        assert r.status_code == 400 and "refused" in r.json()["detail"], r.text
        assert c.get("/api/models/evil/trace").status_code == 400
        assert c.get("/api/models/default").status_code == 200  # the other model is unaffected
    assert not marker.exists()


# -- TF.js ------------------------------------------------------------------------


def tfjs_model(folder: Path) -> Path:
    """A two-shard TF.js layers model: conv 3x3 (2 filters) -> flatten -> dense 3, on 5x5x1."""
    rng = np.random.default_rng(0)
    weights = [("c/kernel", rng.normal(size=(3, 3, 1, 2))), ("c/bias", rng.normal(size=2)),
               ("d/kernel", rng.normal(size=(18, 3))), ("d/bias", rng.normal(size=3))]
    data = b"".join(w.astype("<f4").tobytes() for _, w in weights)
    (folder / "w1.bin").write_bytes(data[:100])
    (folder / "w2.bin").write_bytes(data[100:])
    layers = [{"class_name": "Conv2D", "config": {"name": "c", "batch_input_shape": [None, 5, 5, 1], "filters": 2,
                                                  "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
                                                  "activation": "relu"}},
              {"class_name": "Flatten", "config": {"name": "f"}},
              {"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "softmax"}}]
    spec = {"format": "layers-model",
            "modelTopology": {"model_config": {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}},
            "weightsManifest": [{"paths": ["w1.bin", "w2.bin"], "weights": [
                {"name": n, "shape": list(w.shape), "dtype": "float32"} for n, w in weights]}]}
    (folder / "model.json").write_text(json.dumps(spec))
    return folder / "model.json"


def serve_error(spec: Path, monkeypatch, capsys) -> str:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("served a broken model"))
    assert main(["serve", "--model", str(spec)]) == 2
    return capsys.readouterr().err


def test_tfjs_control_loads(tmp_path):
    assert load_model(str(tfjs_model(tmp_path))).input_shape == (1, 5, 5)


def test_tfjs_missing_shard(tmp_path, monkeypatch, capsys):
    spec = tfjs_model(tmp_path)
    (tmp_path / "w2.bin").unlink()
    assert "w2.bin" in serve_error(spec, monkeypatch, capsys)


@pytest.mark.parametrize("change", ["short", "long", "wrong-shape"])
def test_tfjs_mismatched_shards(tmp_path, monkeypatch, capsys, change):
    """Shards of the wrong size or weights of the wrong shape. (Same-size shards swapped cannot be
    detected: the TF.js manifest records no per-shard sizes or checksums.)"""
    spec = tfjs_model(tmp_path)
    w2 = tmp_path / "w2.bin"
    if change == "short":
        w2.write_bytes(w2.read_bytes()[:-8])
    elif change == "long":
        w2.write_bytes(w2.read_bytes() + b"\0" * 16)
    else:
        js = json.loads(spec.read_text())
        js["weightsManifest"][0]["weights"][2]["shape"] = [17, 3]  # the dense kernel no longer fits the layer
        js["weightsManifest"][0]["weights"].append({"name": "pad", "shape": [3], "dtype": "float32"})
        spec.write_text(json.dumps(js))
    err = serve_error(spec, monkeypatch, capsys)
    assert err.startswith("convscope") and len(err.strip().splitlines()) == 1, err
    if change in ("short", "long"):
        assert "w1.bin" in err and "w2.bin" in err
