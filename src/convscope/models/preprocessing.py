"""How a model wants its input: decode any image, fix orientation and channels, resize,
centre-crop and normalise.

The settings are plain JSON-able values so they can travel inside a checkpoint and to
the web page, and the inverse (:meth:`Preprocessing.to_display`) lets every view show
the exact pixels the network saw.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConvscopeError

ImageLike = Image.Image | str | Path | bytes | np.ndarray


@dataclass(frozen=True)
class Preprocessing:
    """Pixel (0..255) -> network input: ``(pixel - mean) / std`` per channel.

    ``size`` is (height, width). ``resize`` is ``"shorter"`` (resize the shorter side to
    the target, then centre-crop: the ImageNet habit) or ``"stretch"`` (resize to exactly
    ``size``). Means and stds are in pixel units so that both ``x / 255`` (mean 0, std 255)
    and EfficientNet's ``(x - 127) / 128`` are written the same way.
    """

    size: tuple[int, int]
    channels: int = 3
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (255.0,)
    resize: str = "shorter"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConvscopeError(f"channels must be 1 or 3, not {self.channels}")
        if self.resize not in ("shorter", "stretch"):
            raise ConvscopeError(f"resize must be 'shorter' or 'stretch', not {self.resize!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))

    # -- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(
            size=tuple(d["size"]),
            channels=int(d.get("channels", 3)),
            mean=tuple(d.get("mean", (0.0,))),
            std=tuple(d.get("std", (255.0,))),
            resize=d.get("resize", "shorter"),
        )

    # -- the forward direction -----------------------------------------------------
    def to_pil(self, image: ImageLike) -> Image.Image:
        """Decode and geometrically prepare an image (no normalisation yet)."""
        pil = open_image(image)
        pil = ImageOps.exif_transpose(pil)
        pil = _to_mode(pil, "L" if self.channels == 1 else "RGB")
        h, w = self.size
        if pil.size != (w, h):
            if self.resize == "stretch":
                pil = pil.resize((w, h), Image.BILINEAR)
            else:
                pil = ImageOps.fit(pil, (w, h), Image.BILINEAR, centering=(0.5, 0.5))
        return pil

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """(..., C, H, W) pixels in 0..255 -> network input."""
        c = pixels.shape[-3]
        mean = torch.tensor(_per_channel(self.mean, c), dtype=torch.float32).view(c, 1, 1)
        std = torch.tensor(_per_channel(self.std, c), dtype=torch.float32).view(c, 1, 1)
        return (pixels.float() - mean) / std

    def __call__(self, image: ImageLike) -> torch.Tensor:
        """Any image -> float32 tensor (C, H, W) ready for the network."""
        arr = np.asarray(self.to_pil(image), dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        return self.normalize(torch.from_numpy(arr).permute(2, 0, 1).contiguous())

    # -- the way back, for display -------------------------------------------------
    def to_display(self, x: torch.Tensor) -> np.ndarray:
        """Network input (C, H, W) or (B, C, H, W) -> uint8 pixels (H, W, C) / (B, H, W, C)."""
        x = x.detach().float().cpu()
        c = x.shape[-3]
        mean = torch.tensor(_per_channel(self.mean, c)).view(c, 1, 1)
        std = torch.tensor(_per_channel(self.std, c)).view(c, 1, 1)
        pixels = (x * std + mean).clamp(0, 255).round().to(torch.uint8)
        return pixels.movedim(-3, -1).numpy()


def _per_channel(values: tuple[float, ...], channels: int) -> list[float]:
    if len(values) == 1:
        return list(values) * channels
    if len(values) != channels:
        raise ConvscopeError(f"normalisation has {len(values)} values for {channels} channels")
    return list(values)


def _to_mode(pil: Image.Image, mode: str) -> Image.Image:
    """Convert any Pillow mode (palette, alpha, CMYK, 16-bit, float) to L or RGB.

    Transparent pixels are composited on white, which is what a person sees in a viewer,
    unless what is drawn is light (the mean grey of its opaque pixels above half): then on
    black, since light ink on white vanishes (a white digit drawn on a transparent layer, what
    drawing apps export, became a blank white square that even ``--invert`` cannot bring back).
    16-bit and float greyscale images are rescaled to 0..255 rather than clipped.
    """
    if pil.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(pil, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        pil = Image.fromarray(((arr - lo) * scale).astype(np.uint8), "L")
    if pil.mode == "P":
        pil = pil.convert("RGBA")
    if pil.mode in ("RGBA", "LA", "PA"):
        rgba = pil.convert("RGBA")
        grey, alpha = np.asarray(rgba.convert("L"), dtype=np.float32), np.asarray(rgba.getchannel("A"))
        drawn = grey[alpha >= 128]
        shade = 0 if drawn.size and float(drawn.mean()) > 127.5 else 255
        pil = Image.alpha_composite(Image.new("RGBA", pil.size, (shade, shade, shade, 255)), rgba)
    return pil.convert(mode)


def open_image(image: ImageLike) -> Image.Image:
    """Open an image from a path, bytes, a NumPy array or a PIL image, fully decoded.

    Raises :class:`ConvscopeError` with a one-line reason for anything that is not a
    readable image (missing file, wrong format, truncated data, decompression bomb).
    """
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise ConvscopeError(f"no such image file: {path}")
        data = path.read_bytes()
        label = str(path)
    elif isinstance(image, (bytes, bytearray)):
        data = bytes(image)
        label = "the uploaded data"
    else:
        raise ConvscopeError(f"cannot read an image from a {type(image).__name__}")
    if not data:
        raise ConvscopeError(f"{label} is empty (0 bytes), not an image")
    try:
        pil = Image.open(io.BytesIO(data))
        pil.load()
    except Image.DecompressionBombError as exc:
        raise ConvscopeError(f"{label} is too large to decode safely: {exc}") from None
    except UnidentifiedImageError:
        raise ConvscopeError(f"{label} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConvscopeError(f"{label} is a damaged or truncated image: {exc}") from None
    return pil


def _from_array(arr: np.ndarray) -> Image.Image:
    """A NumPy image (H, W) or (H, W, C) with C = 1 to 4 as Pillow would have decoded its file.

    uint8 is pixels; floats up to 1.0 are scaled by 255, other floats and integers are pixels
    (clipped to 0..255). 16-bit arrays (what imageio, scikit-image and OpenCV return for a
    16-bit PNG or TIFF) get what the file itself gets: greyscale is rescaled over its own
    range in :func:`_to_mode`, colour keeps its high byte, rather than every value above 255
    clipping to white.
    """
    shape = tuple(arr.shape)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (2, 3, 4)):
        hint = " (channels first? pass arr.transpose(1, 2, 0))" if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) else ""
        raise ConvscopeError(f"an image array is (H, W) or (H, W, C) with 1 to 4 channels, not {shape}{hint}")
    if arr.dtype in (np.uint16, np.int16):
        if arr.ndim == 2:
            return Image.fromarray(arr.astype(np.int32), "I")
        return Image.fromarray((arr.astype(np.int32).clip(0, 65535) >> 8).astype(np.uint8))
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)
