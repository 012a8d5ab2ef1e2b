"""Where a dataset's items can be read again, so a worker reads its own block instead of being sent pixels.

Every loader records an :class:`Origin` on the :class:`~convscope.data.base.ImageDataset` it
returns: ``digits`` (scikit-learn's bundled set), an official set (``mnist``,
``fashion-mnist``, ``cifar10``: which source, its cache folder and the official ``train`` or
``test`` part), the offline MNIST subset, or a ``folder:`` (its root and the files that were
decoded, by position, with the preprocessing that decoded them). Splits and subsets keep it
(their ``indices`` are positions in that full set); :meth:`ImageDataset.conform` appends the
conversion it made, so a worker can repeat it.

:func:`describe` turns rows ``[start, stop)`` of a dataset into a small, plain descriptor: for a
``folder:`` the block's relative file paths, for the built-in sets the block's positions in the
full set, and a digest of the block's pixels and labels. :func:`read` (in the worker) reads the
items with convscope's own loaders, checks that every path stays inside the folder the user
named (relative, no ``..``, no hidden parts, an image suffix, under one of the class folders),
repeats the conversions, and compares the digest: a block whose files changed since the driver
read them is an error, never a silently different result. A dataset with no origin (a user's
own tensors, or one changed by code outside this package) has no descriptor; the caller ships
its pixels instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ConvscopeError
from ..models.preprocessing import Preprocessing

if TYPE_CHECKING:
    from .base import ImageDataset

KINDS = ("digits", "official", "fallback", "folder")
CACHED_SETS = 4  # full built-in sets a worker keeps parsed (MNIST's training set is 47 MB)


@dataclass(frozen=True, eq=False)
class Origin:
    """How to read a dataset's items again: see the module docstring.

    ``name``: the source's name (``mnist``), or a folder's absolute root; ``part``: ``train`` or
    ``test`` of an official set; ``root``: the cache folder the official files were verified in;
    ``files``: a folder's decoded files relative to its root, item ``i`` at ``files[i]``;
    ``decode``: the preprocessing a folder was decoded with; ``steps``: the conversions
    (channels, size) applied since, in order.
    """

    kind: str
    name: str
    part: str = ""
    root: str | None = None
    files: tuple[str, ...] = ()
    decode: Preprocessing | None = None
    steps: tuple[tuple[int, tuple[int, int]], ...] = ()

    def then(self, channels: int, size: tuple[int, int]) -> Origin:
        """This origin followed by a conversion to ``channels`` and ``size``."""
        return replace(self, steps=(*self.steps, (int(channels), (int(size[0]), int(size[1])))))


def digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A short fingerprint of a block's uint8 pixels and int64 labels (what a worker must reproduce)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.ascontiguousarray(images.numpy()).data)
    h.update(np.ascontiguousarray(labels.numpy().astype(np.int64)).data)
    return h.hexdigest()


def describe(ds: ImageDataset, start: int, stop: int) -> dict[str, Any] | None:
    """Rows ``[start, stop)`` of ``ds`` as a plain descriptor a worker can :func:`read`; None without an origin."""
    origin = getattr(ds, "origin", None)
    if origin is None:
        return None
    positions = ds.indices[start:stop].numpy().astype(np.int64)
    desc: dict[str, Any] = {
        "kind": origin.kind,
        "name": origin.name,
        "part": origin.part,
        "root": origin.root,
        "steps": [[c, list(size)] for c, size in origin.steps],
        "dataset": ds.name,
        "classes": list(ds.classes),
        "indices": positions,
        "digest": digest(ds.images[start:stop], ds.labels[start:stop]),
    }
    if origin.kind == "folder":
        desc["files"] = [origin.files[int(i)] for i in positions]
        desc["decode"] = origin.decode.to_dict() if origin.decode is not None else None
    return desc


def read(desc: dict[str, Any], cache: dict[tuple, ImageDataset] | None = None) -> ImageDataset:
    """The block a descriptor names, read here with convscope's loaders and checked against its digest.

    ``cache`` keeps parsed full built-in sets between calls (a worker passes its own dict).
    """
    from .base import ImageDataset

    kind = desc.get("kind")
    if kind not in KINDS:
        raise ConvscopeError(f"unknown item origin {kind!r}; one of {', '.join(KINDS)}")
    indices = torch.as_tensor(np.asarray(desc["indices"], dtype=np.int64))
    if kind == "folder":
        images, labels = _read_folder(desc)
    else:
        full = _full_set(desc, cache)
        if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= len(full)):
            raise ConvscopeError(f"{desc['dataset']}: positions outside its {len(full)} items")
        images, labels = full.images[indices], full.labels[indices]
    block = ImageDataset(desc["dataset"], list(desc["classes"]), images, labels, indices=indices)
    for channels, size in desc.get("steps") or []:
        block = block.conform(Preprocessing(size=tuple(size), channels=int(channels)))
    if digest(block.images, block.labels) != desc["digest"]:
        raise ConvscopeError(
            f"the items of {desc['dataset']} read by the worker differ from the ones the caller holds "
            "(were files changed since it read them, or does the worker see other files?)"
        )
    return block


def _full_set(desc: dict[str, Any], cache: dict[tuple, ImageDataset] | None) -> ImageDataset:
    key = (desc["kind"], desc["name"], desc.get("part"), desc.get("root"))
    if cache is not None and key in cache:
        return cache[key]
    from .sources import SOURCES

    kind, name = desc["kind"], desc["name"]
    if kind == "digits":
        from .embedded import load_digits

        full = load_digits()
    else:
        if name not in SOURCES:
            raise ConvscopeError(f"unknown built-in dataset {name!r}")
        source = SOURCES[name]
        if kind == "fallback":
            if source.offline_fallback is None:
                raise ConvscopeError(f"{name} has no offline fallback")
            full = source.offline_fallback()
        else:
            from .download import fetch
            from .registry import official_sets

            if desc.get("part") not in ("train", "test"):
                raise ConvscopeError(f"an official set's part is train or test, not {desc.get('part')!r}")
            paths = fetch(source, root=desc.get("root"), download=False, progress=False)
            full = dict(zip(("train", "test"), official_sets(source, paths)))[desc["part"]]
    if cache is not None:
        while len(cache) >= CACHED_SETS:
            cache.pop(next(iter(cache)))
        cache[key] = full
    return full


def safe_relative(name: str, classes: list[str]) -> PurePosixPath:
    """A file name from a descriptor, checked to stay inside the user's folder: relative, no ``..``,
    no hidden part, an image suffix, under one of the class folders."""
    from .folder import image_extensions

    rel = PurePosixPath(str(name))
    parts = rel.parts
    if (
        rel.is_absolute()
        or "\\" in str(name)
        or "\x00" in str(name)
        or len(parts) < 2
        or any(p in ("", ".", "..") or p.startswith(".") for p in parts)
        or rel.suffix.lower() not in image_extensions()
        or parts[0] not in classes
    ):
        raise ConvscopeError(f"refusing image path {str(name)[:200]!r}: it must lie under a class folder of the data")
    return rel


def _read_folder(desc: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    from .folder import DEFAULT_FOLDER_PREPROCESSING, decode_image

    root = Path(desc["name"])
    if not root.is_absolute():
        raise ConvscopeError(f"a folder origin needs an absolute root, not {str(root)!r}")
    pre = Preprocessing.from_dict(desc["decode"]) if desc.get("decode") else DEFAULT_FOLDER_PREPROCESSING
    classes = list(desc["classes"])
    rels = [safe_relative(f, classes) for f in desc["files"]]
    h, w = pre.size
    images = np.empty((len(rels), h, w, pre.channels), dtype=np.uint8)
    for n, rel in enumerate(rels):
        images[n] = decode_image(pre, root.joinpath(*rel.parts))
    labels = torch.tensor([classes.index(rel.parts[0]) for rel in rels], dtype=torch.int64)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels
