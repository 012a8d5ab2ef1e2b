"""One interface for every dataset: labelled uint8 images held in memory.

Every dataset, whatever its file format, becomes an :class:`ImageDataset`: a uint8
tensor (N, C, H, W), int64 labels, and class names. Training, evaluation, embeddings
and top-activating examples all read this one shape. :meth:`ImageDataset.conform`
adapts it to a model's input (channels, size), and :meth:`ImageDataset.shard` cuts it
into independent pieces whose results can be merged, so dataset passes can be spread
across workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConvscopeError
from ..models.preprocessing import Preprocessing
from .items import Origin


@dataclass
class ImageDataset:
    """Labelled images: ``images`` uint8 (N, C, H, W), ``labels`` int64 (N,)."""

    name: str
    classes: list[str]
    images: torch.Tensor
    labels: torch.Tensor
    note: str = ""  # how it was obtained, e.g. an offline fallback, shown to the user
    indices: torch.Tensor | None = None  # positions in the full, unsplit dataset
    origin: Origin | None = None  # where the items can be read again (data.items); None: only in memory

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ConvscopeError(
                f"{self.name}: images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}"
            )
        if len(self.images) != len(self.labels):
            raise ConvscopeError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")
        self.labels = self.labels.to(torch.int64)
        if self.indices is None:
            self.indices = torch.arange(len(self.labels))

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"ImageDataset({self.name!r}, {len(self)} images {tuple(self.images.shape[1:])}, "
            f"{len(self.classes)} classes)"
        )

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.images.shape[2]), int(self.images.shape[3]))

    def subset(self, index: torch.Tensor | np.ndarray | list[int]) -> ImageDataset:
        index = torch.as_tensor(index, dtype=torch.int64)
        return replace(self, images=self.images[index], labels=self.labels[index], indices=self.indices[index])

    def shard(self, shard: int, shards: int) -> ImageDataset:
        """The ``shard``-th of ``shards`` contiguous, disjoint pieces (for parallel passes)."""
        if not 0 <= shard < shards:
            raise ConvscopeError(f"shard {shard} is out of range for {shards} shards")
        bounds = np.linspace(0, len(self), shards + 1).astype(int)
        return self.subset(torch.arange(bounds[shard], bounds[shard + 1]))

    def conform(self, preprocessing: Preprocessing) -> ImageDataset:
        """Convert to the channels and size a model expects (grey <-> RGB, bilinear resize)."""
        x = self.images
        c = preprocessing.channels
        if x.shape[1] != c:
            if c == 3 and x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            elif c == 1 and x.shape[1] == 3:
                weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
                x = (x.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
            else:
                raise ConvscopeError(f"cannot convert {x.shape[1]}-channel images to {c} channels")
        if tuple(x.shape[2:]) != tuple(preprocessing.size):
            x = resize_uint8(x, preprocessing.size)
        if x is self.images:
            return replace(self, images=x.contiguous())
        origin = self.origin.then(c, preprocessing.size) if self.origin is not None else None
        return replace(self, images=x.contiguous(), origin=origin)

    def batches(
        self,
        preprocessing: Preprocessing,
        batch_size: int = 256,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield normalised float batches (x, y); images must already be conformed."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            x = self.images[idx]
            if augment is not None:
                x = augment(x, generator)
            yield preprocessing.normalize(x), self.labels[idx]


def resize_uint8(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a uint8 batch (antialiased when shrinking)."""
    out = F.interpolate(
        images.float(),
        size=tuple(size),
        mode="bilinear",
        align_corners=False,
        antialias=bool(size[0] < images.shape[2] or size[1] < images.shape[3]),
    )
    return out.round().clamp(0, 255).to(torch.uint8)


@dataclass
class Splits:
    """Deterministic train / validation / test splits of one dataset."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset
    seed: int = 0
    description: str = ""  # how the split was made, e.g. "official test set" or "seeded 80/10/10"

    @property
    def note(self) -> str:
        """How the data was obtained (e.g. an offline fallback): show it to the user."""
        return self.train.note

    def __getitem__(self, name: str) -> ImageDataset:
        if name not in ("train", "val", "test"):
            raise ConvscopeError(f"unknown split {name!r}; use train, val or test")
        return getattr(self, name)


def split_train_val(ds: ImageDataset, val_fraction: float, seed: int) -> tuple[ImageDataset, ImageDataset]:
    """Carve a seeded, stratified-by-shuffle validation set out of a training set."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ds), generator=g)
    n_val = max(1, int(round(len(ds) * val_fraction)))
    return ds.subset(order[n_val:]), ds.subset(order[:n_val])


def split_three(ds: ImageDataset, val_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Seeded train/val/test split for datasets that have no official test set."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(ds), generator=g)
    n_test = max(1, int(round(len(ds) * test_fraction)))
    n_val = max(1, int(round(len(ds) * val_fraction)))
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    pct = lambda n: f"{100 * n / len(ds):.0f}%"  # noqa: E731
    desc = (
        f"seeded split (seed {seed}) of {len(ds)} images: train {len(train)} ({pct(len(train))}), "
        f"val {len(val)} ({pct(len(val))}), test {len(test)} ({pct(len(test))})"
    )
    return Splits(ds.subset(train), ds.subset(val), ds.subset(test), seed=seed, description=desc)
