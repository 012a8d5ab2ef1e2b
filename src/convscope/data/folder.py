"""A folder of a person's own images: one sub-folder per class.

``PATH/cat/*.jpg``, ``PATH/dog/*.png`` ... become classes ``["cat", "dog", ...]``
(sorted folder names; files are found recursively inside each class folder). Every
image is decoded by the model's own :class:`~convscope.models.Preprocessing` (EXIF
orientation, alpha on white, grey/RGB, resize and centre-crop), so images of any size
end up in the one geometry the network reads. Unreadable files are skipped with one
warning that names them; they never stop the run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..errors import ConvscopeError
from ..models.preprocessing import Preprocessing
from .base import ImageDataset
from .items import Origin

#: Geometry used when no model preprocessing is given (Tiny VGG's input).
DEFAULT_FOLDER_PREPROCESSING = Preprocessing(size=(64, 64), channels=3)
PROGRESS_MIN_FILES = 200  # show a progress bar from this many files on
SHOW_NAMES = 10  # how many unreadable files the warning names


def image_extensions() -> set[str]:
    """File suffixes Pillow can open (lower case, with the dot)."""
    return {ext.lower() for ext in Image.registered_extensions()}


def _visible(path: Path, base: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(base).parts)


def list_image_folder(path: str | Path) -> tuple[list[str], list[tuple[Path, int]], int]:
    """Classes, (file, label) pairs and the number of ignored non-image files.

    Raises :class:`ConvscopeError` when the folder is missing, has fewer than two class
    folders, or a class folder holds no image files.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ConvscopeError(f"image folder {root} does not exist or is not a folder")
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(class_dirs) < 2:
        found = ", ".join(d.name for d in class_dirs) or "none"
        raise ConvscopeError(f"{root} needs at least two class sub-folders (one per class), found {found}")
    exts = image_extensions()
    files: list[tuple[Path, int]] = []
    ignored = 0
    for label, d in enumerate(class_dirs):
        entries = sorted(p for p in d.rglob("*") if p.is_file() and _visible(p, d))
        images = [p for p in entries if p.suffix.lower() in exts]
        ignored += len(entries) - len(images)
        if not images:
            raise ConvscopeError(f"class folder {d} has no image files; every class needs at least one image")
        files.extend((p, label) for p in images)
    return [d.name for d in class_dirs], files, ignored


def decode_image(pre: Preprocessing, file: Path) -> np.ndarray:
    """One image file as ``pre`` prepares it: uint8 (H, W, C). Raises what Pillow raises for a bad file."""
    h, w = pre.size
    return np.asarray(pre.to_pil(file), dtype=np.uint8).reshape(h, w, pre.channels)


def load_folder(path: str | Path, preprocessing: Preprocessing | None = None, progress: bool = True) -> ImageDataset:
    """Decode every image under ``path`` to ``preprocessing``'s size and channels.

    ``preprocessing`` is the model's (default: 64x64 RGB). Files Pillow cannot read are
    skipped with a single warning naming them; a class left with no readable image is
    an error, since the model could never learn it.
    """
    pre = preprocessing or DEFAULT_FOLDER_PREPROCESSING
    root = Path(path).expanduser()
    classes, files, ignored = list_image_folder(root)
    h, w = pre.size
    images = np.empty((len(files), h, w, pre.channels), dtype=np.uint8)
    labels = np.empty(len(files), dtype=np.int64)
    kept: list[int] = []
    bad: list[str] = []
    decoded: list[str] = []  # item i's file, relative to root: what a worker reads again (data.items)
    bar = tqdm(
        files,
        desc=f"decoding {root.name}",
        unit="img",
        leave=False,
        disable=not progress or len(files) < PROGRESS_MIN_FILES,
    )
    for file, label in bar:
        try:
            pixels = decode_image(pre, file)
        except (ConvscopeError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            bad.append(str(file.relative_to(root)))
            continue
        n = len(kept)
        images[n] = pixels
        labels[n] = label
        kept.append(n)
        decoded.append(file.relative_to(root).as_posix())
    n = len(kept)
    counts = np.bincount(labels[:n], minlength=len(classes))
    empty = [c for c, k in zip(classes, counts) if k == 0]
    if empty:
        raise ConvscopeError(f"no readable image in class folder(s) {', '.join(empty)} of {root}")
    note = (
        f"image folder {root}: {len(classes)} classes, {n} images decoded to "
        f"{h}x{w} {'RGB' if pre.channels == 3 else 'grey'}"
    )
    if bad:
        named = ", ".join(bad[:SHOW_NAMES]) + (f" and {len(bad) - SHOW_NAMES} more" if len(bad) > SHOW_NAMES else "")
        message = f"skipped {len(bad)} unreadable image file(s) in {root}: {named}"
        warnings.warn(message, stacklevel=2)
        note += f"; {message}"
    if ignored:
        note += f"; {ignored} non-image file(s) ignored"
    tensor = torch.from_numpy(images[:n]).permute(0, 3, 1, 2).contiguous()
    origin = Origin("folder", str(root.absolute()), files=tuple(decoded), decode=pre)
    return ImageDataset(
        f"folder:{root}", classes, tensor, torch.from_numpy(labels[:n].copy()), note=note, origin=origin
    )
