"""Channels that hold one value on every image of a dataset (a dead ReLU's zeros).

Such a channel says nothing about its input, so a picture "it responds to most" would
mislead: activation maximisation still climbs some gradient off the data (or none at all)
and draws a plausible texture. The views mark these channels instead of drawing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from ..data.base import ImageDataset
from ..models.model import Model
from .examples import top_examples
from .progress import ProgressFn


@dataclass
class ConstantChannels:
    """The channels of ``layer`` that were constant over ``seen`` images of ``data``."""

    layer: str
    values: dict[int, float]  # channel -> the one value it held
    seen: int
    data: str

    def __contains__(self, channel: object) -> bool:
        return channel in self.values


def constant_channels(
    model: Model | nn.Module,
    dataset: ImageDataset,
    layer: str | nn.Module,
    channels: Sequence[int] | None = None,
    batch_size: int = 64,
    progress: ProgressFn = None,
) -> ConstantChannels:
    """One pass over ``dataset``: the channels whose lowest and highest value are equal.

    The pass is :func:`~convscope.features.top_examples` with k=1 (it keeps every channel's
    minimum and maximum), so ``examples`` and ``features`` call the same channels dead.
    """
    result = top_examples(model, dataset, layer, k=1, channels=channels, batch_size=batch_size, progress=progress)
    values = {int(c): float(result.maximum[row]) for row, c in enumerate(result.channels) if result.constant[row]}
    return ConstantChannels(result.layer, values, result.seen, dataset.name)
