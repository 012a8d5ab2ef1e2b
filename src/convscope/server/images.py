"""The images the explorer can trace: built-in samples and the user's uploads.

An image is addressed by a short id that travels in URLs: ``sample-N`` for the N-th
built-in sample of a model, ``upload-<hash>`` for uploaded bytes (the hash of their
content, so the same file uploaded twice is one image and its trace is cached once).
Uploads are checked before they are decoded (byte size, pixel count) so an enormous
file is refused with a clear message instead of exhausting memory.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConvscopeError, NotFound
from ..i18n import message
from ..lru import LRU
from ..models.preprocessing import open_image

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
PHOTOS = ("coffee", "chelsea", "astronaut", "rocket")
DIGITS = [str(i) for i in range(10)]


class TooLarge(ConvscopeError):
    """An upload over the size limits (HTTP 413)."""


@dataclass(frozen=True)
class Sample:
    """One built-in image: its id, a human label and the pixels (H, W) or (H, W, 3) uint8.

    A label or source that is a sentence of ours (a digit's "digit 7", "MNIST test split") also
    travels as a catalogue message, so the page writes it in the reader's language; a photo's
    name and "scikit-image" are names, shown as they are.
    """

    id: str
    label: str
    source: str
    pixels: np.ndarray
    label_i18n: dict[str, Any] | None = None
    source_i18n: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        out = {"id": self.id, "label": self.label, "source": self.source}
        out.update({k: v for k, v in (("label_i18n", self.label_i18n), ("source_i18n", self.source_i18n)) if v})
        return out


DIGITS_FILE = Path(__file__).with_name("data") / "mnist-digits.npz"


def build_digit_samples(path: Path = DIGITS_FILE) -> Path:
    """Write the first test-split image of each digit 0..9 of ``load_splits("mnist")``.

    Parsing the embedded MNIST text file takes seconds, so the ten samples ship as a
    7 kB file made by this function (``python -m convscope.server.images``).
    """
    from ..data import load_splits

    test = load_splits("mnist", download=False, progress=False).test
    labels = test.labels.numpy()
    found: dict[int, np.ndarray] = {}
    for i, y in enumerate(labels):
        found.setdefault(int(y), test.images[i, 0].numpy())
        if len(found) == 10:
            break
    keys = sorted(found)
    np.savez_compressed(
        path,
        images=np.stack([found[k] for k in keys]).astype(np.uint8),
        labels=np.array(keys, dtype=np.int64),
        note=np.array(test.note or "MNIST test split"),
    )
    return path


@lru_cache(maxsize=1)
def mnist_digits() -> tuple[tuple[str, np.ndarray], ...]:
    """One MNIST test image per digit 0..9 (shipped; see :func:`build_digit_samples`)."""
    if not DIGITS_FILE.is_file():
        build_digit_samples()
    with np.load(DIGITS_FILE, allow_pickle=False) as f:
        return tuple((str(int(y)), img) for y, img in zip(f["labels"], f["images"]))


@cache
def photo(name: str) -> np.ndarray:
    """A real photo bundled with scikit-image (coffee, chelsea, astronaut, rocket)."""
    try:
        from skimage import data
    except ImportError:
        raise ConvscopeError("sample photos need scikit-image: pip install 'convscope[zoo]'") from None
    return np.ascontiguousarray(getattr(data, name)())


def samples_for(channels: int, classes: list[str] | None) -> list[Sample]:
    """Samples that suit a model: MNIST digits for 1-channel or digit-class models, photos for RGB."""
    out: list[Sample] = []
    digit_model = channels == 1 or (classes is not None and list(classes) == DIGITS)
    if digit_model:
        source = message("server.samples.mnist_test")
        for label, pixels in mnist_digits():
            name = message("server.samples.digit", digit=label)
            out.append(Sample(f"sample-{len(out)}", name["text"], source["text"], pixels, name, source))
    if channels == 3:
        for name in PHOTOS:
            try:
                out.append(Sample(f"sample-{len(out)}", name, "scikit-image", photo(name)))
            except ConvscopeError:
                break
    return out


def check_upload(data: bytes, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
    """Refuse empty, oversized or enormous-resolution uploads before decoding them."""
    if not data:
        raise ConvscopeError("the uploaded file is empty (0 bytes), not an image")
    if len(data) > max_bytes:
        raise TooLarge(f"the uploaded file is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:g} MB")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except UnidentifiedImageError:
        raise ConvscopeError("the uploaded file is not an image Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"the uploaded image is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConvscopeError(f"the uploaded file is a damaged image: {exc}") from None
    if w * h > MAX_UPLOAD_PIXELS:
        raise TooLarge(
            f"the uploaded image is {w} x {h} = {w * h / 1e6:.0f} megapixels; "
            f"the limit is {MAX_UPLOAD_PIXELS / 1e6:.0f}"
        )


class UploadStore:
    """Decoded uploads by content hash, least recently used dropped first.

    Bounded by count and by total pixels (60 M: about 180 MB of decoded RGB, yet room for
    one upload at the 40 M-pixel limit), so a few very large photos cannot hold gigabytes.
    """

    def __init__(self, capacity: int = 64, max_pixels: int = 60_000_000, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.capacity = capacity
        self.max_bytes = max_bytes  # one upload's size cap (convscope serve --max-upload-mb)
        self.max_pixels = max_pixels
        self._items: LRU[str, Image.Image] = LRU(capacity, cost=lambda im: im.width * im.height, max_cost=max_pixels)

    def add(self, data: bytes) -> str:
        """Validate and decode ``data``; return its id. Raises ConvscopeError for bad images."""
        check_upload(data, self.max_bytes)
        image_id = "upload-" + hashlib.sha256(data).hexdigest()[:20]
        # full decode: truncated data fails here with a clear message
        self._items.get_or_make(image_id, lambda: open_image(data))
        return image_id

    def get(self, image_id: str) -> Image.Image:
        found = self._items.get(image_id)
        if found is None:
            raise NotFound(f"unknown image {image_id!r} (uploads are kept for the last {self.capacity})")
        return found


if __name__ == "__main__":  # pragma: no cover
    print(build_digit_samples())
