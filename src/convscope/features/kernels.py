"""A convolution's kernels as arrays, with the value scale needed to draw them.

First-layer kernels look at pixels, so they can be shown as small images (RGB for
colour nets, grey for one-channel nets); deeper kernels look at feature maps, so each
output channel is shown as a row of per-input-channel kernels. Both are drawn on one
symmetric scale ``[-scale, scale]`` with ``scale = max |w|`` over the shown kernels,
so 0 is always the same mid colour (see :mod:`convscope.render.features`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..errors import ConvscopeError
from ..models.model import Model, as_module
from ..probe import get_module, resolve_layer


@dataclass
class Kernels:
    """The weights of one convolution layer."""

    layer: str
    weight: np.ndarray  # (out_channels, in_channels / groups, kh, kw)
    bias: np.ndarray | None  # (out_channels,)
    scale: float  # max |weight|: the symmetric value range for drawing
    first: bool  # the net's first convolution, reading the image itself
    groups: int

    @property
    def as_image(self) -> bool:
        """Whether each kernel can be drawn as a small grey / RGB image."""
        return self.first and self.weight.shape[1] in (1, 3)


def kernels(model: Model | nn.Module, layer: str | nn.Module, channels: list[int] | None = None) -> Kernels:
    """The kernels of convolution ``layer`` (optionally only some output ``channels``)."""
    net = as_module(model)
    name = resolve_layer(net, layer).name
    module = get_module(net, name)
    if not isinstance(module, nn.Conv2d):
        convs = [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]
        if len(convs) != 1:
            raise ConvscopeError(
                f"{name or 'the model'} is a {type(module).__name__}, not a convolution"
                + (f"; its convolutions are {', '.join(f'{name}.{c}' for c in convs[:6])}" if convs else "")
            )
        name = f"{name}.{convs[0]}"
        module = get_module(net, name)
    first_conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    w = module.weight.detach().float().cpu()
    b = module.bias.detach().float().cpu() if module.bias is not None else None
    if channels is not None:
        bad = [c for c in channels if not 0 <= c < w.shape[0]]
        if bad:
            raise ConvscopeError(f"channel(s) {bad} out of range: {name} has {w.shape[0]} output channels")
        index = torch.as_tensor(channels, dtype=torch.long)
        w, b = w[index], (b[index] if b is not None else None)
    return Kernels(
        layer=name,
        weight=w.numpy(),
        bias=None if b is None else b.numpy(),
        scale=float(w.abs().max()) or 1.0,
        first=module is first_conv,
        groups=module.groups,
    )
