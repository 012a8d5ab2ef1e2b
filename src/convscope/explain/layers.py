"""Picking the layer an explanation looks at: by qualified name, by module, or by a dry run.

A module may be called several times in one forward (ResNet's ``relu``, EfficientNet's
``_swish``); a layer reference therefore names the module *and* which of its calls is
meant. We always take its last call (as Captum does), which is the one nearest the output.
"""

from __future__ import annotations

import difflib
import threading
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ConvscopeError


@dataclass(frozen=True)
class LayerRef:
    """A module by qualified name, the call of it that is meant (0-based), and its output shape."""

    name: str
    call: int
    shape: tuple[int, ...]


def module_name(net: nn.Module, module: nn.Module) -> str:
    for name, m in net.named_modules():
        if m is module:
            return name
    raise ConvscopeError(f"the given {type(module).__name__} module is not part of the model")


def get_module(net: nn.Module, name: str) -> nn.Module:
    modules = dict(net.named_modules())
    if name in modules:
        return modules[name]
    close = difflib.get_close_matches(name, [n for n in modules if n], n=5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ConvscopeError(f"the model has no layer named {name!r}{hint}")


def dry_run(net: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...]]]:
    """Every module call of one forward in completion order: (qualified name, output shape).

    Only calls made from this thread are recorded, so a dry run never sees another
    thread's forward on the same net.
    """
    me = threading.get_ident()
    calls: list[tuple[str, tuple[int, ...]]] = []
    handles = []

    def make(name: str):
        def hook(_m, _i, out):
            if threading.get_ident() == me:
                calls.append((name, tuple(out.shape) if isinstance(out, torch.Tensor) else ()))
        return hook

    try:
        for name, m in net.named_modules():
            if name:
                handles.append(m.register_forward_hook(make(name)))
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return calls


def resolve_layer(net: nn.Module, layer: str | nn.Module | None, x: torch.Tensor) -> LayerRef:
    """Turn what the user gave into a :class:`LayerRef` (a dry run on ``x[:1]``).

    ``None`` picks the last module call whose output is spatial (4-D with more than
    one position): the last convolutional feature map, where CAM methods look.
    """
    if isinstance(layer, nn.Module):
        layer = module_name(net, layer)
    if layer is not None and not isinstance(layer, str):
        raise ConvscopeError(f"layer must be a qualified module name or a module, not {type(layer).__name__}")
    if layer is not None:
        get_module(net, layer)  # clear error for a wrong name
    calls = dry_run(net, x[:1])
    if layer is None:
        spatial = [c for c in calls if len(c[1]) == 4 and c[1][2] * c[1][3] > 1]
        if not spatial:
            raise ConvscopeError("the model has no layer with a spatial (B, C, H, W) output; pass layer=")
        layer = spatial[-1][0]
    mine = [shape for name, shape in calls if name == layer]
    if not mine:
        raise ConvscopeError(f"layer {layer!r} is not called in the model's forward")
    if len(mine[-1]) != 4:
        raise ConvscopeError(f"layer {layer!r} outputs shape {mine[-1]}, not a (B, C, H, W) feature map")
    return LayerRef(layer, len(mine) - 1, mine[-1])


def spatial_layers(net: nn.Module, x: torch.Tensor) -> list[LayerRef]:
    """Every module whose (last) output is a spatial feature map, in forward order: the
    choices a layer menu offers for the CAM family (one dry run on ``x[:1]``)."""
    calls = dry_run(net, x[:1])
    last = {name: (k, shape) for k, (name, shape) in enumerate(calls)}
    counts: dict[str, int] = {}
    for name, _ in calls:
        counts[name] = counts.get(name, 0) + 1
    ordered = sorted(last.items(), key=lambda item: item[1][0])
    return [LayerRef(name, counts[name] - 1, shape) for name, (_, shape) in ordered
            if len(shape) == 4 and shape[2] * shape[3] > 1]
