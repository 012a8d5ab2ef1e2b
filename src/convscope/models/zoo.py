"""The model zoo: small CNNs from the tutorials, addressed by name.

Every zoo net is an ``nn.Sequential`` with named children, so each layer has a short,
stable qualified name (``conv_1_1``, ``relu_1_1``, ``max_pool_1`` ...) that the trace,
the explorer and the attribution methods all use. The builders take the choices the
tutorials discuss (activation, dropout) so a learner can compare them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import NotFound
from .preprocessing import Preprocessing

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
