"""Training-time augmentation on a whole uint8 batch at once.

Each image gets one random affine map, applied by a single ``grid_sample`` over the
batch: a rotation by ``theta ~ U(-degrees, degrees)`` about the image centre
(counter-clockwise as displayed), an integer shift ``(dx, dy) ~ U{-pad..pad}^2`` with
zeros coming in at the border (exactly a random crop of the zero-padded image), and
optionally a horizontal flip. With pixel coordinates ``p`` measured from the centre,
output pixel ``p`` reads the input at

    q = R(theta)^-1 (F p - t),    F = diag(-1, 1) if flipped else I,  t = (dx, dy),

bilinearly interpolated. Every random number comes from the ``generator`` passed in,
so a seeded generator reproduces the same batch exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConvscopeError

#: Datasets whose classes change meaning when mirrored (a flipped digit is not a digit).
NO_FLIP = ("digits", "mnist")
#: Names accepted in a comma-separated list of transforms ("shift" is the same as "crop").
KINDS = ("crop", "shift", "rotate", "flip")


@dataclass(frozen=True)
class AugmentParams:
    """The random draw for one batch: angles in degrees (N,), shifts (N, 2) as (dx, dy), flips (N,)."""

    angles: torch.Tensor
    shifts: torch.Tensor
    flips: torch.Tensor


@dataclass(frozen=True)
class Augment:
    """Random crop-with-padding, optional horizontal flip and small rotation.

    ``pad`` is the largest shift in pixels (``None``: one eighth of the smaller side,
    at least 1, i.e. 4 for 28x28 and 32x32); ``degrees`` the largest rotation.
    Call it as ``augment(images_uint8, generator) -> images_uint8``.
    """

    pad: int | None = None
    flip: bool = False
    degrees: float = 10.0

    def __post_init__(self) -> None:
        if self.pad is not None and self.pad < 0:
            raise ConvscopeError(f"augmentation padding must be >= 0, not {self.pad}")
        if not 0 <= self.degrees <= 180:
            raise ConvscopeError(f"augmentation rotation must be within 0..180 degrees, not {self.degrees}")

    def padding(self, size: tuple[int, int]) -> int:
        return self.pad if self.pad is not None else max(1, round(min(size) / 8))

    def sample(self, n: int, size: tuple[int, int], generator: torch.Generator | None = None) -> AugmentParams:
        """Draw the parameters for ``n`` images of ``size`` (always the same three draws)."""
        pad = self.padding(size)
        angles = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * self.degrees
        shifts = torch.randint(-pad, pad + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5
        return AugmentParams(angles, shifts, flips & self.flip)

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ConvscopeError(f"augment expects uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        params = self.sample(len(images), (images.shape[2], images.shape[3]), generator)
        return warp(images, params)


def warp(images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
    """Apply per-image rotation, shift and flip (see the module docstring) to a uint8 batch.

    ``affine_grid`` works in normalised coordinates ``u = 2 p / size``; with
    ``S = diag(W/2, H/2)`` the map above becomes ``u_in = S^-1 R^-1 F S u_out - S^-1 R^-1 t``.
    """
    n, c, h, w = images.shape
    if n == 0:
        return images.clone()
    theta = params.angles.to(torch.float64) * (math.pi / 180)
    cos, sin = torch.cos(theta), torch.sin(theta)
    r_inv = torch.stack((torch.stack((cos, -sin), -1), torch.stack((sin, cos), -1)), -2)  # (N, 2, 2)
    scale = torch.tensor([w / 2, h / 2], dtype=torch.float64)
    flip = torch.ones(n, 2, dtype=torch.float64)
    flip[:, 0] = torch.where(params.flips, -1.0, 1.0).to(torch.float64)
    # S^-1 R^-1 F S, written as a row/column scaling of R^-1
    linear = r_inv * flip[:, None, :] * scale[None, None, :] / scale[None, :, None]
    offset = -(r_inv @ params.shifts.to(torch.float64)[:, :, None])[:, :, 0] / scale
    affine = torch.cat((linear, offset[:, :, None]), dim=2).to(torch.float32).to(images.device)
    grid = F.affine_grid(affine, [n, c, h, w], align_corners=False)
    out = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def augment(
    images: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    pad: int | None = None,
    flip: bool = False,
    degrees: float = 10.0,
) -> torch.Tensor:
    """One-call form of :class:`Augment`: ``augment(images_uint8, generator) -> uint8``."""
    return Augment(pad=pad, flip=flip, degrees=degrees)(images, generator)


def make_augment(spec: Any = True) -> Augment | None:
    """The augmentation for ``--augment``: from a dataset name, options, or a flag.

    - ``None`` / ``False`` -> ``None`` (no augmentation);
    - ``True`` -> :class:`Augment` defaults (no flip);
    - a dataset name (``"mnist"``, ``"cifar10"``, ``"folder:PATH"`` ...) -> shifts and
      rotation, plus horizontal flips except for digits;
    - a comma-separated list of transforms such as ``"crop,rotate,flip"`` (``shift`` is
      an alias of ``crop``); ``""`` -> ``None``;
    - a mapping such as ``{"pad": 2, "flip": True, "degrees": 5}``, or an :class:`Augment`.
    """
    if spec is None or spec is False:
        return None
    if spec is True:
        return Augment()
    if isinstance(spec, Augment):
        return spec
    if isinstance(spec, str):
        kinds = [k.strip().lower() for k in spec.split(",") if k.strip()]
        if not kinds:
            return None
        if set(kinds) <= set(KINDS):
            return Augment(
                pad=None if {"crop", "shift"} & set(kinds) else 0,
                flip="flip" in kinds,
                degrees=Augment.degrees if "rotate" in kinds else 0.0,
            )
        return Augment(flip=spec.lower() not in NO_FLIP)
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"pad", "flip", "degrees"}
        if unknown:
            raise ConvscopeError(f"unknown augmentation option(s) {', '.join(sorted(unknown))}; use pad, flip, degrees")
        return Augment(**dict(spec))
    raise ConvscopeError(f"cannot make an augmentation from a {type(spec).__name__}")
