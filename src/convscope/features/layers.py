"""Naming a layer and reading its output with a forward hook.

A layer is picked as everywhere in convscope: by its qualified module name
(``conv_1_1``, ``layer4.1.conv2``) or by the module object itself. :func:`capture`
registers a forward hook for the duration of a ``with`` block and always removes it,
and can stop the forward pass right after the layer (``stop=True``): when only that
layer's output matters, the rest of the network need not run.
"""

from __future__ import annotations

import difflib
import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ..errors import NotFound


def resolve_layer(net: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """``(qualified name, module)`` for a layer given by name or as a module.

    Raises :class:`NotFound` naming the closest existing layers for a misspelt name.
    """
    if isinstance(layer, nn.Module):
        for name, module in net.named_modules():
            if module is layer:
                return name, module
        raise NotFound(f"the given {type(layer).__name__} is not a layer of this model")
    names = dict(net.named_modules())
    name = str(layer)
    if name in names and name != "":
        return name, names[name]
    close = difflib.get_close_matches(name, [n for n in names if n], n=5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise NotFound(f"no layer named {name!r} in this model{hint}")


class _StopForward(Exception):
    """Raised by the hook to end a forward pass after the captured layer."""


class Capture:
    """What a hooked layer produced during the last forward pass (``.output``)."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None


@contextmanager
def capture(net: nn.Module, module: nn.Module, stop: bool = False, clone: bool = True) -> Iterator[Capture]:
    """Record ``module``'s output during forwards inside the block.

    The output is cloned so an in-place operation further down (``ReLU(inplace=True)``)
    cannot change it behind autograd's back. With ``stop=True`` the forward pass ends
    right after the layer; call the net through :func:`run_to` to absorb that. A module
    called several times in one forward (a shared ``ReLU``) is read at its first call.
    The hook only acts on forwards run by the thread that opened the block, so other
    threads using the same model are not disturbed.
    """
    box = Capture()
    owner = threading.get_ident()

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if threading.get_ident() != owner or box.output is not None:
            return None
        if isinstance(output, (tuple, list)):
            output = output[0]
        box.output = output.clone() if clone else output
        if stop:
            raise _StopForward
        return None

    handle = module.register_forward_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def run_to(net: nn.Module, x: torch.Tensor, box: Capture) -> torch.Tensor:
    """Run ``net(x)`` under a :func:`capture` and return the captured layer output."""
    box.output = None
    try:
        net(x)
    except _StopForward:
        pass
    if box.output is None:
        raise NotFound("the chosen layer was not used by the model's forward pass")
    return box.output


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Put the net in eval mode for the block and restore each module's own mode after."""
    modes = [(m, m.training) for m in net.modules()]
    net.eval()
    try:
        yield net
    finally:
        for m, training in modes:
            m.training = training
