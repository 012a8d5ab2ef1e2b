"""The "What does it look for?" panel's computations: one channel's activation-maximisation
image, its kernels and its top dataset examples, as JSON.

Glue only: numbers come from :mod:`convscope.features`, pictures from
:mod:`convscope.render.features` / :mod:`convscope.render.kernels`. Pictures travel as
PNG data URLs inside the JSON.

* Feature visualisation goes through :func:`convscope.features.cached_visualize`, so a
  picture is computed once per (model weights, layer, channel, settings) and then read
  from the on-disk :class:`~convscope.features.FeatureCache`, across server restarts.
* Top examples rank the whole layer in one pass over the configured dataset (every
  channel at once, :func:`convscope.features.top_examples`); the pass is kept in memory
  per (model, layer, k), so the other channels of that layer are then instant.
* The dataset: ``"auto"`` is the embedded MNIST for 1-channel 28x28 models and none
  for the others; a name is loaded with :func:`convscope.data.load_splits` from local
  files only (the server never downloads); an :class:`~convscope.data.ImageDataset`
  is used as it is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ..data.base import ImageDataset
from ..errors import ConvscopeError, NotFound
from ..features import (
    Cancelled,
    FeatureCache,
    TopExamples,
    cached_visualize,
    example_images,
    kernels,
    receptive_field,
    resolve_layer,
    top_examples,
)
from ..i18n import message
from ..lru import LRU
from ..models.model import Model
from ..probe import capture, model_state, run_to
from ..render.features import examples_grid, kernel_image, upscale
from ..render.kernels import kernel_grid
from .explain_views import data_url

Progress = Callable[[int, int], None]
MAX_KERNEL_VALUES = 4096  # kernels with more values than this travel as a picture only
# weights smaller than this in size are drawn as 0 (the page's widgets.TINY): a dead channel's
# kernel decayed to 1e-24 would otherwise be scaled to its own range and its noise look like a filter
ZERO_WEIGHT = 1e-12


def layer_width(model: Model, layer: str) -> tuple[str, tuple[int, ...]]:
    """(qualified name, output shape without the batch axis); unknown layers are 404."""
    ref = resolve_layer(model.net, layer)
    name = str(ref)
    with torch.no_grad(), model_state(model.net), capture(model.net, ref, stop=True) as box:
        out = run_to(model.net, torch.zeros(1, *model.input_shape, device=model.device), box)
    return name, tuple(out.shape[1:])


def check_unit(model: Model, layer: str, channel: int) -> str:
    """The layer's name, after checking that it has a channel ``channel`` (404 otherwise)."""
    name, shape = layer_width(model, layer)
    if not shape:
        raise ConvscopeError(f"layer {name!r} outputs a scalar; it has no channels")
    if not 0 <= channel < shape[0]:
        raise NotFound(f"layer {name!r} has {shape[0]} channels, no channel {channel}")
    return name


# -- activation maximisation ---------------------------------------------------------------
def visualization_json(
    model: Model,
    layer: str,
    channel: int,
    steps: int,
    cache: FeatureCache,
    progress: Progress | None = None,
    compute: bool = True,
) -> dict[str, Any]:
    """The channel's picture from the cache, computed first when missing (unless ``compute`` is off).

    ``cached`` says whether it came from the disk cache without optimising.
    """
    name = check_unit(model, layer, channel)
    if steps < 1 or steps > 4096:
        raise ConvscopeError(f"steps must be between 1 and 4096, not {steps}")
    out: dict[str, Any] = {"layer": name, "channel": channel, "steps": steps}
    try:  # peek: a cancel() that is already true stops before the first step unless every picture is on disk
        images, values = cached_visualize(model, name, [channel], cache, cancel=lambda: True, steps=steps)
        cached = True
    except Cancelled:
        if not compute:
            return {**out, "cached": False}
        images, values = cached_visualize(model, name, [channel], cache, progress=progress, steps=steps)
        cached = False
    image = images[0]
    return {**out, "cached": cached, "value": float(values[0]), "size": list(image.shape[:2]), "image": data_url(image)}


# -- kernels -----------------------------------------------------------------------------
def kernels_json(model: Model, layer: str, channel: int) -> dict[str, Any]:
    """One output channel's kernels: values, bias, the symmetric scale and a picture.

    First-layer kernels reading 1 or 3 channels are one small grey / RGB image (mid-grey
    = 0); deeper ones a grid of per-input-channel kernels on the diverging scale
    ``[-scale, scale]``. A kernel whose weights are all under ZERO_WEIGHT in size is drawn
    on ``[-1, 1]`` (as zeros) and says ``zero``.
    """
    name = check_unit(model, layer, channel)
    k = kernels(model, name, channels=[channel])
    w = k.weight[0]  # (in, kh, kw)
    cin, kh, kw = w.shape
    zero = k.scale < ZERO_WEIGHT
    shown = 1.0 if zero else k.scale
    if k.as_image:
        picture = upscale(kernel_image(w, shown), 120)[0]
    else:  # about 200 px wide, each kernel value at least one pixel
        cols = max(1, math.ceil(math.sqrt(cin)))
        f = max(1, min(32 // max(kh, kw), 200 // (cols * (kw + 1))))
        picture = kernel_grid(w[:, None], vrange=(-shown, shown), upscale=f)
    return {
        "layer": k.layer,
        "channel": channel,
        "shape": [cin, kh, kw],
        "groups": k.groups,
        "first": k.first,
        "as_image": k.as_image,
        "scale": k.scale,
        "zero": bool(zero),
        "bias": None if k.bias is None else float(k.bias[0]),
        "weight": w.tolist() if w.size <= MAX_KERNEL_VALUES else None,
        "image": data_url(picture),
    }


# -- top dataset examples ----------------------------------------------------------------
@dataclass(frozen=True)
class DataChoice:
    """Which dataset the look-for panel ranks: a name, or a dataset given in Python."""

    name: str | None
    split: str = "val"
    dataset: ImageDataset | None = None


def constant_json(result: TopExamples, row: int, images: str) -> dict[str, Any]:
    """``constant`` (and its ``constant_value`` and ``constant_note``, the sentence the page shows,
    as a catalogue message) when the channel held one value on every image: its "top" examples
    are then an arbitrary k of equals, which the page must not show as a ranking. ``images``
    names what was ranked ("mnist val")."""
    if not result.constant[row]:
        return {"constant": False}
    value = float(result.maximum[row])
    note = message("server.lookfor.constant", value=f"{value:.3g}", seen=int(result.seen), images=images)
    return {"constant": True, "constant_value": value, "constant_note": note}


def data_choice(model: Model, data: str | ImageDataset | None, split: str = "val") -> DataChoice:
    """Resolve the server's ``data`` option for one model (see the module docstring)."""
    if isinstance(data, ImageDataset):
        return DataChoice(data.name, "", data)
    if data is None or str(data).lower() in ("", "none"):
        return DataChoice(None, split)
    if data == "auto":
        return DataChoice("mnist" if tuple(model.input_shape) == (1, 28, 28) else None, split)
    return DataChoice(str(data), split)


class Examples:
    """Loaded datasets and per-layer top-example passes, each computed once (thread-safe)."""

    def __init__(self, keep: int = 8, datasets: int = 4) -> None:
        self._splits: LRU[str, Any] = LRU(datasets)
        self._results: LRU[tuple, tuple[TopExamples, Any]] = LRU(keep)

    def dataset(self, choice: DataChoice) -> ImageDataset:
        if choice.dataset is not None:
            return choice.dataset
        name = choice.name
        if name is None:
            raise ConvscopeError("no dataset is configured for this model: start the explorer with --data NAME")
        from ..data import load_splits

        splits = self._splits.get_or_make(name, lambda: load_splits(name, download=False, progress=False))
        return splits[choice.split]

    def layer_result(
        self, model: Model, layer: str, k: int, choice: DataChoice, progress: Progress | None = None
    ) -> tuple[TopExamples, Any, ImageDataset]:
        """The whole layer's top-k (one pass, all channels) and its receptive field."""
        data = self.dataset(choice)
        key = (id(model.net), layer, k, choice.name, choice.split, id(choice.dataset))
        result, rf = self._results.get_or_make(
            key, lambda: (top_examples(model, data, layer, k=k, progress=progress), receptive_field(model, layer))
        )
        return result, rf, data

    def channel_json(
        self, model: Model, layer: str, channel: int, k: int, choice: DataChoice, progress: Progress | None = None
    ) -> dict[str, Any]:
        """The channel's k best dataset images with their activation maps overlaid, as one picture row."""
        name = check_unit(model, layer, channel)
        if not 1 <= k <= 64:
            raise ConvscopeError(f"k must be between 1 and 64, not {k}")
        if progress is not None:
            progress(0, 0)  # loading the dataset: no count yet
        result, rf, data = self.layer_result(model, name, k, choice, progress)
        row = int(np.flatnonzero(result.channels == channel)[0])
        one = replace(
            result,
            channels=result.channels[row : row + 1],
            values=result.values[row : row + 1],
            indices=result.indices[row : row + 1],
            positions=result.positions[row : row + 1],
            maps=result.maps[row : row + 1],
        )
        kept = [j for j in range(k) if one.indices[0, j] >= 0]
        images = example_images(one, data, model)
        heats = np.stack([rf.to_input(m) for m in one.maps[0]])[None]
        vmax = np.array([max(float(one.values[0].max()), 1e-8)])
        picture = examples_grid(images[:, kept], heats[:, kept], vmax)
        where = {int(g): i for i, g in enumerate(data.indices.tolist())}
        labels = [int(data.labels[where[int(one.indices[0, j])]]) for j in kept]
        return {
            "layer": name,
            "channel": channel,
            "dataset": choice.name,
            "split": choice.split,
            "note": data.note,
            "seen": int(result.seen),
            "k": k,
            "values": [float(one.values[0, j]) for j in kept],
            "indices": [int(one.indices[0, j]) for j in kept],
            "positions": [[int(v) for v in one.positions[0, j]] for j in kept],
            "labels": [data.classes[y] if 0 <= y < len(data.classes) else str(y) for y in labels],
            "image": data_url(picture),
            **constant_json(result, row, " ".join(filter(None, [choice.name, choice.split]))),
        }
