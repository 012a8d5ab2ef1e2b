"""Per-layer facts from one forward pass with hooks: output shapes, parameters, activation maps.

A light stand-in for the full trace (``convscope.trace``) where only leaf modules are
needed: the report's parameter table and the activation maps of one sample.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.model import Model, as_model
from .hooks import capture


def leaf_modules(net: nn.Module) -> list[str]:
    """Qualified names of modules without children, in registration order."""
    return [name for name, m in net.named_modules() if name and not list(m.children())]


def _forward_capture(model: Model, x: torch.Tensor, layers: list[str]) -> dict[str, torch.Tensor]:
    was_training = model.net.training
    model.net.eval()
    try:
        with torch.no_grad(), capture(model.net, layers) as store:
            model.net(x.to(model.device))
            return dict(store)
    finally:
        model.net.train(was_training)


def layer_table(model: Model | nn.Module, x: torch.Tensor | None = None) -> list[dict[str, Any]]:
    """One row per leaf module: name, kind (class), output shape for one input, parameter count.

    A module called several times (or never) in the forward shows its last (or no) shape.
    """
    model = as_model(model)
    layers = leaf_modules(model.net)
    x = torch.zeros(1, *model.input_shape) if x is None else x[:1]
    outputs = _forward_capture(model, x, layers)
    modules = dict(model.net.named_modules())
    rows = []
    for name in layers:
        out = outputs.get(name)
        rows.append({"name": name, "kind": type(modules[name]).__name__,
                     "output_shape": list(out.shape[1:]) if isinstance(out, torch.Tensor) else None,
                     "parameters": sum(p.numel() for p in modules[name].parameters(recurse=False))})
    return rows


def spatial_layers(model: Model | nn.Module, limit: int = 10) -> list[str]:
    """Leaf layers with (B, C, H, W) outputs; at most ``limit`` of them, evenly spread, convs preferred."""
    model = as_model(model)
    layers = leaf_modules(model.net)
    outputs = _forward_capture(model, torch.zeros(1, *model.input_shape), layers)
    spatial = [n for n in layers if isinstance(outputs.get(n), torch.Tensor) and outputs[n].dim() == 4]
    if len(spatial) > limit:
        modules = dict(model.net.named_modules())
        convs = [n for n in spatial if isinstance(modules[n], nn.Conv2d)]
        spatial = convs if convs else spatial
        spatial = [spatial[i] for i in np.unique(np.linspace(0, len(spatial) - 1, limit).round().astype(int))]
    return spatial


def activation_maps(model: Model | nn.Module, x: torch.Tensor, layers: list[str]) -> dict[str, np.ndarray]:
    """The output maps (C, H, W) of ``layers`` for the first image of ``x``, as float32 arrays."""
    model = as_model(model)
    outputs = _forward_capture(model, x[:1], layers)
    return {n: outputs[n][0].float().cpu().numpy() for n in layers if n in outputs}
