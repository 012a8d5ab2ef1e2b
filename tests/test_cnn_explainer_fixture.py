"""The CNN Explainer fixture a user's clone fetches: checksums, cache, refusal of other bytes."""

from __future__ import annotations

import shutil

import pytest

import cnn_explainer
from live_server import folder_site


@pytest.fixture()
def published_site(tmp_path):
    """CNN Explainer's site layout (assets/data, assets/img) on 127.0.0.1, from ../shared's copy."""
    if not (cnn_explainer.SHARED / "model.json").is_file():
        pytest.skip("the stand-in site is built from ../shared's copy of the published files")
    root = tmp_path / "site"
    for name, (remote, _) in cnn_explainer.FILES.items():
        (root / remote).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(cnn_explainer.SHARED / name, root / remote)
    with folder_site(root) as url:
        yield root, url + "/"


def test_fetch_downloads_verifies_and_caches(published_site, tmp_path):
    root, base = published_site
    dest = tmp_path / "cache"
    got = cnn_explainer.fetch(dest, base)
    for name in cnn_explainer.FILES:
        assert (got / name).read_bytes() == (cnn_explainer.SHARED / name).read_bytes(), name
    shutil.rmtree(root)  # the site is gone: the cached, verified copy is enough
    assert cnn_explainer.fetch(dest, base) == dest


def test_fetch_refuses_bytes_that_are_not_the_published_ones(published_site, tmp_path):
    from convscope.errors import ConvscopeError

    root, base = published_site
    (root / "data" / "group1-shard1of1.bin").write_bytes(b"\0" * 79680)
    dest = tmp_path / "cache"
    with pytest.raises(ConvscopeError, match="not the published file"):
        cnn_explainer.fetch(dest, base)
    assert not (dest / "group1-shard1of1.bin").exists()  # never kept


def test_unreachable_site_is_unavailable_not_an_error(tmp_path):
    with pytest.raises(cnn_explainer.Unavailable, match="could not fetch"):
        cnn_explainer.fetch(tmp_path / "cache", "http://127.0.0.1:9/")


def test_class_names_are_the_published_order(cnn_explainer_reference):
    assert cnn_explainer.CLASSES == cnn_explainer_reference["classes"]
