"""CIFAR-10 from a genuine-format tar.gz of pickled batches, and the restricted unpickler."""

from __future__ import annotations

import codecs
import os
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from convscope.data import SOURCES, RemoteFile, load_splits, safe_unpickle
from convscope.errors import ConvscopeError

from data_writers import CIFAR_CLASSES, cifar_archive, cifar_members, md5, py2_pickle

TRAIN = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")


def test_fixture_pickles_are_in_the_original_format(served):
    blob = py2_pickle(served.cifar_batches["data_batch_1"])
    assert blob.startswith(b"\x80\x02}")  # protocol 2, a dict
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in blob and b"cnumpy\ndtype\n" in blob
    assert b"U\x04data" in blob  # Python 2 str keys (SHORT_BINSTRING)
    # and the standard library reads it the way the CIFAR page says (encoding="latin1")
    plain = pickle.loads(blob, encoding="latin1")
    assert np.array_equal(plain["data"], served.cifar_batches["data_batch_1"]["data"])


def test_download_and_parse(served, tmp_path):
    splits = load_splits(served.sources["cifar10"], seed=5, val_fraction=0.25, root=tmp_path, progress=False)
    batches = served.cifar_batches
    train_x = np.concatenate([batches[b]["data"] for b in TRAIN]).reshape(-1, 3, 32, 32)
    train_y = np.concatenate([batches[b]["labels"] for b in TRAIN])
    assert splits.train.classes == CIFAR_CLASSES
    assert torch.equal(splits.test.images, torch.from_numpy(batches["test_batch"]["data"].reshape(-1, 3, 32, 32)))
    assert splits.test.labels.tolist() == batches["test_batch"]["labels"]
    assert sorted(torch.cat([splits.train.indices, splits.val.indices]).tolist()) == list(range(len(train_y)))
    assert len(splits.val) == 5
    for part in (splits.train, splits.val):
        assert torch.equal(part.images, torch.from_numpy(train_x[part.indices.numpy()]))
        assert part.labels.tolist() == train_y[part.indices.numpy()].tolist()
    # channel planes: the first 1024 values of a row are the red 32x32 plane, row-major
    row = batches["test_batch"]["data"][0]
    assert torch.equal(splits.test.images[0, 0], torch.from_numpy(row[:1024].reshape(32, 32)))
    assert torch.equal(splits.test.images[0, 2, 31], torch.from_numpy(row[-32:]))


def _source_for(archive: bytes, tmp_path):
    folder = tmp_path / "cifar10"
    folder.mkdir(exist_ok=True)
    (folder / "cifar-10-python.tar.gz").write_bytes(archive)
    return replace(SOURCES["cifar10"], files=(RemoteFile("archive", "cifar-10-python.tar.gz", md5=md5(archive)),))


class _WritesAFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('pwned')",))


def test_malicious_batch_is_refused_and_runs_nothing(served, tmp_path):
    target = tmp_path / "pwned.txt"
    evil = pickle.dumps({"data": _WritesAFile(str(target)), "labels": [0]}, protocol=2)
    # the payload is real: a plain pickle.loads does write a file
    control = tmp_path / "control.txt"
    pickle.loads(pickle.dumps(_WritesAFile(str(control)), protocol=2))
    assert control.read_text() == "pwned"

    members = cifar_members(served.cifar_batches)
    members["data_batch_3"] = evil
    source = _source_for(cifar_archive(members), tmp_path)
    with pytest.raises(ConvscopeError, match=r"data_batch_3: refusing to load (builtins|__builtin__)\.exec"):
        load_splits(source, root=tmp_path, download=False)
    assert not target.exists()


@pytest.mark.parametrize(
    "callable_, args",
    [
        (os.system, ("echo pwned",)),
        (np.save, ("x.npy", np.zeros(1))),
        (codecs.encode, ("payload", "zlib_codec")),  # _codecs.encode is allowed for latin-1 text only
        (getattr, (np.ndarray, "tofile")),  # an allowed class does not open its attributes
    ],
)
def test_restricted_unpickler_refuses_other_globals(callable_, args):
    class Payload:
        def __reduce__(self):
            return (callable_, args)

    with pytest.raises(ConvscopeError, match="refusing"):
        safe_unpickle(pickle.dumps(Payload(), protocol=2), "payload")


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_restricted_unpickler_reads_python3_pickles(served, protocol):
    batch = dict(served.cifar_batches["data_batch_2"], filenames=[b"a.png", b"b.png"], extra={1, 2})
    loaded = safe_unpickle(pickle.dumps(batch, protocol=protocol), "batch")
    assert np.array_equal(loaded["data"], batch["data"]) and loaded["data"].dtype == np.uint8
    assert loaded["labels"] == batch["labels"] and loaded["extra"] == {1, 2}
    assert loaded["filenames"] == [b"a.png", b"b.png"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.pop("test_batch"), "has no test_batch"),
        (
            lambda m: m.update(data_batch_1=py2_pickle({"data": np.zeros((2, 10), np.uint8), "labels": [0, 1]})),
            r"'data' must be uint8 \(N, 3072\)",
        ),
        (
            lambda m: m.update(data_batch_2=py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]})),
            r"labels must lie in 0\.\.9",
        ),
        (lambda m: m.update(data_batch_4=b"\x80\x02}q\x00(U\x04data"), "not a readable pickle"),
    ],
)
def test_damaged_archives_give_clear_errors(served, tmp_path, change, message):
    members = cifar_members(served.cifar_batches)
    change(members)
    with pytest.raises(ConvscopeError, match=message):
        load_splits(_source_for(cifar_archive(members), tmp_path), root=tmp_path, download=False)


def test_not_a_tar_archive(tmp_path):
    with pytest.raises(ConvscopeError, match="not a readable tar archive"):
        load_splits(_source_for(b"\x1f\x8bnot really", tmp_path), root=tmp_path, download=False)


class _Calls:
    """Pickles as ``callable_(*args)`` (a global the restricted unpickler allows)."""

    def __init__(self, callable_, *args) -> None:
        self.reduced = (callable_, args)

    def __reduce__(self):
        return self.reduced


def test_a_pickle_cannot_allocate_more_than_it_holds(served, tmp_path):
    from numpy._core.multiarray import _reconstruct

    members = cifar_members(served.cifar_batches)
    # bytearray(n) would zero n bytes: 256 MiB from a 40-byte pickle
    members["data_batch_1"] = pickle.dumps({"data": _Calls(bytearray, 1 << 28), "labels": []}, protocol=2)
    with pytest.raises(ConvscopeError, match=r"data_batch_1.*refusing bytearray\(size\)"):
        load_splits(_source_for(cifar_archive(members), tmp_path), root=tmp_path, download=False)
    # an array the pickle only declares (no pixels follow): 61 MB of uninitialised memory
    hollow = _Calls(_reconstruct, np.ndarray, (20_000, 3072), b"B")
    members["data_batch_1"] = pickle.dumps({"data": hollow, "labels": [0] * 20_000}, protocol=2)
    with pytest.raises(
        ConvscopeError, match=r"data_batch_1: 'data' declares 61440000 bytes, more than the \d+ the file"
    ):
        load_splits(_source_for(cifar_archive(members), tmp_path), root=tmp_path, download=False)


def test_archive_members_beyond_the_cap_are_not_read(served, tmp_path, monkeypatch):
    from convscope.data import cifar

    monkeypatch.setattr(cifar, "MAX_MEMBER_BYTES", 1000)  # the fixture's batches are 12 KB each
    with pytest.raises(
        ConvscopeError,
        match=r"batches\.meta declares \d+ bytes, more than the 1000|"
        r"data_batch_1 declares \d+ bytes, more than the 1000",
    ):
        load_splits(
            _source_for(cifar_archive(cifar_members(served.cifar_batches)), tmp_path), root=tmp_path, download=False
        )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda m: m.update(data_batch_5=py2_pickle({"data": np.zeros((2, 3072), np.uint8), "labels": [[0], 1]})),
            "'labels' is not a list of integers",
        ),
        (lambda m: m.update({"batches.meta": py2_pickle({"label_names": 7})}), "'label_names' must be a list"),
    ],
)
def test_odd_values_in_genuine_pickles_are_clear_errors(served, tmp_path, change, message):
    members = cifar_members(served.cifar_batches)
    change(members)
    with pytest.raises(ConvscopeError, match=message):
        load_splits(_source_for(cifar_archive(members), tmp_path), root=tmp_path, download=False)
