"""Transparent pixels: composited on the background that keeps what is drawn visible."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

import convscope as cs
from convscope.models.preprocessing import Preprocessing


def _stroke(ink: int, mode: str = "LA") -> Image.Image:
    """A vertical stroke of grey ``ink`` on a fully transparent 28x28 layer (a drawing app's export)."""
    im = Image.new(mode, (28, 28), (255 - ink, 0) if mode == "LA" else (255 - ink,) * 3 + (0,))
    ImageDraw.Draw(im).line((14, 4, 14, 24), fill=(ink, 255) if mode == "LA" else (ink,) * 3 + (255,), width=3)
    return im


def test_a_white_digit_on_a_transparent_layer_is_still_a_digit(tmp_path):
    path = tmp_path / "one.png"
    _stroke(255).save(path)
    grey = np.asarray(Preprocessing(size=(28, 28), channels=1).to_pil(path))
    assert grey[14, 14] == 255 and grey[0, 0] == 0  # white ink on black: it was a blank white square
    model = cs.load_model("default")
    assert model.predict(path)[0][0][0] == "1"


def test_dark_ink_and_nothing_drawn_stay_on_white():
    prep = Preprocessing(size=(28, 28), channels=3)
    dark = np.asarray(prep.to_pil(_stroke(0, "RGBA")))
    assert (dark[14, 14] == 0).all() and (dark[0, 0] == 255).all()
    blank = np.asarray(prep.to_pil(Image.new("RGBA", (28, 28), (0, 0, 0, 0))))
    assert (blank == 255).all()
