"""Picking the layer an explanation looks at: a layer reference checked by one dry run.

Layers are named as everywhere in convscope (:mod:`convscope.probe`): ``layer4.1.relu`` is
that module's first call in a forward, ``layer4.1.relu#2`` its second. With no layer
given, every method, the CLI and the page's Why? panel take the last convolution block's output
before any pooling (:func:`convscope.probe.default_layer`, through :func:`default_of`). A trace
record that no module produces (``add_1``, ``conv2d_1`` of a net calling ``F.conv2d``) is a layer
too, by its name in the trace summary.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConvscopeError
from ..probe import LayerRef, default_layer, layer_calls, module_calls
from ..probe import resolve_layer as parse_layer


def resolve_layer(net: nn.Module, layer: str | nn.Module | LayerRef | None, x: torch.Tensor) -> LayerRef:
    """What the user gave as a :class:`LayerRef` carrying its output shape (a dry run on ``x[:1]``)."""
    ref = parse_layer(net, layer) if layer is not None else None
    if ref is None:  # fx-node records only when no module call qualifies (one dry run less)
        found = default_of(net, module_calls(net, x[:1])) or default_of(net, layer_calls(net, x[:1]))
        if found is None:
            raise ConvscopeError("the model has no layer with a spatial (B, C, H, W) output; pass layer=")
        return found
    calls = module_calls(net, x[:1]) if ref.name in dict(net.named_modules()) else layer_calls(net, x[:1])
    found = next((c for c in calls if c == ref), None)
    if found is None:
        times = sum(c.name == ref.name for c in calls)
        raise ConvscopeError(
            f"layer {str(ref)!r} is not reached in the model's forward "
            f"({ref.name!r} runs {times} time{'s' if times != 1 else ''})"
        )
    if len(found.shape) != 4:
        raise ConvscopeError(f"layer {str(ref)!r} outputs shape {found.shape}, not a (B, C, H, W) feature map")
    return found


def default_of(net: nn.Module, calls: list[LayerRef]) -> LayerRef | None:
    """The default layer among one forward's ``calls``: module calls first, fx-node records only
    when no module call qualifies (what :func:`resolve_layer` and the page's layer menu both use)."""
    modules = dict(net.named_modules())
    return default_layer(net, [c for c in calls if c.name in modules]) or default_layer(net, calls)
