"""Where in the input a layer's unit looks: its receptive field, measured by gradients.

The field is measured rather than derived from kernel sizes and strides, because
composing layers symbolically breaks on residual branches, functional ops and padding
modules (ResNet's 1x1 strided shortcut, EfficientNet's static "same" padding). For the
layer output (C, h, w) we take, for a central unit ``(cy, cx)`` and a shifted one
``(cy + d, cx + d)``, the gradient of the sum over channels of that position with respect
to a batch of random inputs; the input pixels with a non-zero gradient for any input form
the unit's field (random inputs switch different ReLUs and pool winners on, so their
union covers the paths one image would miss). Per axis:

    stride = (start(c + d) - start(c)) / d      (the box shift; in/out size when clipped)
    box(y) = [offset + y * stride, offset + y * stride + size)

It is computed once per layer (two backward passes), not once per example. A field
that extends past the input border (deep layers) is measured as its visible part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..models.model import Model, as_model
from ..probe import LayerRef, capture, model_state, resolve_layer, run_to


@dataclass(frozen=True)
class ReceptiveField:
    """Per-axis (y, x) geometry of a layer's units in input pixels."""

    size: tuple[int, int]  # height and width of an interior unit's field
    stride: tuple[float, float]  # input pixels per output step
    offset: tuple[float, float]  # input coordinate where unit (0, 0)'s field starts (may be < 0)
    input_size: tuple[int, int]
    output_size: tuple[int, int]

    def box(self, y: int, x: int, clip: bool = True) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` (exclusive ends) of unit (y, x)'s field."""
        t = int(round(self.offset[0] + y * self.stride[0]))
        left = int(round(self.offset[1] + x * self.stride[1]))
        b, r = t + self.size[0], left + self.size[1]
        if clip:
            t, left = max(t, 0), max(left, 0)
            b, r = min(b, self.input_size[0]), min(r, self.input_size[1])
        return t, b, left, r

    def centre(self, y: float, x: float) -> tuple[float, float]:
        """Input coordinate of the centre of unit (y, x)'s field."""
        return (
            self.offset[0] + y * self.stride[0] + (self.size[0] - 1) / 2,
            self.offset[1] + x * self.stride[1] + (self.size[1] - 1) / 2,
        )

    def to_input(self, values: np.ndarray) -> np.ndarray:
        """A layer map (h, w) resampled onto the input grid (H, W): linear interpolation
        between the field centres of neighbouring units, fading to 0 over one stride
        beyond the outermost centres (no unit is centred there); a single unit along an
        axis covers all of it."""
        values = np.asarray(values, dtype=np.float32)
        out = values
        for axis in (0, 1):
            n = values.shape[axis]
            if n == 1:  # one unit along this axis: it stands for the whole extent
                out = np.repeat(out, self.input_size[axis], axis)
                continue
            start, step = self.centre(0, 0)[axis], self.stride[axis]
            centres = start + np.arange(-1, n + 1) * step
            grid = np.arange(self.input_size[axis])
            out = np.apply_along_axis(
                lambda v, grid=grid, centres=centres: np.interp(grid, centres, np.concatenate([[0.0], v, [0.0]])),
                axis,
                out,
            )
        return out.astype(np.float32)


def _support(net: nn.Module, ref: LayerRef, x: torch.Tensor, y: int, xx: int) -> tuple[np.ndarray, np.ndarray]:
    x = x.clone().requires_grad_(True)
    with capture(net, ref, stop=True, detach=False) as box:
        act = run_to(net, x, box)
    (grad,) = torch.autograd.grad(act[:, :, y, xx].sum(), [x])
    mask = (grad.abs().sum((0, 1)) > 0).cpu().numpy()
    return np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))


def receptive_field(
    model: Model | nn.Module, layer: str | nn.Module, samples: int = 8, seed: int = 0
) -> ReceptiveField:
    """Measure the receptive field of ``layer``'s units (see the module docstring)."""
    model = as_model(model)
    net = model.net
    ref = resolve_layer(net, layer)
    c, hi, wi = model.input_shape
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, c, hi, wi, generator=g).to(model.device)
    with model_state(net), torch.enable_grad():
        with torch.no_grad(), capture(net, ref, stop=True) as box:
            shape = run_to(net, x[:1], box).shape
        if len(shape) != 4:  # a flat layer sees the whole input
            return ReceptiveField((hi, wi), (float(hi), float(wi)), (0.0, 0.0), (hi, wi), (1, 1))
        ho, wo = shape[-2:]
        cy, cx = ho // 2, wo // 2
        dy, dx = (1 if cy + 1 < ho else 0), (1 if cx + 1 < wo else 0)
        ry0, rx0 = _support(net, ref, x, cy, cx)
        ry1, rx1 = _support(net, ref, x, cy + dy, cx + dx)
    sizes, strides, offsets = [], [], []
    for r0, r1, d, centre, n_in, n_out in ((ry0, ry1, dy, cy, hi, ho), (rx0, rx1, dx, cx, wi, wo)):
        if len(r0) == 0:  # no gradient at all (a dead layer): fall back to the even split
            r0 = np.arange(n_in)
        start, end = int(r0[0]), int(r0[-1]) + 1
        stride = n_in / n_out
        if d and len(r1):
            if start > 0 and r1[0] > 0:
                stride = float(r1[0] - start) / d
            elif end < n_in and r1[-1] + 1 < n_in:
                stride = float(r1[-1] + 1 - end) / d
        size = end - start
        sizes.append(size)
        strides.append(stride)
        offsets.append(start - centre * stride)
    return ReceptiveField(tuple(sizes), tuple(strides), tuple(offsets), (hi, wi), (int(ho), int(wo)))
