"""A checkpoint's recorded dataset is data: a built-in name is used, a folder path is never
opened on the file's word (it could name any folder of this machine)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.cli.main import main
from convscope.models import TinyVGG, save_checkpoint
from convscope.models.preprocessing import Preprocessing


def checkpoint(tmp_path: Path, dataset: dict) -> Path:
    net = TinyVGG(in_channels=1, num_classes=2, input_size=(28, 28))
    meta = {
        "architecture": {"zoo": "tiny-vgg", "kwargs": {"in_channels": 1, "num_classes": 2, "input_size": [28, 28]}},
        "classes": ["a", "b"],
        "dataset": dataset,
        "preprocessing": Preprocessing(size=(28, 28), channels=1).to_dict(),
    }
    return save_checkpoint(tmp_path / "stranger.pt", net.state_dict(), meta)


@pytest.fixture()
def private_folder(tmp_path) -> Path:
    """A folder of someone's own images, in the layout folder: datasets read."""
    root = tmp_path / "private"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(root / cls / f"{i}.png")
    return root


def test_evaluate_does_not_open_a_folder_named_by_the_file(tmp_path, private_folder, capsys):
    spec = checkpoint(tmp_path, {"name": f"folder:{private_folder}", "split_seed": 0})
    assert main(["evaluate", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "opens only built-in datasets" in err and "--data" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "confusion.json").exists()
    # the user naming the same folder is their choice, and works
    assert main(["evaluate", str(spec), "--data", f"folder:{private_folder}", "--out", str(tmp_path / "out")]) == 0


def test_the_dataset_view_does_not_open_it_either(tmp_path, private_folder):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    spec = checkpoint(tmp_path, {"name": f"folder:{private_folder}"})
    with TestClient(create_app([str(spec)])) as c:
        r = c.get("/api/models/stranger/dataset")
        assert r.status_code == 400 and "opens only built-in datasets" in r.json()["detail"]
        r = c.get("/api/models/stranger/dataset/test/random")
        assert r.status_code == 400


def test_a_built_in_name_is_used(tmp_path):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    spec = checkpoint(tmp_path, {"name": "digits", "split_seed": 3})
    with TestClient(create_app([str(spec)])) as c:
        r = c.get("/api/models/stranger/dataset").json()
        assert (r["dataset"], r["split_seed"]) == ("digits", 3)
