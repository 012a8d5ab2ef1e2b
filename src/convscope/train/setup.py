"""Turn a :class:`TrainConfig` into a network, its preprocessing and conformed data.

A zoo name gets a fresh net shaped to the dataset (its channels, image size and class
count, so ``tiny-vgg`` on MNIST is 1x28x28 -> 10). Anything else is loaded with
:func:`convscope.load_model` and fine-tuned: the data is conformed to that model's
input, and if the class count differs, a zoo net gets a new output layer while every
other tensor is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data import Splits, load_splits
from ..errors import ConvscopeError
from ..models import Preprocessing, load_model, zoo
from .config import TrainConfig

MAX_SIZE = 512


@dataclass
class Prepared:
    """Everything the trainer needs besides the loop itself."""

    net: nn.Module
    architecture: dict[str, Any]  # {"zoo": name, "kwargs": {...}} so load_model can rebuild it
    preprocessing: Preprocessing
    classes: list[str]
    splits: Splits  # conformed to ``preprocessing``
    notes: list[str] = field(default_factory=list)


def prepare(
    config: TrainConfig, splits: Splits | None = None, trust: bool = False, spec_from_file: bool = False
) -> Prepared:
    """Load the data (unless ``splits`` are given) and build or load the net for ``config``.

    Seeds nothing itself. Given ``splits`` (your own in-memory data), ``config.data``
    is only the name recorded for them. ``trust`` and ``spec_from_file`` (``config``
    was read from a run's ``last.pt``) are :func:`convscope.load_model`'s.
    """
    if splits is None:
        splits = load_splits(config.data, seed=config.split_seed, root=config.data_root, download=config.download)
    classes = list(splits.train.classes)
    notes = [n for n in [splits.train.note, splits.description] if n]
    if config.model in zoo.ZOO:
        net, arch, prep = _fresh_zoo_net(config, splits, len(classes), notes)
    else:
        net, arch, prep = _loaded_net(config, len(classes), notes, trust, spec_from_file)
    conformed = Splits(
        *(splits[s].conform(prep) for s in ("train", "val", "test")), seed=splits.seed, description=splits.description
    )
    return Prepared(net, arch, prep, classes, conformed, notes)


def _fresh_zoo_net(config: TrainConfig, splits: Splits, num_classes: int, notes: list[str]):
    name = config.model
    channels = splits.train.channels
    if config.input_size is not None:
        size = tuple(config.input_size)
        net = _try_build(name, channels, num_classes, size, config)
        if net is None:
            smallest = _smallest_size(name, channels, num_classes, config)
            raise ConvscopeError(
                f"{name} cannot take {size[0]}x{size[1]} inputs; the smallest it takes is {smallest}x{smallest}"
            )
    else:
        size = splits.train.size
        net = _try_build(name, channels, num_classes, size, config)
        if net is None:
            s = _smallest_size(name, channels, num_classes, config, start=max(size))
            size = (s, s)
            net = _try_build(name, channels, num_classes, size, config)
            notes.append(
                f"{config.data} images are {splits.train.size[0]}x{splits.train.size[1]}, too small for "
                f"{name}; they are resized to {s}x{s} (set --input-size to choose)"
            )
    kwargs = {
        "in_channels": channels,
        "num_classes": num_classes,
        "input_size": list(size),
        "activation": config.activation,
        "dropout": config.dropout,
    }
    prep = zoo.ZOO[name].preprocessing(channels, size)
    return net, {"zoo": name, "kwargs": kwargs}, prep


def _try_build(name: str, channels: int, num_classes: int, size, config: TrainConfig) -> nn.Module | None:
    """The zoo net for this input, or None when the input is too small for its layers."""
    try:
        return zoo.build(
            name,
            in_channels=channels,
            num_classes=num_classes,
            input_size=tuple(size),
            activation=config.activation,
            dropout=config.dropout,
        )
    except RuntimeError:
        return None


def _smallest_size(name: str, channels: int, num_classes: int, config: TrainConfig, start: int = 1) -> int:
    for s in range(start, MAX_SIZE + 1):
        with torch.random.fork_rng():  # probing must not consume the run's random numbers
            if _try_build(name, channels, num_classes, (s, s), config) is not None:
                return s
    raise ConvscopeError(f"{name} takes no input size up to {MAX_SIZE}x{MAX_SIZE}")


def _loaded_net(config: TrainConfig, num_classes: int, notes: list[str], trust: bool, spec_from_file: bool):
    model = load_model(config.model, trust=trust, spec_from_file=spec_from_file)
    arch = model.meta.get("architecture")
    if not arch or not (arch.get("zoo") or arch.get("factory")):
        raise ConvscopeError(
            f"{config.model} does not record its architecture, so it cannot be fine-tuned; "
            "use a zoo name or a convscope checkpoint"
        )
    arch = {"zoo": arch.get("zoo"), "factory": arch.get("factory"), "kwargs": dict(arch.get("kwargs") or {})}
    arch = {k: v for k, v in arch.items() if v is not None}
    net = model.net
    have = len(model.classes) if model.classes is not None else None
    if have != num_classes:
        if not arch.get("zoo"):
            raise ConvscopeError(
                f"{config.model} has {have} classes but {config.data} has {num_classes}; "
                "only zoo architectures can get a new output layer"
            )
        arch["kwargs"]["num_classes"] = num_classes
        kwargs = dict(arch["kwargs"])
        kwargs["input_size"] = tuple(kwargs["input_size"]) if "input_size" in kwargs else None
        fresh = zoo.build(arch["zoo"], **kwargs)
        old = net.state_dict()
        kept = {k: v for k, v in old.items() if k in fresh.state_dict() and fresh.state_dict()[k].shape == v.shape}
        fresh.load_state_dict(kept, strict=False)
        net = fresh
        notes.append(
            f"fine-tuning {config.model}: new output layer for {num_classes} classes "
            f"(kept {len(kept)} of {len(old)} tensors)"
        )
    else:
        notes.append(f"fine-tuning {config.model}")
    return net, arch, model.preprocessing
