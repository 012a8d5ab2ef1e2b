"""``folder:PATH`` datasets: PNG / JPEG / BMP / corrupt files, EXIF, geometry, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.data import load_folder, load_splits
from convscope.errors import ConvscopeError
from convscope.models import Preprocessing


def _rng_image(rng, size=(64, 64), channels=3) -> np.ndarray:
    return rng.integers(0, 256, (*size, channels) if channels > 1 else size, dtype=np.uint8)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Two classes (named so that sorting matters) with lossless, lossy and broken files.

    Returns the folder and the exact pixels expected for each readable file, in the
    order convscope must list them (class by sorted name, then sorted path).
    """
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    expected: list[tuple[str, int, np.ndarray]] = []

    def save(rel: str, label: int, pixels: np.ndarray, **kwargs) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path, **kwargs)
        if path.suffix in (".jpg", ".jpeg"):  # lossy: what Pillow decodes from the file
            pixels = np.asarray(Image.open(path).convert("RGB"))
        elif pixels.ndim == 2:  # grey -> RGB repeats the level
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        expected.append((rel, label, pixels))

    # class 0: "ants" ; class 1: "bees" (folder created second so that order must come from sorting)
    save("bees/b1.png", 1, _rng_image(rng))
    save("bees/sub/b2.bmp", 1, _rng_image(rng))
    save("bees/b0.jpg", 1, _rng_image(rng), quality=90)
    save("ants/a0.png", 0, _rng_image(rng, channels=1))
    oriented = _rng_image(rng)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(oriented).save(root / "ants/a1_exif.png", exif=exif)
    expected.append(("ants/a1_exif.png", 0, np.rot90(oriented, k=-1)))
    (root / "ants/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
    (root / "bees/empty.jpg").write_bytes(b"")
    valid = (root / "bees/b1.png").read_bytes()
    (root / "bees/truncated.png").write_bytes(valid[: len(valid) // 2])
    (root / "bees/notes.txt").write_text("not an image, ignored")
    (root / "ants/.hidden.png").write_bytes(b"hidden files are ignored")
    expected.sort(key=lambda e: (e[1], e[0]))
    return root, expected


def test_folder_images_and_labels_are_exactly_what_was_written(image_folder):
    root, expected = image_folder
    with pytest.warns(UserWarning) as record:
        ds = load_folder(root, progress=False)
    messages = [str(w.message) for w in record if "unreadable" in str(w.message)]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert messages[0].startswith("skipped 3 unreadable image file(s)")
    for name in ("ants/broken.png", "bees/empty.jpg", "bees/truncated.png"):
        assert name in messages[0]
    assert ds.classes == ["ants", "bees"]
    assert ds.labels.tolist() == [label for _, label, _ in expected]
    assert ds.images.shape == (len(expected), 3, 64, 64) and ds.images.dtype == torch.uint8
    for i, (rel, _, pixels) in enumerate(expected):
        assert np.array_equal(ds.images[i].permute(1, 2, 0).numpy(), pixels), rel
    assert "3 unreadable" in ds.note and "1 non-image file(s) ignored" in ds.note


def test_folder_decodes_to_the_model_geometry(tmp_path):
    rng = np.random.default_rng(0)
    for cls, shape in (("a", (40, 90)), ("b", (120, 60))):
        (tmp_path / cls).mkdir()
        level = 50 if cls == "a" else 200
        rgb = np.full((*shape, 3), level, np.uint8)
        rgb[..., 0] = rng.integers(0, 256, shape)  # red channel noise; green and blue flat
        Image.fromarray(rgb).save(tmp_path / cls / "x.png")
        Image.fromarray(np.dstack([rgb, np.full(shape, 0, np.uint8)])).save(tmp_path / cls / "y.png")  # transparent
    grey = Preprocessing(size=(28, 28), channels=1)
    ds = load_folder(tmp_path, grey, progress=False)
    assert ds.images.shape == (4, 1, 28, 28)
    assert (ds.images[1] == 255).all() and (ds.images[3] == 255).all()  # fully transparent -> white
    rgb = load_folder(tmp_path, Preprocessing(size=(16, 24), channels=3), progress=False)
    assert rgb.images.shape == (4, 3, 16, 24)
    assert (rgb.images[0, 1] == 50).all() and (rgb.images[2, 2] == 200).all()  # flat channels stay flat


def test_folder_splits_are_seeded_and_disjoint(tmp_path):
    rng = np.random.default_rng(1)
    for cls in ("cat", "dog", "eel"):
        (tmp_path / cls).mkdir()
        for i in range(10):
            Image.fromarray(_rng_image(rng, (8, 8))).save(tmp_path / cls / f"{i}.png")
    a = load_splits(f"folder:{tmp_path}", seed=4, val_fraction=0.2, test_fraction=0.2, progress=False)
    b = load_splits(f"folder:{tmp_path}", seed=4, val_fraction=0.2, test_fraction=0.2, progress=False)
    c = load_splits(f"folder:{tmp_path}", seed=5, val_fraction=0.2, test_fraction=0.2, progress=False)
    parts = [a.train.indices.tolist(), a.val.indices.tolist(), a.test.indices.tolist()]
    assert sorted(sum(parts, [])) == list(range(30)) and [len(p) for p in parts] == [18, 6, 6]
    assert all(torch.equal(a[s].indices, b[s].indices) for s in ("train", "val", "test"))
    assert not torch.equal(a.test.indices, c.test.indices)
    assert a.train.images.shape[1:] == (3, 64, 64)  # the default geometry


def _make(root: Path, layout: dict[str, list[str]]) -> Path:
    for cls, files in layout.items():
        (root / cls).mkdir(parents=True)
        for f in files:
            if f.endswith(".png"):
                Image.new("RGB", (4, 4)).save(root / cls / f)
            else:
                (root / cls / f).write_bytes(b"junk")
    return root


@pytest.mark.parametrize(
    "layout, message",
    [
        ({"only": ["a.png"]}, "at least two class sub-folders"),
        ({"a": ["a.png"], "b": []}, "has no image files"),
        ({"a": ["a.png"], "b": ["readme.txt"]}, "has no image files"),
        ({"a": ["a.png"], "b": ["bad.jpg"]}, "no readable image in class folder"),
    ],
)
def test_folder_errors(tmp_path, layout, message):
    root = _make(tmp_path / "data", layout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConvscopeError, match=message):
            load_splits(f"folder:{root}", progress=False)


def test_missing_folder(tmp_path):
    with pytest.raises(ConvscopeError, match="does not exist"):
        load_splits(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(ConvscopeError, match="needs a path"):
        load_splits("folder:")
