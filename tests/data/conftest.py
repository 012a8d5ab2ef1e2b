"""Fixtures for the dataset tests: small files in the genuine formats (see
``data_writers.py``) served by ``http.server`` on 127.0.0.1 in a thread."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from convscope.data import SOURCES, DatasetSource, RemoteFile

from data_writers import CIFAR_BATCHES, IDX_NAMES, cifar_archive, cifar_batch, cifar_members, idx_bytes
from live_server import folder_site, free_port


@dataclass
class Served:
    """Datasets written to ``root/<dataset>/`` and served at ``url/<dataset>/``."""

    root: Path
    url: str
    requests: list[str]
    arrays: dict[str, dict[str, np.ndarray]]  # dataset -> role -> array
    cifar_batches: dict[str, dict]
    sources: dict[str, DatasetSource]  # official sources with these files' checksums

    @property
    def template(self) -> str:
        return self.url + "/{dataset}/"


def _files_with_checksums(folder: Path, names: dict[str, str], algo: str = "md5") -> tuple[RemoteFile, ...]:
    files = []
    for role, name in names.items():
        digest = hashlib.new(algo, (folder / name).read_bytes()).hexdigest()
        files.append(RemoteFile(role, name, **{algo: digest}))
    return tuple(files)


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Served:
    """Small MNIST, Fashion-MNIST and CIFAR-10 in their genuine formats on 127.0.0.1."""
    root = tmp_path_factory.mktemp("served")
    rng = np.random.default_rng(1234)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for dataset, n_train, n_test in (("mnist", 30, 10), ("fashion-mnist", 20, 8)):
        folder = root / dataset
        folder.mkdir()
        arrays[dataset] = {
            "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train_labels": rng.integers(0, 10, n_train).astype(np.uint8),
            "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "test_labels": rng.integers(0, 10, n_test).astype(np.uint8),
        }
        for role, array in arrays[dataset].items():
            (folder / IDX_NAMES[role]).write_bytes(idx_bytes(array))
    batches = {name: cifar_batch(rng, 5 if name == "test_batch" else 4, f"batch {name}") for name in CIFAR_BATCHES}
    (root / "cifar10").mkdir()
    (root / "cifar10" / "cifar-10-python.tar.gz").write_bytes(cifar_archive(cifar_members(batches)))

    requests: list[str] = []
    with folder_site(root, requests) as url:
        sources = {
            "mnist": replace(
                SOURCES["mnist"], files=_files_with_checksums(root / "mnist", IDX_NAMES), mirrors=(url + "/mnist/",)
            ),
            "fashion-mnist": replace(
                SOURCES["fashion-mnist"],
                mirrors=(url + "/fashion-mnist",),
                files=_files_with_checksums(root / "fashion-mnist", IDX_NAMES, "sha256"),
            ),
            "cifar10": replace(
                SOURCES["cifar10"],
                mirrors=(url + "/cifar10/",),
                files=_files_with_checksums(root / "cifar10", {"archive": "cifar-10-python.tar.gz"}),
            ),
        }
        yield Served(root, url, requests, arrays, batches, sources)


@pytest.fixture()
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: downloads fail at once, as when offline."""
    return f"http://127.0.0.1:{free_port()}/"
