"""Helpers for the hardening tests (a plain module: conftest modules are not importable by name)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from live_server import wait_for_job

SPECS = ["default", "tiny-vgg"]


def make_registry(**kwargs):
    from convscope.server import Registry

    return Registry(SPECS, **kwargs)


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


def finish(client, r, seconds: float = 120) -> dict:
    """The job a POST started (``r``, which must be a 200), polled until it ends."""
    assert r.status_code == 200, r.text
    return wait_for_job(client, r.json(), seconds)
