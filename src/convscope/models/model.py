"""``convscope.Model``: a network together with what it takes to feed it and read it.

A bare ``nn.Module`` knows neither its class names nor how an image becomes its input.
Every view needs both, so they travel together. Functions across convscope accept a
``Model`` or a bare module (wrapped by :func:`as_model` with guessed preprocessing).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import probe
from ..errors import ConvscopeError
from ..outputs import OutputSpec, as_probabilities, select_output
from .preprocessing import ImageLike, Preprocessing


class Model:
    """A network (``.net``), its class names (``.classes``) and input preprocessing.

    ``output`` is the model's default output selector (:mod:`convscope.outputs`): for a net
    that returns ``{"logits": ..., "features": ...}`` or ``(logits, aux)``, ``Model(net,
    output="logits")`` (or ``0``) is what every view, the page and the CLI read as the scores
    unless a call passes its own ``output=``.
    """

    def __init__(
        self,
        net: nn.Module,
        classes: Sequence[str] | None = None,
        preprocessing: Preprocessing | None = None,
        name: str = "model",
        meta: dict[str, Any] | None = None,
        output: OutputSpec = None,
    ) -> None:
        self.net = net
        self.output = output
        self.preprocessing = preprocessing or guess_preprocessing(net)
        self.name = name
        self.meta = dict(meta or {})
        self.classes = list(classes) if classes is not None else None

    # -- what the net is -----------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for p in self.net.parameters():
            return p.device
        for b in self.net.buffers():
            return b.device
        return torch.device("cpu")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input."""
        return (self.preprocessing.channels, *self.preprocessing.size)

    def class_name(self, index: int) -> str:
        if self.classes is not None and 0 <= index < len(self.classes):
            return str(self.classes[index])
        return str(index)

    def to(self, device: str | torch.device) -> Model:
        self.net.to(device)
        return self

    def eval(self) -> Model:
        self.net.eval()
        return self

    def __repr__(self) -> str:
        c, h, w = self.input_shape
        n = sum(p.numel() for p in self.net.parameters())
        k = len(self.classes) if self.classes is not None else "?"
        return f"Model({self.name!r}, input {c}x{h}x{w}, {k} classes, {n:,} parameters)"

    # -- feeding it ---------------------------------------------------------------
    def preprocess(self, image: ImageLike) -> torch.Tensor:
        """Any image (path, bytes, PIL, array) -> input tensor (C, H, W) on the CPU."""
        return self.preprocessing(image)

    def batch(self, inputs: Any) -> torch.Tensor:
        """Turn what a user has into a batch (B, C, H, W) on the model's device.

        Accepts a tensor (C, H, W) or (B, C, H, W), one image (path, bytes, PIL,
        array) or a list of images. Wrong shapes get a clear error naming what the
        model expects.
        """
        if isinstance(inputs, torch.Tensor):
            x = inputs
        elif isinstance(inputs, (list, tuple)) and inputs and not isinstance(inputs[0], (int, float)):
            x = torch.stack([self.preprocess(i) if not isinstance(i, torch.Tensor) else i for i in inputs])
        else:
            x = self.preprocess(inputs)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4:
            raise ConvscopeError(f"expected an image batch (B, C, H, W), got shape {tuple(x.shape)}")
        c = self.preprocessing.channels
        if x.shape[1] != c:
            raise ConvscopeError(
                f"{self.name} expects {c}-channel input, got {x.shape[1]} channels (shape {tuple(x.shape)})"
            )
        return x.to(self.device, dtype=torch.float32)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def scores(self, out: Any, output: OutputSpec = None) -> torch.Tensor:
        """The tensor ``output`` (default: this model's ``output``) selects from a forward's result."""
        return select_output(out, self.output if output is None else output)

    @torch.no_grad()
    def predict(self, inputs: Any, top: int = 5) -> list[list[tuple[str, float]]]:
        """Top classes with probabilities for each input: ``[[(name, prob), ...], ...]``."""
        with probe.model_state(self.net):
            probs = as_probabilities(self.scores(self.net(self.batch(inputs))).float())  # a softmax net's own
        values, indices = probs.topk(min(top, probs.shape[-1]), dim=-1)
        return [
            [(self.class_name(int(i)), float(v)) for v, i in zip(vs, idx)]
            for vs, idx in zip(values.cpu(), indices.cpu())
        ]

    def to_display(self, x: torch.Tensor) -> np.ndarray:
        """Network input back to uint8 pixels (H, W, C) for figures."""
        return self.preprocessing.to_display(x)


def guess_preprocessing(net: nn.Module, size: tuple[int, int] = (224, 224)) -> Preprocessing:
    """A best guess for a bare module: channels from its first conv, pixels scaled to 0..1."""
    channels = 3
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            channels = m.in_channels
            break
    return Preprocessing(size=size, channels=channels if channels in (1, 3) else 3)


def model_fingerprint(model: Model | nn.Module) -> str:
    """The content hash cache keys use: the net's (:func:`convscope.probe.model_fingerprint`:
    architecture, parameter and buffer bytes) with the model's preprocessing, classes and output
    selector. Not
    its name: the same weights under another name compute the same results."""
    m = as_model(model)
    output = (
        m.output
        if m.output is None or isinstance(m.output, (str, int))
        else f"{getattr(m.output, '__module__', '')}.{getattr(m.output, '__qualname__', type(m.output).__name__)}"
    )
    return probe.model_fingerprint(
        m.net, {"preprocessing": m.preprocessing.to_dict(), "classes": m.classes, "output": output}
    )


def as_model(model: Model | nn.Module, name: str | None = None) -> Model:
    """Wrap a bare ``nn.Module`` (or pass a :class:`Model` through)."""
    if isinstance(model, Model):
        return model
    if isinstance(model, nn.Module):
        return Model(model, name=name or type(model).__name__)
    raise ConvscopeError(f"expected a convscope.Model or torch.nn.Module, got {type(model).__name__}")


def as_module(model: Model | nn.Module) -> nn.Module:
    return model.net if isinstance(model, Model) else model
