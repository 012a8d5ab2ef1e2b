"""Fuzzing the dataset readers: valid IDX files and CIFAR batches in their genuine formats
(see ``data_writers.py``), then truncated, with header or body bytes flipped, or with
bytes added. A reader may return data or raise :class:`ConvscopeError` with one line;
any other exception is a bug."""

from __future__ import annotations

import functools
import gzip
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from convscope.data import read_idx
from convscope.data.cifar import load_cifar10_archive
from convscope.errors import ConvscopeError

from data_writers import CIFAR_BATCHES, CIFAR_CLASSES, cifar_archive, cifar_batch, cifar_members, py2_pickle

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("format-fuzz")


def _damage(data: st.DataObject, blob: bytes, header: int) -> bytes:
    """One to three of: cut, flip a byte (the header twice as often), insert bytes."""
    blob = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        kind = data.draw(st.sampled_from(["cut", "flip header", "flip header", "flip", "insert"]), label="kind")
        if kind == "cut":
            del blob[data.draw(st.integers(0, len(blob)), label="cut at") :]
        elif blob and kind.startswith("flip"):
            end = min(header, len(blob)) if kind == "flip header" else len(blob)
            at = data.draw(st.integers(0, max(end - 1, 0)), label="at")
            blob[at] = data.draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, blob[at] ^ 0x01]), label="byte")
        else:
            at = data.draw(st.integers(0, len(blob)), label="insert at")
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=8), label="inserted")
    return bytes(blob)


def _one_line_or_data(read, *args):
    try:
        result = read(*args)
    except ConvscopeError as exc:
        assert str(exc) and "\n" not in str(exc), str(exc)
        event("refused")
        return None
    event("accepted")
    return result


@FUZZ
@given(data=st.data())
def test_damaged_idx_files_raise_only_convscope_errors(folder, data):
    code = data.draw(st.sampled_from(sorted(IDX_DTYPES)), label="type")
    shape = data.draw(st.lists(st.integers(0, 6), min_size=1, max_size=3), label="shape")
    values = np.arange(int(np.prod(shape)), dtype=np.int64) % 100
    raw = (
        struct.pack(">BBBB", 0, 0, code, len(shape))
        + struct.pack(f">{len(shape)}I", *shape)
        + values.astype(IDX_DTYPES[code]).tobytes()
    )
    compress = data.draw(st.booleans(), label="gzip")
    damaged = _damage(data, raw, 4 + 4 * len(shape))
    blob = gzip.compress(damaged, mtime=0) if compress else damaged
    if compress and data.draw(st.booleans(), label="damage the gzip too"):
        blob = _damage(data, blob, 10)
    (folder / "f.idx").write_bytes(blob)
    array = _one_line_or_data(read_idx, folder / "f.idx")
    if array is not None and damaged == raw:
        assert array.tolist() == values.reshape(shape).tolist()


@functools.cache
def _genuine_members() -> dict[str, bytes]:  # not a fixture: hypothesis would print all its bytes
    rng = np.random.default_rng(7)
    return cifar_members({name: cifar_batch(rng, 2, f"batch {name}") for name in CIFAR_BATCHES})


@FUZZ
@given(data=st.data())
def test_damaged_cifar_batches_raise_only_convscope_errors(folder, data):
    members = dict(_genuine_members())
    name = data.draw(st.sampled_from(sorted(members)), label="member")
    if data.draw(st.integers(0, 4), label="odd values?") == 0:  # a well-formed pickle of the wrong things
        value = data.draw(
            st.sampled_from(
                [
                    [],
                    7,
                    None,
                    {"data": 3},
                    {"labels": [1], "data": []},
                    {"label_names": [1, 2]},
                    {"data": np.zeros((1, 3072), np.int16), "labels": [0]},
                ]
            ),
            label="value",
        )
        members[name] = py2_pickle(value)
    else:
        members[name] = _damage(data, members[name], 40)
    archive = folder / "cifar-10-python.tar.gz"
    archive.write_bytes(cifar_archive(members))
    if data.draw(st.integers(0, 3), label="damage the archive?") == 0:
        archive.write_bytes(_damage(data, archive.read_bytes(), 10))
    result = _one_line_or_data(load_cifar10_archive, archive, "cifar10", CIFAR_CLASSES)
    if result is not None:
        train, test = result
        assert train.images.shape[1:] == (3, 32, 32) and len(test.labels) == len(test.images)
