"""The model zoo: small CNNs from the tutorials, addressed by name.

Every zoo net is an ``nn.Sequential`` with named children, so each layer has a short,
stable qualified name (``conv_1_1``, ``relu_1_1``, ``max_pool_1`` ...) that the trace,
the explorer and the attribution methods all use. The builders take the choices the
tutorials discuss (activation, dropout) so a learner can compare them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConvscopeError, NotFound
from .preprocessing import Preprocessing

# Bounds on the arguments a checkpoint may ask a zoo net to be built with, so that a file
# cannot make the loader allocate terabytes (``num_classes: 3e9``) before any check.
MAX_CHANNELS = 64
MAX_CLASSES = 100_000
MAX_SIDE = 1024
MAX_PARAMETERS = 50_000_000  # 200 MB of float32; the zoo's nets have ~20k-120k at their own sizes

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
}


def _activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise NotFound(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}") from None


def _flat_features(body: nn.Module, channels: int, size: tuple[int, int]) -> int:
    """Number of features after ``body`` for one input of this size (a dry run)."""
    with torch.no_grad():
        return int(body(torch.zeros(1, channels, *size)).numel())


class TinyVGG(nn.Sequential):
    """CNN Explainer's Tiny VGG: (conv3x3 -> act -> conv3x3 -> act -> maxpool2) x 2 -> linear.

    'Valid' padding and 10 filters per conv, as published; 19,920 parameters for
    64x64x3 inputs and 10 classes. Layer names follow CNN Explainer's Keras model.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        input_size: tuple[int, int] = (64, 64),
        filters: int = 10,
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for block in (1, 2):
            for conv in (1, 2):
                layers[f"conv_{block}_{conv}"] = nn.Conv2d(channels, filters, 3)
                layers[f"{activation}_{block}_{conv}"] = _activation(activation)
                channels = filters
            layers[f"max_pool_{block}"] = nn.MaxPool2d(2)
        layers["flatten"] = nn.Flatten()
        flat = _flat_features(nn.Sequential(layers), in_channels, tuple(input_size))
        if dropout:
            layers["dropout"] = nn.Dropout(dropout)
        layers["output"] = nn.Linear(flat, num_classes)
        super().__init__(layers)


class TutorialCNN(nn.Sequential):
    """The classic Keras tutorial net (MNIST / CIFAR-10 guides).

    conv3x3(32) -> pool -> conv3x3(64) -> pool -> conv3x3(64) -> flatten -> dense(64) ->
    dense(classes), 'valid' padding, as in the TensorFlow CNN tutorial.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: tuple[int, int] = (28, 28),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["conv1"] = nn.Conv2d(in_channels, 32, 3)
        layers["act1"] = _activation(activation)
        layers["pool1"] = nn.MaxPool2d(2)
        layers["conv2"] = nn.Conv2d(32, 64, 3)
        layers["act2"] = _activation(activation)
        layers["pool2"] = nn.MaxPool2d(2)
        layers["conv3"] = nn.Conv2d(64, 64, 3)
        layers["act3"] = _activation(activation)
        layers["flatten"] = nn.Flatten()
        flat = _flat_features(nn.Sequential(layers), in_channels, tuple(input_size))
        layers["fc1"] = nn.Linear(flat, 64)
        layers["act4"] = _activation(activation)
        if dropout:
            layers["dropout"] = nn.Dropout(dropout)
        layers["fc2"] = nn.Linear(64, num_classes)
        super().__init__(layers)


@dataclass(frozen=True)
class ZooEntry:
    """How to build a zoo net and what its input looks like by default."""

    builder: Callable[..., nn.Module]
    in_channels: int
    input_size: tuple[int, int]
    num_classes: int
    description: str
    trainable: bool = True  # accepts activation / dropout / in_channels / num_classes

    def preprocessing(self, in_channels: int | None = None, input_size=None) -> Preprocessing:
        return Preprocessing(
            size=tuple(input_size or self.input_size),
            channels=in_channels or self.in_channels,
            mean=(0.0,),
            std=(255.0,),
            resize="shorter",
        )


ZOO: dict[str, ZooEntry] = {
    "tiny-vgg": ZooEntry(TinyVGG, 3, (64, 64), 10, "CNN Explainer's Tiny VGG (19,920 parameters at 64x64x3)"),
    "mnist-cnn": ZooEntry(TutorialCNN, 1, (28, 28), 10, "the Keras MNIST tutorial CNN (28x28x1)"),
    "cifar-cnn": ZooEntry(TutorialCNN, 3, (32, 32), 10, "the TensorFlow CIFAR-10 tutorial CNN (32x32x3)"),
}


def zoo_entry(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        names = ", ".join([*ZOO, "efficientnet-lite0"])
        raise NotFound(f"unknown model {name!r}; the zoo has: {names}") from None


def build(
    name: str,
    in_channels: int | None = None,
    num_classes: int | None = None,
    input_size: tuple[int, int] | None = None,
    activation: str = "relu",
    dropout: float = 0.0,
) -> nn.Module:
    """Build an untrained zoo net; unspecified arguments take the zoo's defaults."""
    entry = zoo_entry(name)
    return entry.builder(
        in_channels=in_channels or entry.in_channels,
        num_classes=num_classes or entry.num_classes,
        input_size=tuple(input_size or entry.input_size),
        activation=activation,
        dropout=dropout,
    )


def build_from_file(name: str, kwargs: Any, source: Any) -> nn.Module:
    """Build a zoo net from arguments read from a file (``source``), refusing what a hostile file could ask.

    Types and ranges are checked, then the net is built on PyTorch's ``meta`` device
    (no memory) to count its parameters before the real one is allocated. Every
    failure is a one-line :class:`ConvscopeError`.
    """
    zoo_entry(name)  # NotFound for a name outside the zoo
    args = _checked_kwargs(kwargs, source)
    try:
        with torch.device("meta"):
            probe = build(name, **args)
    except RuntimeError as exc:  # e.g. an input too small for the convolutions
        raise ConvscopeError(
            f"{source}: {name} cannot be built with {kwargs}: {str(exc).splitlines()[0][:160]}"
        ) from None
    n = sum(p.numel() for p in probe.parameters())
    if n > MAX_PARAMETERS:
        raise ConvscopeError(
            f"{source}: {name} with {kwargs} would have {n:,} parameters, more than the "
            f"{MAX_PARAMETERS:,} convscope builds from a file"
        )
    return build(name, **args)


def _checked_kwargs(kwargs: Any, source: Any) -> dict[str, Any]:
    if not isinstance(kwargs, dict):
        raise ConvscopeError(f"{source}: zoo arguments must be an object, not a {type(kwargs).__name__}")

    def count(key: str, value: Any, top: int) -> int:
        if type(value) is not int or not 1 <= value <= top:
            raise ConvscopeError(
                f"{source}: zoo argument {key} must be a whole number from 1 to {top:,}, not {str(value)[:40]}"
            )
        return value

    checks: dict[str, Callable[[Any], Any]] = {
        "in_channels": lambda v: count("in_channels", v, MAX_CHANNELS),
        "num_classes": lambda v: count("num_classes", v, MAX_CLASSES),
        "input_size": lambda v: _side_pair(v, source),
        "activation": lambda v: _activation_name(v, source),
        "dropout": lambda v: _fraction(v, source),
    }
    unknown = set(kwargs) - set(checks)
    if unknown:
        raise ConvscopeError(
            f"{source}: unknown zoo argument(s) {', '.join(sorted(map(str, unknown)))[:120]}; "
            f"a zoo net takes {', '.join(checks)}"
        )
    return {k: checks[k](v) for k, v in kwargs.items() if v is not None}


def _side_pair(value: Any, source: Any) -> tuple[int, int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(type(s) is int and 1 <= s <= MAX_SIDE for s in value)
    ):
        raise ConvscopeError(
            f"{source}: zoo argument input_size must be two whole numbers from 1 to {MAX_SIDE}, not {str(value)[:40]}"
        )
    return (value[0], value[1])


def _activation_name(value: Any, source: Any) -> str:
    if not (isinstance(value, str) and value in ACTIVATIONS):
        raise ConvscopeError(
            f"{source}: unknown activation {str(value)[:40]!r}; choose one of {', '.join(ACTIVATIONS)}"
        )
    return value


def _fraction(value: Any, source: Any) -> float:
    if type(value) not in (int, float) or not (math.isfinite(value) and 0 <= value < 1):
        raise ConvscopeError(f"{source}: zoo argument dropout must be a number in [0, 1), not {str(value)[:40]}")
    return float(value)
