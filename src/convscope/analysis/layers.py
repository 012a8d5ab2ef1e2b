"""Per-layer facts for the report from one forward pass: output shapes, parameters, activation maps.

A light stand-in for the full trace (``convscope.trace``) where only leaf modules are
needed: the report's parameter table and the activation maps of one sample. Layers are
named and read through :mod:`convscope.probe` (``relu#2`` is a shared module's second
call; maps are copies taken as the layer produced them, before any in-place op).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.model import Model, as_model
from ..probe import capture, model_state, module_calls, resolve_layer, spatial_layers


def leaf_modules(net: nn.Module) -> list[str]:
    """Qualified names of modules without children, in registration order."""
    return [name for name, m in net.named_modules() if name and not list(m.children())]


def _leaf_calls(model: Model, x: torch.Tensor | None = None):
    x = torch.zeros(1, *model.input_shape) if x is None else x[:1]
    leaves = set(leaf_modules(model.net))
    with model_state(model.net):
        return [r for r in module_calls(model.net, x.to(model.device)) if r.name in leaves]


def layer_table(model: Model | nn.Module, x: torch.Tensor | None = None) -> list[dict[str, Any]]:
    """One row per leaf module: name, kind (class), output shape for one input, parameter count.

    A module called several times (or never) in the forward shows its first (or no) shape.
    """
    model = as_model(model)
    shapes = {r.name: r.shape for r in reversed(_leaf_calls(model, x))}
    modules = dict(model.net.named_modules())
    return [
        {
            "name": name,
            "kind": type(modules[name]).__name__,
            "output_shape": list(shapes[name][1:]) if shapes.get(name) else None,
            "parameters": sum(p.numel() for p in modules[name].parameters(recurse=False)),
        }
        for name in leaf_modules(model.net)
    ]


def report_layers(model: Model | nn.Module, limit: int = 10) -> list[str]:
    """The layers whose maps the report shows: leaf-module calls with spatial outputs
    (:func:`convscope.probe.spatial_layers`), at most ``limit``, evenly spread, convs preferred."""
    model = as_model(model)
    leaves = set(leaf_modules(model.net))
    with model_state(model.net):
        refs = [
            r
            for r in spatial_layers(model.net, torch.zeros(1, *model.input_shape, device=model.device))
            if r.name in leaves
        ]
    if len(refs) > limit:
        modules = dict(model.net.named_modules())
        convs = [r for r in refs if isinstance(modules[r.name], nn.Conv2d)]
        refs = convs if convs else refs
        refs = [refs[i] for i in np.unique(np.linspace(0, len(refs) - 1, limit).round().astype(int))]
    return [str(r) for r in refs]


def activation_maps(model: Model | nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, np.ndarray]:
    """The output maps (C, H, W) of ``layers`` for the first image of ``x``, as float32 arrays
    (a layer the forward does not reach is left out)."""
    model = as_model(model)
    refs = {name: resolve_layer(model.net, name) for name in layers}
    with model_state(model.net), torch.no_grad(), capture(model.net, list(refs.values())) as box:
        model.net(x[:1].to(model.device))
    return {name: box.values[ref][0].float().cpu().numpy() for name, ref in refs.items() if ref in box.values}
