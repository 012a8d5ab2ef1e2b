"""Top-activating dataset examples: the k images each channel of a layer responds to most.

One pass over a dataset, in batches. An image's score for channel c is the maximum of
the channel's map, ``s_c = max_{y,x} A[c, y, x]`` (for a flat layer, ``A[c]``); for every
channel we keep the k best images, the position of that maximum and the whole map.

The pass is made to be split: :func:`top_examples` on a shard
(``dataset.shard(i, n)``) returns a partial :class:`TopExamples`, and :func:`merge` of
the partials equals the single pass exactly, because both keep the k best under one
total order: higher score first, ties broken by the lower dataset index
(``ImageDataset.indices``, which shards keep). Partials save to ``.npz`` (no pickle),
so workers can write them and one process can merge them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.base import ImageDataset
from ..data.registry import as_dataset
from ..errors import ConvscopeError
from ..io_utils import atomic_path
from ..models.model import Model, as_model
from ..probe import capture, model_state, resolve_layer, run_to
from ..progress import ProgressArg, progress_callback
from ..scale.engine import Engine, map_merged
from .progress import CancelFn, ProgressFn, tick
from .receptive import ReceptiveField


@dataclass
class TopExamples:
    """For each channel c, its k best images (slots without an image have index -1)."""

    layer: str
    channels: np.ndarray  # (C,) the layer's channel numbers kept
    values: np.ndarray  # (C, k) float32 scores, best first (-inf: empty slot)
    indices: np.ndarray  # (C, k) int64 dataset indices (ImageDataset.indices), -1: empty
    positions: np.ndarray  # (C, k, 2) int64 (y, x) of the maximum
    maps: np.ndarray  # (C, k, h, w) float32 activation maps ((C, k, 1, 1) for a flat layer)
    seen: int  # images processed
    minimum: np.ndarray | None = None  # (C,) float32: each channel's lowest value over every map seen
    maximum: np.ndarray | None = None  # (C,) float32: and its highest

    @property
    def constant(self) -> np.ndarray:
        """(C,) bool: channels whose maps held one value on every image (a dead ReLU's zeros):
        their "top" examples are an arbitrary k of equals, so views say so instead."""
        if self.minimum is None or self.maximum is None:
            return np.zeros(len(self.channels), bool)
        return np.asarray(self.minimum) == np.asarray(self.maximum)

    @property
    def k(self) -> int:
        return int(self.values.shape[1])

    def __repr__(self) -> str:  # the arrays are shown by .show()/the notebook, not printed
        size = "x".join(str(s) for s in self.maps.shape[2:])
        dead = int(self.constant.sum())
        constant = f", {dead} constant" if dead else ""
        return (
            f"TopExamples({self.layer!r}, {len(self.channels)} channels{constant}, top {self.k} of {self.seen} images, "
            f"maps {size})"
        )

    def save(self, path: str | Path) -> Path:
        """Write to ``.npz`` atomically (plain arrays only, loadable without pickle)."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                arrays = {f.name: getattr(self, f.name) for f in fields(self)}
                np.savez_compressed(f, **{key: np.asarray(v) for key, v in arrays.items() if v is not None})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> TopExamples:
        try:
            with np.load(path, allow_pickle=False) as z:
                d = {f.name: z[f.name] for f in fields(cls) if f.name in z.files or f.name not in OPTIONAL}
        except (OSError, KeyError, ValueError) as exc:
            raise ConvscopeError(f"{path} is not a top-examples file: {exc}") from None
        d["layer"], d["seen"] = str(d["layer"]), int(d["seen"])
        return cls(**d)


OPTIONAL = ("minimum", "maximum")  # absent from files written before they were kept


def _select(values: torch.Tensor, indices: torch.Tensor, k: int) -> torch.Tensor:
    """Column order (C, k) of the k best per row: value descending, then index ascending."""
    by_index = torch.sort(indices, dim=1, stable=True).indices
    v = torch.gather(values, 1, by_index)
    by_value = torch.sort(v, dim=1, descending=True, stable=True).indices
    return torch.gather(by_index, 1, by_value)[:, :k]


def _take(t: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """Gather along dim 1 of a (C, n, ...) tensor with a (C, k) index."""
    shape = order.shape + (1,) * (t.dim() - 2)
    return torch.gather(t, 1, order.view(shape).expand(*order.shape, *t.shape[2:]))


def _combine(state: dict[str, torch.Tensor], new: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    both = {key: torch.cat([state[key], new[key]], 1) for key in state}
    order = _select(both["values"], both["indices"], k)
    return {key: _take(t, order) for key, t in both.items()}


def _empty(c: int, k: int, h: int, w: int) -> dict[str, torch.Tensor]:
    return {
        "values": torch.full((c, k), -float("inf")),
        "indices": torch.full((c, k), -1, dtype=torch.long),
        "positions": torch.zeros((c, k, 2), dtype=torch.long),
        "maps": torch.zeros((c, k, h, w)),
    }


def top_examples(
    model: Model | nn.Module,
    dataset: ImageDataset | str,
    layer: str | nn.Module,
    k: int = 9,
    channels: Sequence[int] | None = None,
    batch_size: int = 64,
    progress: ProgressFn | ProgressArg = None,
    cancel: CancelFn = None,
    engine: Engine = "local",
) -> TopExamples:
    """Stream ``dataset`` once and keep each channel's ``k`` top-activating images.

    ``dataset`` is conformed to the model's input (channels, size) first. Pass a shard
    (``dataset.shard(i, n)``) to get a partial result for :func:`merge`. ``progress``
    is called with (images done, total images), or is ``True`` (a bar) / ``False`` (silent). ``engine="ray"`` (or a
    :class:`convscope.scale.RayEngine`) ranks blocks on Ray workers and merges them: the
    same lists, exactly (:mod:`convscope.scale`).
    """
    if k < 1:
        raise ConvscopeError(f"k must be at least 1, not {k}")
    dataset = as_dataset(dataset)  # a name such as "digits": its test split
    progress = progress_callback(progress, "top examples", "image")
    if engine not in (None, "local"):
        if not isinstance(layer, str):
            raise ConvscopeError("engine='ray' needs the layer by name, not a module object")
        units = None if channels is None else list(channels)
        report = partial(tick, progress, cancel)
        return map_merged(
            engine, "examples", model, dataset, batch_size, merge, report, layer=layer, k=k, channels=units
        )
    model = as_model(model)
    ref = resolve_layer(model.net, layer)
    name = str(ref)
    prep = model.preprocessing
    data = dataset.conform(prep)
    ids = data.indices.to(torch.long)
    state: dict[str, torch.Tensor] | None = None
    chan = None
    lo = hi = None
    done = 0
    tick(progress, cancel, 0, len(data))
    with model_state(model.net), torch.no_grad(), capture(model.net, ref, stop=True) as box:
        for x, _y in data.batches(prep, batch_size):
            act = run_to(model.net, x.to(model.device), box).float().cpu()
            if act.dim() == 2:
                act = act[:, :, None, None]
            if act.dim() != 4:
                raise ConvscopeError(f"{name} gives {act.dim()}-D output; top examples need (B, C, H, W) or (B, C)")
            if chan is None:
                chan = _channels(channels, act.shape[1], name)
                state = _empty(len(chan), k, act.shape[2], act.shape[3])
            act = act[:, chan]
            b, c, h, w = act.shape
            flat = act.flatten(2)
            lo = _fold(lo, flat.amin((0, 2)), torch.minimum)
            hi = _fold(hi, flat.amax((0, 2)), torch.maximum)
            values, arg = flat.max(2)  # (B, C): the first maximum in row-major order
            new = {
                "values": values.T.contiguous(),
                "indices": ids[done : done + b].view(1, b).expand(c, b).contiguous(),
                "positions": torch.stack([arg // w, arg % w], -1).transpose(0, 1).contiguous(),
                "maps": act.transpose(0, 1).contiguous(),
            }
            state = _combine(state, new, k)
            done += b
            tick(progress, cancel, done, len(data))
    if state is None:
        raise ConvscopeError(f"{dataset.name} is empty: no images to rank")
    return TopExamples(
        layer=name,
        channels=np.asarray(chan, dtype=np.int64),
        seen=done,
        minimum=lo.numpy(),
        maximum=hi.numpy(),
        **{key: t.numpy() for key, t in state.items()},
    )


def _fold(acc: torch.Tensor | None, new: torch.Tensor, op) -> torch.Tensor:
    return new if acc is None else op(acc, new)


def _extreme(partials: Sequence[TopExamples], key: str, op) -> np.ndarray | None:
    """The channels' minimum / maximum over all partials (None when one of them lacks it)."""
    values = [getattr(p, key) for p in partials]
    return None if any(v is None for v in values) else op.reduce(np.stack(values), axis=0)


def _channels(channels: Sequence[int] | None, width: int, name: str) -> list[int]:
    if channels is None:
        return list(range(width))
    chan = [int(c) for c in channels]
    bad = [c for c in chan if not 0 <= c < width]
    if bad:
        raise ConvscopeError(f"channel(s) {bad} out of range: {name} has {width} channels")
    return chan


def merge(partials: Sequence[TopExamples]) -> TopExamples:
    """Combine results on disjoint shards into the result of one pass over all of them."""
    if not partials:
        raise ConvscopeError("nothing to merge")
    first = partials[0]
    for p in partials[1:]:
        if (
            p.layer != first.layer
            or not np.array_equal(p.channels, first.channels)
            or p.k != first.k
            or p.maps.shape[2:] != first.maps.shape[2:]
        ):
            raise ConvscopeError("these partial results are for different layers, channels or k; cannot merge")
    keys = ("values", "indices", "positions", "maps")
    state = {key: torch.from_numpy(np.asarray(getattr(first, key))) for key in keys}
    for p in partials[1:]:
        state = _combine(state, {key: torch.from_numpy(np.asarray(getattr(p, key))) for key in keys}, first.k)
    return TopExamples(
        layer=first.layer,
        channels=first.channels,
        seen=sum(p.seen for p in partials),
        minimum=_extreme(partials, "minimum", np.minimum),
        maximum=_extreme(partials, "maximum", np.maximum),
        **{key: t.numpy() for key, t in state.items()},
    )


def example_images(
    result: TopExamples, dataset: ImageDataset, model: Model | nn.Module, rf: ReceptiveField | None = None
) -> np.ndarray:
    """uint8 pictures of the kept examples, (C, k, H, W, channels) in the model's pixels.

    With a receptive field ``rf`` each picture is the crop of the field around the
    maximum (C, k, rh, rw, channels), mid-grey where the field leaves the image. Empty
    slots are mid-grey.
    """
    model = as_model(model)
    data = dataset.conform(model.preprocessing)
    where = {int(g): i for i, g in enumerate(data.indices.tolist())}
    missing = [int(i) for i in np.unique(result.indices) if i >= 0 and int(i) not in where]
    if missing:
        raise ConvscopeError(
            f"{len(missing)} example(s) are not in {dataset.name} (e.g. index {missing[0]}): "
            "pass the dataset the examples were ranked on"
        )
    images = data.images.permute(0, 2, 3, 1).numpy()  # (N, H, W, c)
    c, k = result.indices.shape
    hh, ww = rf.size if rf is not None else data.size
    hh, ww = min(hh, data.size[0]), min(ww, data.size[1])
    out = np.full((c, k, hh, ww, data.channels), 128, np.uint8)
    for i in range(c):
        for j in range(k):
            idx = int(result.indices[i, j])
            if idx < 0:
                continue
            img = images[where[idx]]
            if rf is None:
                out[i, j] = img
            else:
                out[i, j] = _crop(img, rf, *result.positions[i, j], (hh, ww))
    return out


def _crop(img: np.ndarray, rf: ReceptiveField, y: int, x: int, size: tuple[int, int]) -> np.ndarray:
    """The field of unit (y, x), ``size`` big, centred on the field, grey outside the image."""
    cy, cx = rf.centre(int(y), int(x))
    top, left = int(round(cy - (size[0] - 1) / 2)), int(round(cx - (size[1] - 1) / 2))
    out = np.full((*size, img.shape[-1]), 128, np.uint8)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + size[0], img.shape[0]), min(left + size[1], img.shape[1])
    if t1 > t0 and l1 > l0:
        out[t0 - top : t1 - top, l0 - left : l1 - left] = img[t0:t1, l0:l1]
    return out
