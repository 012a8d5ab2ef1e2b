"""Loading CNN Explainer's published TF.js model from a URL, served here on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch

import convscope as cs
from convscope.errors import ConvscopeError
from convscope.models.tfjs_remote import fetch_tfjs_model, model_cache

from fault_server import FaultServer, Route
from live_server import folder_site

SHARD = "group1-shard1of1.bin"


@pytest.fixture()
def site(tmp_path, monkeypatch, cnn_explainer_dir):
    """A web folder with the model (copied to a temp dir for this test only) and a server on 127.0.0.1."""
    root = tmp_path / "site"
    (root / "tiny-vgg").mkdir(parents=True)
    for name in ("model.json", "group1-shard1of1.bin"):
        shutil.copy(cnn_explainer_dir / name, root / "tiny-vgg" / name)
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    with folder_site(root) as url:
        yield root, url


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


# -- hostile servers and caches -------------------------------------------------------
@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cached_files(cache) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if not p.is_dir()) if cache.exists() else []


def _routes(cnn_explainer_dir, shard: Route) -> dict[str, Route]:
    return {"/m/model.json": Route(0, body=(cnn_explainer_dir / "model.json").read_bytes()), f"/m/{SHARD}": shard}


@pytest.mark.parametrize(
    "announced, message",
    [(None, "sent more than the 79680 bytes allowed"), (300 << 20, "announces 314572800 bytes, more than the 79680")],
)
def test_an_oversized_shard_is_cut_off_and_nothing_is_cached(cnn_explainer_dir, cache, announced, message):
    big = Route(64 << 20, length=announced)  # the manifest declares 79,680 bytes for this group
    with FaultServer(_routes(cnn_explainer_dir, big)) as server:
        with pytest.raises(ConvscopeError, match=message):
            cs.load_model(f"{server.url}/m/model.json")
    assert server.sent[f"/m/{SHARD}"] < 16 << 20  # the client stopped reading (the rest is socket buffers)
    assert _cached_files(cache) == []


def test_a_short_shard_is_an_error_and_nothing_is_cached(cnn_explainer_dir, cache):
    short = Route(0, body=(cnn_explainer_dir / SHARD).read_bytes()[:-680])
    with FaultServer(_routes(cnn_explainer_dir, short)) as server:
        with pytest.raises(ConvscopeError, match="hold 79000 bytes but its manifest describes 79680"):
            cs.load_model(f"{server.url}/m/model.json")
    assert _cached_files(cache) == []


def test_a_trickling_shard_hits_the_deadline(cnn_explainer_dir, cache):
    trickle = Route(0, body=(cnn_explainer_dir / SHARD).read_bytes(), chunk=16, delay=0.05)  # would take 250 s
    with FaultServer(_routes(cnn_explainer_dir, trickle)) as server:
        started = time.monotonic()
        with pytest.raises(ConvscopeError, match="took longer than 1 s"):
            fetch_tfjs_model(f"{server.url}/m/model.json", progress=False, deadline=1.0)
        assert time.monotonic() - started < 3.0
    assert _cached_files(cache) == []


def test_a_symlink_planted_in_the_cache_is_refused_and_the_entry_removed(site, cnn_explainer_dir, tmp_path):
    _, base = site
    url = f"{base}/tiny-vgg/model.json"
    folder = model_cache(url)
    folder.mkdir(parents=True)
    shutil.copy(cnn_explainer_dir / "model.json", folder / "model.json")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"SECRET!!" * (79680 // 8))  # the size the manifest declares
    (folder / SHARD).symlink_to(secret)
    with pytest.raises(ConvscopeError, match="leads outside its folder"):
        cs.load_model(url)
    assert not folder.exists() and secret.read_bytes().startswith(b"SECRET")  # the link went, not its target
    model = cs.load_model(url)  # downloaded afresh from the server
    assert torch.equal(model.net.conv_1_1.bias, cs.load_model(cnn_explainer_dir / "model.json").net.conv_1_1.bias)
