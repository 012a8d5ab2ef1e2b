"""Block descriptors (convscope.data.items): a worker reads back exactly the rows the caller holds.

In this process, no Ray: every loader's dataset (digits, the offline MNIST subset, official IDX
and CIFAR-10 files from the cache, a ``folder:``) survives split, subset and conversion to a
model's input, and :func:`read` of a block's descriptor gives the same pixels, labels and
positions. A descriptor is small (paths or positions, never pixels), and one that names a
file outside the folder, or whose files changed, is refused.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.data import SOURCES, load_splits
from convscope.data.base import ImageDataset
from convscope.data.items import describe, read
from convscope.errors import ConvscopeError
from convscope.models.preprocessing import Preprocessing


def same_rows(block: ImageDataset, ds: ImageDataset, start: int, stop: int) -> None:
    assert torch.equal(block.images, ds.images[start:stop])
    assert torch.equal(block.labels, ds.labels[start:stop])
    assert torch.equal(block.indices, ds.indices[start:stop])
    assert (block.name, block.classes) == (ds.name, ds.classes)


def check_blocks(ds: ImageDataset, per_item_limit: int) -> None:
    """Blocks of ``ds`` and of ``ds`` conformed to a 3-channel 32x32 input read back exactly, small."""
    for data in (ds, ds.conform(Preprocessing(size=(32, 32), channels=3))):
        for start, stop in ((0, 7), (3, min(len(data), 40))):
            desc = describe(data, start, stop)
            assert desc is not None
            assert len(pickle.dumps(desc)) < 1000 + per_item_limit * (stop - start)
            same_rows(read(desc, {}), data, start, stop)


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(30):
        (tmp_path / f"c{i % 3}" / "deep").mkdir(parents=True, exist_ok=True)
        size = (int(rng.integers(10, 30)), int(rng.integers(10, 30)), 3)
        Image.fromarray(rng.integers(0, 255, size, dtype=np.uint8)).save(tmp_path / f"c{i % 3}" / "deep" / f"{i}.png")
    (tmp_path / "c1" / "broken.png").write_bytes(b"not a png")  # skipped by the loader: positions shift
    return tmp_path


@pytest.mark.filterwarnings("ignore:skipped 1 unreadable")
def test_folder_blocks_are_paths_read_back_exactly(folder):
    pre = Preprocessing(size=(24, 20), channels=3)
    splits = load_splits(f"folder:{folder}", preprocessing=pre, progress=False)
    for split in ("train", "test"):
        ds = splits[split]
        desc = describe(ds, 0, 5)
        assert all(f.startswith("c") and f.endswith(".png") for f in desc["files"])
        check_blocks(ds, per_item_limit=40)  # a relative path and a position, not 24*20*3 bytes


@pytest.mark.parametrize("name", ["digits", "mnist"])
def test_bundled_sets_are_positions_read_back_exactly(name):
    splits = load_splits(name, download=False, progress=False)
    for split in ("train", "val", "test"):
        check_blocks(splits[split], per_item_limit=12)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_official_files_are_positions_read_back_from_the_cache(served, tmp_path, monkeypatch, name):
    # the served stand-ins of the official files, registered as the built-in source
    monkeypatch.setitem(SOURCES, name, served.sources[name])
    splits = load_splits(name, root=tmp_path, mirrors=served.template, progress=False)
    assert splits.train.origin.kind == "official" and splits.test.origin.part == "test"
    for split in ("train", "val", "test"):
        check_blocks(splits[split], per_item_limit=12)


def test_tensors_of_ones_own_have_no_descriptor():
    ds = ImageDataset("mine", ["a", "b"], torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    assert describe(ds, 0, 4) is None


@pytest.mark.filterwarnings("ignore:skipped 1 unreadable")
@pytest.mark.parametrize(
    "name",
    ["../outside/x.png", "/etc/x.png", "c0/../../x.png", "c0/.hidden/x.png", "c0/x.txt", "nowhere/x.png", "x.png"],
)
def test_a_path_outside_the_class_folders_is_refused(folder, name):
    ds = load_splits(f"folder:{folder}", progress=False)["train"]
    desc = describe(ds, 0, 2)
    desc["files"] = [desc["files"][0], name]
    with pytest.raises(ConvscopeError, match="refusing image path"):
        read(desc)


@pytest.mark.filterwarnings("ignore:skipped 1 unreadable")
def test_a_changed_file_is_an_error_not_another_result(folder):
    ds = load_splits(f"folder:{folder}", progress=False)["train"]
    desc = describe(ds, 0, 3)
    target = folder / desc["files"][1]
    Image.fromarray(np.full((12, 12, 3), 7, dtype=np.uint8)).save(target)
    with pytest.raises(ConvscopeError, match="differ from the ones the caller holds"):
        read(desc)
