"""Image parameterisations for feature visualisation: what the optimiser actually moves.

Both map free parameters to a batch of images in pixel space ``[0, 1]`` (B, C, H, W):

* ``pixel``: one free value per pixel, squashed by a sigmoid. Gradient ascent on raw
  pixels quickly fills the image with high-frequency patterns the network happens to
  respond to.
* ``fft``: Olah et al., "Feature Visualization" (Distill 2017), as in Lucid's
  ``fft_image``: the image is the inverse real FFT of a learnt spectrum whose
  coefficients are scaled by ``1 / max(f, 1/max(H, W))`` (f: the spatial frequency in
  cycles per pixel), so that all frequencies have roughly equal energy at the start and
  Adam's per-coordinate steps do not favour high frequencies:

      image = irfft2(scale * spectrum, norm="ortho") / 4

  For 3-channel nets the colours are then "decorrelated": the three channels are mixed
  by the square root of ImageNet's colour covariance (normalised by its largest column
  norm), so each free channel moves along a principal colour direction. One-channel
  nets skip that step. A sigmoid maps the result into [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConvscopeError

PARAMETERISATIONS = ("fft", "pixel")

# square root of ImageNet's RGB covariance (from its SVD), as published with Lucid
COLOR_CORRELATION_SVD_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])


def _decorrelation_matrix() -> torch.Tensor:
    m = COLOR_CORRELATION_SVD_SQRT
    return m / m.norm(dim=0).max()


class ImageParam(nn.Module):
    """Free parameters -> images in [0, 1] of shape (batch, channels, height, width).

    ``generators`` (one per image) seed each image's random start.
    """

    def __init__(
        self,
        batch: int,
        channels: int,
        size: tuple[int, int],
        kind: str = "fft",
        decorrelate: bool | None = None,
        sd: float = 0.01,
        generators: list[torch.Generator] | None = None,
    ) -> None:
        super().__init__()
        if kind not in PARAMETERISATIONS:
            raise ConvscopeError(f"unknown parameterisation {kind!r}; choose one of {', '.join(PARAMETERISATIONS)}")
        h, w = size
        self.kind, self.size, self.channels = kind, (int(h), int(w)), int(channels)
        self.decorrelate = (kind == "fft" and channels == 3) if decorrelate is None else bool(decorrelate)
        if self.decorrelate and channels != 3:
            raise ConvscopeError("colour decorrelation needs 3-channel images")
        if kind == "fft":
            self.register_buffer("scale", fft_scale(h, w))
            shape = (batch, channels, h, w // 2 + 1, 2)
        else:
            shape = (batch, channels, h, w)
        # one generator per image: an image's start does not depend on its batch-mates
        gens = generators or [None] * batch
        self.raw = nn.Parameter(torch.stack([torch.randn(shape[1:], generator=g) for g in gens]) * sd)
        self.register_buffer("color", _decorrelation_matrix())

    def forward(self) -> torch.Tensor:
        h, w = self.size
        if self.kind == "fft":
            spectrum = torch.view_as_complex((self.scale[..., None] * self.raw).contiguous())
            x = torch.fft.irfftn(spectrum, s=(h, w), dim=(-2, -1), norm="ortho") / 4.0
        else:
            x = self.raw
        if self.decorrelate:
            x = torch.einsum("bchw,dc->bdhw", x, self.color)
        return torch.sigmoid(x)


def fft_scale(h: int, w: int, decay_power: float = 1.0) -> torch.Tensor:
    """``1 / max(f, 1/max(h, w)) ** decay_power`` on the rfft2 frequency grid (h, w//2+1)."""
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freqs = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / torch.clamp(freqs, min=1.0 / max(h, w)) ** decay_power
