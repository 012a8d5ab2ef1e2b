"""Seeded data augmentation on uint8 image batches: small shifts, rotations, flips.

One random affine map per image, drawn from the caller's ``torch.Generator`` so a run
is reproducible and resumable. A shift by ``(tx, ty)`` pixels and a rotation by
``theta`` about the centre is, in the normalised coordinates of ``affine_grid``
(-1..1 across the image)::

    [x_in]   [ cos t  -sin t ] [x_out]   [2 tx / W]
    [y_in] = [ sin t   cos t ] [y_out] + [2 ty / H]

then bilinear sampling with zeros outside (the black background of MNIST-like data);
a flip negates the x column. Flips are opt-in: a mirrored digit is another glyph.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import ConvscopeError

KINDS = ("shift", "rotate", "flip")
DEFAULT = "shift,rotate"
Augment = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def parse_augment(spec: str | None) -> tuple[str, ...]:
    """``"shift,rotate"`` -> ("shift", "rotate"); None or "" -> no augmentation."""
    if not spec:
        return ()
    kinds = tuple(k.strip() for k in spec.split(",") if k.strip())
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ConvscopeError(f"unknown augmentation {bad[0]!r}; choose from {', '.join(KINDS)} (comma-separated)")
    return kinds


def make_augment(spec: str | None, max_shift: float = 2.0, max_degrees: float = 10.0) -> Augment | None:
    """A function ``(uint8 batch, generator) -> augmented uint8 batch``, or None.

    ``max_shift`` is in pixels, ``max_degrees`` in degrees; both drawn uniformly in
    ``[-max, max]`` per image.
    """
    kinds = parse_augment(spec)
    if not kinds:
        return None

    def augment(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        b, _, h, w = images.shape

        def uniform(scale: float) -> torch.Tensor:
            return (torch.rand(b, generator=generator) * 2 - 1) * scale

        theta = uniform(math.radians(max_degrees)) if "rotate" in kinds else torch.zeros(b)
        tx = uniform(max_shift) if "shift" in kinds else torch.zeros(b)
        ty = uniform(max_shift) if "shift" in kinds else torch.zeros(b)
        flip = (torch.rand(b, generator=generator) < 0.5) if "flip" in kinds else torch.zeros(b, dtype=torch.bool)
        sign = 1.0 - 2.0 * flip.float()
        cos, sin = torch.cos(theta), torch.sin(theta)
        matrix = torch.stack([
            torch.stack([cos * sign, -sin, 2 * tx / w], 1),
            torch.stack([sin * sign, cos, 2 * ty / h], 1),
        ], 1)
        grid = F.affine_grid(matrix, (b, images.shape[1], h, w), align_corners=False)
        out = F.grid_sample(images.float(), grid.to(images.device), mode="bilinear",
                            padding_mode="zeros", align_corners=False)
        return out.round().clamp(0, 255).to(torch.uint8)

    return augment
