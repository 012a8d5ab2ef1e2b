"""Robustness transforms for feature visualisation: pad, jitter, scale, small rotation.

Optimising an image through random small geometric changes keeps the optimiser from
exploiting pixel-exact patterns (Olah et al. 2017; Lucid's ``standard_transforms``).
Many CNNs (every ``Flatten -> Linear`` net in the zoo) need an input of exactly their
size, so here every transform keeps the model's size: the optimised image is a canvas
``pad`` pixels larger on each side, and each step samples the model-sized view

    canvas_xy = centre + R(angle) / s @ (output_xy - centre) + t

with one bilinear ``grid_sample`` per batch (s: scale, t: jitter in pixels, uniform
random, drawn from a seeded generator so a seed gives the same picture). Outside the
canvas the view sees mid-grey. Without randomness the view is the centre crop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Transforms:
    """Amounts of each random transform (pixels, scale range, degrees)."""

    pad: int = 12
    jitter: float = 12.0
    scale: tuple[float, float] = (0.9, 1.1)
    rotate: float = 10.0

    @classmethod
    def standard(cls, size: tuple[int, int]) -> Transforms:
        """Lucid's standard amounts (pad 12, jitter 8 + 4, scale 0.9-1.1, +-10 degrees) for a
        224-pixel input, with the pixel amounts scaled to the model's input size."""
        f = min(size) / 224.0
        return cls(pad=max(1, round(12 * f)), jitter=max(1.0, round(12 * f, 1)), scale=(0.9, 1.1), rotate=10.0)

    @classmethod
    def none(cls) -> Transforms:
        return cls(pad=0, jitter=0.0, scale=(1.0, 1.0), rotate=0.0)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scale"] = list(self.scale)
        return d

    def view(
        self,
        canvas: torch.Tensor,
        size: tuple[int, int],
        generators: list[torch.Generator] | None = None,
        random: bool = True,
    ) -> torch.Tensor:
        """A model-sized (B, C, H, W) view of the canvas (B, C, H + 2 pad, W + 2 pad) in [0, 1].

        ``generators`` (one per image) draw each image's transform, so an image's
        sequence of transforms does not depend on the other images in the batch.
        """
        b = canvas.shape[0]
        h, w = size
        hc, wc = canvas.shape[-2:]
        if not random or (self.jitter == 0 and self.scale == (1.0, 1.0) and self.rotate == 0):
            top, left = (hc - h) // 2, (wc - w) // 2
            return canvas[..., top : top + h, left : left + w]
        u = torch.stack([torch.rand(4, generator=g) for g in (generators or [None] * b)])
        angle = (u[:, 0] * 2 - 1) * math.radians(self.rotate)
        lo, hi = self.scale
        s = lo + u[:, 1] * (hi - lo)
        tx, ty = (u[:, 2] * 2 - 1) * self.jitter, (u[:, 3] * 2 - 1) * self.jitter
        cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
        # pixel-space map (x, y) -> canvas pixels, then into grid_sample's [-1, 1] units
        theta = torch.stack(
            [
                torch.stack([cos * w / wc, -sin * h / wc, 2 * tx / wc], -1),
                torch.stack([sin * w / hc, cos * h / hc, 2 * ty / hc], -1),
            ],
            1,
        ).to(canvas)
        grid = F.affine_grid(theta, [b, canvas.shape[1], h, w], align_corners=False)
        return F.grid_sample(canvas - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5
