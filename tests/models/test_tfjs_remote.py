"""Loading CNN Explainer's published TF.js model from a URL, served here on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading

import pytest
import torch

import convscope as cs
from convscope.errors import ConvscopeError


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def site(tmp_path, monkeypatch, cnn_explainer_dir):
    """A web folder with the model (copied to a temp dir for this test only) and a server on 127.0.0.1."""
    root = tmp_path / "site"
    (root / "tiny-vgg").mkdir(parents=True)
    for name in ("model.json", "group1-shard1of1.bin"):
        shutil.copy(cnn_explainer_dir / name, root / "tiny-vgg" / name)
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_url_loads_the_same_model_and_then_works_from_the_cache(site, cnn_explainer_dir):
    root, base = site
    from cnn_explainer import CLASSES as classes

    (root / "tiny-vgg" / "classes.json").write_text(json.dumps(classes))
    remote = cs.load_model(f"{base}/tiny-vgg/model.json")
    local = cs.load_model(cnn_explainer_dir / "model.json")
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(remote.net(x), local.net(x))
    assert remote.classes == classes and remote.meta["source"].startswith("http://127.0.0.1")
    shutil.rmtree(root / "tiny-vgg")  # the server no longer has it: the cached copy is used
    again = cs.load_model(f"{base}/tiny-vgg/model.json")
    assert torch.equal(again.net(x), local.net(x))


def test_a_manifest_pointing_outside_its_folder_is_refused(site):
    root, base = site
    spec = json.loads((root / "tiny-vgg" / "model.json").read_text())
    spec["weightsManifest"][0]["paths"] = ["../../secret.bin"]
    (root / "tiny-vgg" / "model.json").write_text(json.dumps(spec))
    with pytest.raises(ConvscopeError, match="outside its folder"):
        cs.load_model(f"{base}/tiny-vgg/model.json")


def test_missing_url_is_a_clear_error(site):
    _, base = site
    with pytest.raises(ConvscopeError, match="HTTP 404"):
        cs.load_model(f"{base}/nothing/model.json")
