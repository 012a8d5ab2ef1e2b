"""A NumPy image gets the pixels its file would get: 16-bit arrays, channels-first mistakes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import convscope as cs
from convscope.errors import ConvscopeError
from convscope.models.preprocessing import open_image


def _gradient16(h: int = 28, w: int = 28) -> np.ndarray:
    """A 12-bit sensor's range in a uint16 array: every value above 255, none near 65535."""
    return (np.linspace(300, 4000, h * w).reshape(h, w)).astype(np.uint16)


def test_a_16_bit_grey_array_is_the_same_image_as_its_png(tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(_gradient16()).save(path)
    decoded = np.asarray(Image.open(path))  # what imageio / scikit-image hand a user: uint16
    assert decoded.dtype == np.uint16
    model = cs.load_model("default")
    from_file, from_array = model.preprocess(path), model.preprocess(decoded)
    assert torch.equal(from_file, from_array)
    assert float(from_array.min()) == 0.0 and float(from_array.max()) == 1.0  # rescaled, not all white


def test_a_16_bit_colour_array_keeps_its_high_byte():
    rgb16 = np.random.default_rng(0).integers(0, 65536, (6, 5, 3)).astype(np.uint16)
    assert np.array_equal(np.asarray(open_image(rgb16)), (rgb16 >> 8).astype(np.uint8))


@pytest.mark.parametrize("shape", [(3, 28, 28), (1, 28, 28)])
def test_a_channels_first_array_says_how_to_fix_it(shape):
    with pytest.raises(ConvscopeError, match=r"channels first\? pass arr.transpose\(1, 2, 0\)"):
        open_image(np.zeros(shape, np.uint8))


def test_grey_alpha_and_8_bit_arrays_still_work():
    grey = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    assert np.array_equal(np.asarray(open_image(grey)), grey)
    assert np.array_equal(np.asarray(open_image(grey[..., None])), grey)
    assert open_image(np.stack([grey, grey], -1)).mode == "LA"
    assert np.array_equal(np.asarray(open_image(grey / 255.0)), (grey / 255.0 * 255).astype(np.uint8))
