"""``convscope serve`` with the user's own architectures: a 28x28 one-channel factory given its
size, a factory returning a cs.Model, and a broken spec among good ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from convscope.cli.main import main

FACTORIES = """
import torch
from torch import nn
import convscope as cs


def mnist_net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 14 * 14, 10))


def wrapped():
    return cs.Model(mnist_net(), classes=[f"digit {i}" for i in range(10)],
                    preprocessing=cs.Preprocessing(size=(28, 28), channels=1), name="wrapped")


def broken():
    raise RuntimeError("this factory is broken")
"""


@pytest.fixture()
def factories(tmp_path) -> Path:
    path = tmp_path / "user_nets.py"
    path.write_text(FACTORIES)
    return path


def _client(fake_uvicorn) -> TestClient:
    app, _ = fake_uvicorn[-1]
    return TestClient(app, base_url="http://127.0.0.1:8000")


def test_a_28x28_factory_is_served_with_its_input_size_and_classes(factories, fake_uvicorn):
    assert (
        main(["serve", "--trust", "--model", f"{factories}:mnist_net", "--input-size", "1,28,28", "--classes", "10"])
        == 0
    )
    c = _client(fake_uvicorn)
    info = c.get("/api/models/mnist_net").json()
    assert info["input_shape"] == [1, 28, 28] and info["classes"] == [str(i) for i in range(10)]
    trace = c.get("/api/models/mnist_net/trace", params={"image": "sample-0"})
    assert trace.status_code == 200, trace.text


def test_without_the_size_the_failure_says_what_to_give(factories, fake_uvicorn, capsys):
    assert main(["serve", "--trust", "--model", f"{factories}:mnist_net"]) == 2
    err = capsys.readouterr().err
    assert "1x224x224" in err and "--input-size" in err and not fake_uvicorn


def test_a_factory_returning_a_convscope_model_keeps_its_preprocessing(factories, fake_uvicorn):
    assert main(["serve", "--trust", "--model", f"{factories}:wrapped"]) == 0
    info = _client(fake_uvicorn).get("/api/models/wrapped").json()
    assert info["input_shape"] == [1, 28, 28] and info["classes"][3] == "digit 3"


def test_one_broken_spec_is_listed_with_its_error_and_the_others_work(factories, fake_uvicorn, capsys):
    assert (
        main(
            ["serve", "--trust", "--model", f"{factories}:broken", "--model", "mnist-cnn", "--model", "no-such-file.pt"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "this factory is broken" in out and "no-such-file.pt" in out
    c = _client(fake_uvicorn)
    listed = c.get("/api/models").json()
    errors = {m["name"]: m["error"] for m in listed["models"]}
    assert errors["mnist-cnn"] is None and "RuntimeError: this factory is broken" in errors["broken"]
    assert "no such model file" in errors["no-such-file"]
    assert listed["default"] == "mnist-cnn"
    assert c.get("/api/models/mnist-cnn/trace", params={"image": "sample-0"}).status_code == 200
    failed = c.get("/api/models/broken")
    assert failed.status_code == 400 and "failed to load" in failed.json()["detail"]


def test_a_pickled_module_takes_the_input_size_too(tmp_path, fake_uvicorn):
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 28 * 28, 4)).eval()
    path = tmp_path / "digits.pt"
    torch.save(net, path)  # a whole pickled module: trusted only
    assert main(["serve", "--trust", "--model", str(path), "--input-size", "1,28,28", "--classes", "a,b,c,d"]) == 0
    info = _client(fake_uvicorn).get("/api/models/digits").json()
    assert info["input_shape"] == [1, 28, 28] and info["classes"] == ["a", "b", "c", "d"]
