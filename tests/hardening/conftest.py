"""Fixtures for the hardening tests: a small two-model explorer (1-channel default, RGB Tiny VGG)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

SPECS = ["default", "tiny-vgg"]


def make_registry(**kwargs):
    from convscope.server import Registry

    return Registry(SPECS, **kwargs)


@pytest.fixture(scope="module")
def registry():
    return make_registry()


@pytest.fixture(scope="module")
def client(registry):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    with TestClient(create_app(registry=registry), raise_server_exceptions=False) as c:
        yield c


def encode(image: Image.Image, fmt: str, **save_kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def gradient_rgb(h: int = 40, w: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth RGB test picture with some noise (uint8 H x W x 3)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), (xx + yy) * 255 / (h + w - 2)], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="session", autouse=True)
def one_intra_op_thread():
    """Two shared cores: more torch threads only fight each other (and the other test runs)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
