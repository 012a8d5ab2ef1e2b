"""Fixtures for the compare tests: the shipped model, two real MNIST digits (a 3 and an 8
from the validation split), and a copy of the shipped checkpoint with one layer perturbed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import torch
from PIL import Image

PERTURBED = "conv_2_1"  # the layer whose weights the second checkpoint changes


@pytest.fixture(scope="session")
def model():
    from convscope import load_model

    return load_model("default")


@pytest.fixture(scope="session")
def digits():
    """(x3, x8): two real MNIST digits as the model's input batches (1, 1, 28, 28), and their uint8 pixels."""
    from convscope.data import load_splits

    val = load_splits("mnist", download=False, progress=False).val
    labels = val.labels.tolist()
    picked = [val.images[labels.index(k)] for k in (3, 8)]
    return picked


@pytest.fixture(scope="session")
def digit_batches(model, digits):
    return [model.preprocessing.normalize(d[None]) for d in digits]


@pytest.fixture(scope="session")
def digit_files(tmp_path_factory, digits) -> list[Path]:
    d = tmp_path_factory.mktemp("digits")
    paths = []
    for name, img in zip(("three.png", "eight.png"), digits):
        Image.fromarray(img[0].numpy()).save(d / name)
        paths.append(d / name)
    return paths


@pytest.fixture(scope="session")
def perturbed_layer() -> str:
    return PERTURBED


@pytest.fixture(scope="session")
def perturbed_checkpoint(tmp_path_factory) -> Path:
    """The shipped checkpoint with noise added to conv_2_1's weights (a stand-in for a fine-tuned copy)."""
    from convscope.models import load_checkpoint, save_checkpoint

    ck = load_checkpoint(Path(str(resources.files("convscope") / "assets" / "default.pt")))
    state = {k: v.clone() for k, v in ck["state_dict"].items()}
    g = torch.Generator().manual_seed(0)
    w = state[f"{PERTURBED}.weight"]
    state[f"{PERTURBED}.weight"] = w + 0.3 * w.std() * torch.randn(w.shape, generator=g)
    path = tmp_path_factory.mktemp("ckpt") / "perturbed.pt"
    save_checkpoint(path, state, ck["meta"])
    return path
