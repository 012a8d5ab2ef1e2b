"""MNIST / Fashion-MNIST from genuine gzip IDX files served on 127.0.0.1, through the public API."""

from __future__ import annotations

import gzip
import struct
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from convscope.data import (
    SOURCES,
    ChecksumMismatch,
    DatasetUnavailable,
    RemoteFile,
    cache_dir,
    data_root,
    fetch,
    load_splits,
    read_idx,
)
from convscope.errors import ConvscopeError

from data_writers import IDX_NAMES, idx_bytes, md5
from fault_server import FaultServer, Route


def _check_official_layout(splits, arrays) -> None:
    """test == the official test file; train + val == the official train file, disjoint."""
    assert torch.equal(splits.test.images[:, 0], torch.from_numpy(arrays["test_images"]))
    assert torch.equal(splits.test.labels, torch.from_numpy(arrays["test_labels"].astype(np.int64)))
    train_images, train_labels = arrays["train_images"], arrays["train_labels"].astype(np.int64)
    seen = torch.cat([splits.train.indices, splits.val.indices])
    assert sorted(seen.tolist()) == list(range(len(train_images)))
    for part in (splits.train, splits.val):
        assert torch.equal(part.images[:, 0], torch.from_numpy(train_images[part.indices.numpy()]))
        assert torch.equal(part.labels, torch.from_numpy(train_labels[part.indices.numpy()]))


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_download_parse_and_split(served, tmp_path, dataset):
    arrays = served.arrays[dataset]
    before = len(served.requests)
    splits = load_splits(served.sources[dataset], seed=3, val_fraction=0.2, root=tmp_path, progress=False)
    assert len(served.requests) - before == 4  # the four IDX files, once each
    _check_official_layout(splits, arrays)
    assert len(splits.val) == round(0.2 * len(arrays["train_images"]))
    assert splits.train.classes == list(SOURCES[dataset].classes)
    assert "official test set" in splits.description
    for name in IDX_NAMES.values():  # cached byte-for-byte, and nothing else left behind
        assert (tmp_path / dataset / name).read_bytes() == (served.root / dataset / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / dataset).iterdir()) == sorted(IDX_NAMES.values())

    # second time: from the cache, no request; also with downloads turned off
    before = len(served.requests)
    again = load_splits(served.sources[dataset], seed=3, val_fraction=0.2, root=tmp_path, download=False)
    assert len(served.requests) == before
    assert torch.equal(again.train.indices, splits.train.indices)
    assert torch.equal(again.val.images, splits.val.images)


def test_splits_depend_only_on_seed(served, tmp_path):
    source = served.sources["mnist"]
    a = load_splits(source, seed=0, root=tmp_path, progress=False)
    b = load_splits(source, seed=0, root=tmp_path)
    c = load_splits(source, seed=1, root=tmp_path)
    assert torch.equal(a.val.indices, b.val.indices) and torch.equal(a.train.indices, b.train.indices)
    assert not torch.equal(a.val.indices, c.val.indices)
    assert not set(a.val.indices.tolist()) & set(a.train.indices.tolist())


def test_mirror_argument_and_env_var(served, tmp_path, monkeypatch):
    # the official table with only the test files' checksums: mirrors come from the argument...
    source = replace(served.sources["mnist"], mirrors=("https://example.invalid/never-used/",))
    splits = load_splits(source, root=tmp_path / "a", mirrors=served.template, progress=False)
    _check_official_layout(splits, served.arrays["mnist"])
    # ...or from $CONVSCOPE_DATA_URL, with $CONVSCOPE_CACHE as the default root
    monkeypatch.setenv("CONVSCOPE_DATA_URL", "http://127.0.0.1:9/unused, " + served.template)
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache" and data_root() == tmp_path / "cache" / "datasets"
    splits = load_splits(source, progress=False)  # first mirror refuses, the second serves
    _check_official_layout(splits, served.arrays["mnist"])
    assert (tmp_path / "cache" / "datasets" / "mnist" / IDX_NAMES["train_images"]).is_file()


def test_bad_checksum_is_an_error_and_caches_nothing(served, tmp_path):
    wrong = tuple(replace(f, md5="0" * 32) if f.role == "train_images" else f for f in served.sources["mnist"].files)
    source = replace(served.sources["mnist"], files=wrong)
    with pytest.raises(ChecksumMismatch, match=r"checksum mismatch for train-images-idx3-ubyte\.gz.*md5"):
        load_splits(source, root=tmp_path, progress=False)  # mnist has an offline fallback: still an error
    folder = tmp_path / "mnist"
    assert not folder.exists() or list(folder.iterdir()) == []  # no file, no temporary left


def test_damaged_cached_file_is_reported(served, tmp_path):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for name in IDX_NAMES.values():
        (folder / name).write_bytes((served.root / "fashion-mnist" / name).read_bytes())
    (folder / IDX_NAMES["test_labels"]).write_bytes(b"\x1f\x8b damaged")
    with pytest.raises(ChecksumMismatch, match="in the cache has the wrong checksum.*delete it"):
        load_splits(served.sources["fashion-mnist"], root=tmp_path, download=False)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "cifar10"])
def test_offline_without_cache_says_where_to_put_files(tmp_path, closed_port_url, dataset):
    with pytest.raises(DatasetUnavailable) as info:
        load_splits(dataset, root=tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / dataset) in message
    assert all(f.filename in message for f in SOURCES[dataset].files)
    with pytest.raises(DatasetUnavailable, match="download failed.*127.0.0.1"):
        load_splits(dataset, root=tmp_path, mirrors=closed_port_url, progress=False)
    assert not (tmp_path / dataset).exists() or list((tmp_path / dataset).iterdir()) == []


def test_official_table_keeps_the_published_checksums():
    md5s = {s: [f.md5 for f in SOURCES[s].files] for s in SOURCES}
    assert md5s["mnist"][0] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert md5s["fashion-mnist"][0] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert md5s["cifar10"] == ["c58f30108f718f92721af3b95e74349a"]


def test_read_idx_raw_gzip_and_wider_types(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.gz").write_bytes(idx_bytes(images))
    (tmp_path / "a.raw").write_bytes(gzip.decompress(idx_bytes(images)))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), images)
    assert np.array_equal(read_idx(tmp_path / "a.raw"), images)
    ints = np.array([1, -2, 70000], dtype=">i4")  # type 0x0C, big-endian int32
    (tmp_path / "b").write_bytes(struct.pack(">BBBBI", 0, 0, 0x0C, 1, 3) + ints.tobytes())
    assert read_idx(tmp_path / "b").tolist() == [1, -2, 70000]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x00\x00\x08\x03" + struct.pack(">3I", 2, 28, 28) + bytes(100), "truncated"),
        (b"PK\x03\x04 not idx", "not an IDX file"),
        (b"\x1f\x8b\x08\x00garbage", "damaged gzip"),
    ],
)
def test_read_idx_rejects_bad_files(tmp_path, data, message):
    (tmp_path / "bad").write_bytes(data)
    with pytest.raises(ConvscopeError, match=message):
        read_idx(tmp_path / "bad")


def test_mismatched_counts_are_an_error(served, tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    arrays = dict(served.arrays["mnist"], test_labels=served.arrays["mnist"]["test_labels"][:-1])
    files = []
    for role, name in IDX_NAMES.items():
        data = idx_bytes(arrays[role])
        (folder / name).write_bytes(data)
        files.append(RemoteFile(role, name, md5=md5(data)))
    with pytest.raises(ConvscopeError, match="10 images but t10k-labels-idx1-ubyte.gz has 9 labels"):
        load_splits(replace(SOURCES["mnist"], files=tuple(files)), root=tmp_path, download=False)


# -- bounded downloads, sizes, symlinks, https ----------------------------------------
def _with_sizes(source, served_root):
    """``source`` with each file's real size, as the official table gives it."""
    files = tuple(replace(f, size=(served_root / source.name / f.filename).stat().st_size) for f in source.files)
    return replace(source, files=files)


def _faulty_mirror(source, route: Route) -> dict[str, Route]:
    return {f"/bad/{f.filename}": route for f in source.files}


@pytest.mark.parametrize("announced", [None, 300 << 20])
def test_a_mirror_streaming_too_much_is_cut_off_and_the_next_is_used(served, tmp_path, announced):
    source = _with_sizes(served.sources["mnist"], served.root)
    with FaultServer(_faulty_mirror(source, Route(64 << 20, length=announced))) as bad:
        paths = fetch(source, root=tmp_path, mirrors=[bad.url + "/bad/", served.template], progress=False)
    assert all(sent < 16 << 20 for sent in bad.sent.values()) and len(bad.sent) == 4  # stopped at the size
    for f in source.files:
        assert paths[f.role].read_bytes() == (served.root / "mnist" / f.filename).read_bytes()
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(IDX_NAMES.values())


def test_a_trickling_mirror_hits_the_deadline(served, tmp_path):
    source = _with_sizes(served.sources["mnist"], served.root)
    trickle = Route(0, body=b"\x1f\x8b" + bytes(100_000), chunk=8, delay=0.05)  # would take 10 minutes
    with FaultServer(_faulty_mirror(source, trickle)) as slow:
        started = time.monotonic()
        with pytest.raises(DatasetUnavailable, match=r"download failed \(.*took longer than 0\.5 s"):
            fetch(source, root=tmp_path, mirrors=slow.url + "/bad/", progress=False, deadline=0.5)
        assert time.monotonic() - started < 3.0  # one file tried, then the source is unavailable
    assert not (tmp_path / "mnist").exists() or list((tmp_path / "mnist").iterdir()) == []


def test_cached_file_of_the_wrong_size_is_refused_before_hashing(served, tmp_path):
    source = _with_sizes(served.sources["mnist"], served.root)
    fetch(source, root=tmp_path, progress=False)
    with open(tmp_path / "mnist" / IDX_NAMES["train_labels"], "ab") as f:
        f.write(b"x")
    with pytest.raises(ChecksumMismatch, match=r"train-labels-idx1-ubyte\.gz in the cache has \d+ bytes, expected"):
        fetch(source, root=tmp_path, download=False)


def test_a_cached_file_symlinked_out_of_its_folder_is_refused(served, tmp_path):
    folder = tmp_path / "cache" / "mnist"
    folder.mkdir(parents=True)
    for name in IDX_NAMES.values():
        (folder / name).write_bytes((served.root / "mnist" / name).read_bytes())
    elsewhere = tmp_path / "elsewhere.gz"  # right checksum, but outside the dataset folder
    elsewhere.write_bytes((folder / IDX_NAMES["test_images"]).read_bytes())
    (folder / IDX_NAMES["test_images"]).unlink()
    (folder / IDX_NAMES["test_images"]).symlink_to(elsewhere)
    with pytest.raises(ConvscopeError, match=r"t10k-images-idx3-ubyte\.gz.*leads outside its folder"):
        load_splits(served.sources["mnist"], root=tmp_path / "cache", download=False)


def test_official_table_is_https_with_published_sizes():
    assert all(m.startswith("https://") for s in SOURCES.values() for m in s.mirrors)
    sizes = {s: [f.size for f in SOURCES[s].files] for s in SOURCES}
    assert sizes == {
        "mnist": [9912422, 28881, 1648877, 4542],
        "fashion-mnist": [26421880, 29515, 4422102, 5148],
        "cifar10": [170498071],
    }


def test_idx_header_sizes_are_checked_before_anything_is_allocated(tmp_path):
    wraps = struct.pack(">BBBB4I", 0, 0, 0x08, 4, 65536, 65536, 65536, 65536)  # 2**64 elements: 0 in int64
    (tmp_path / "wraps").write_bytes(wraps)
    with pytest.raises(ConvscopeError, match=r"declares shape \(65536, 65536, 65536, 65536\).*more than"):
        read_idx(tmp_path / "wraps")
    bomb = struct.pack(">BBBB3I", 0, 0, 0x08, 3, 3, 32768, 32768) + bytes(1 << 20)  # 3 GiB declared
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(bomb))
    with pytest.raises(ConvscopeError, match=r"\(3221225472 bytes\), more than the 2147483648"):
        read_idx(tmp_path / "bomb.gz")
    (tmp_path / "long").write_bytes(struct.pack(">BBBBI", 0, 0, 0x08, 1, 3) + bytes(4))
    with pytest.raises(ConvscopeError, match="holds 4; it is truncated or damaged"):
        read_idx(tmp_path / "long")
    (tmp_path / "long.gz").write_bytes(gzip.compress(struct.pack(">BBBBI", 0, 0, 0x08, 1, 3) + bytes(4)))
    with pytest.raises(ConvscopeError, match="holds more; it is truncated or damaged"):
        read_idx(tmp_path / "long.gz")
