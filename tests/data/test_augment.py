"""Batch augmentation: exact geometry against NumPy / Pillow, reproducibility, the factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.data import Augment, AugmentParams, ImageDataset, augment, make_augment, warp
from convscope.errors import ConvscopeError
from convscope.models import Preprocessing


def _batch(n=6, c=3, h=12, w=12, seed=0) -> torch.Tensor:
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def _params(n, angle=0.0, shift=(0, 0), flip=False) -> AugmentParams:
    return AugmentParams(torch.full((n,), float(angle)), torch.tensor([shift] * n), torch.full((n,), flip))


def _shifted(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """out[y, x] = in[y - dy, x - dx], zeros where that falls outside: a crop of the padded image."""
    h, w = x.shape[-2:]
    pad = max(abs(dx), abs(dy))
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(pad, pad), (pad, pad)])
    return padded[..., pad - dy : pad - dy + h, pad - dx : pad - dx + w]


def test_shift_flip_and_quarter_turn_are_exact():
    x = _batch(h=12, w=10)
    assert torch.equal(warp(x, _params(6)), x)
    assert torch.equal(warp(x, _params(6, flip=True)), torch.flip(x, dims=[3]))
    for dx, dy in ((2, -1), (-3, 3), (0, 4)):
        assert np.array_equal(warp(x, _params(6, shift=(dx, dy))).numpy(), _shifted(x.numpy(), dx, dy))
    square = _batch(h=8, w=8)
    assert torch.equal(warp(square, _params(6, angle=90)), torch.rot90(square, 1, dims=(2, 3)))  # counter-clockwise


@pytest.mark.parametrize("angle", [10.0, -7.5])
def test_small_rotation_matches_pillow(angle):
    yy, xx = np.mgrid[0:32, 0:32]
    img = (128 + 60 * np.sin(xx / 4.0) + 50 * np.cos(yy / 5.0)).astype(np.uint8)
    ours = warp(torch.from_numpy(img)[None, None], _params(1, angle=angle))[0, 0].numpy().astype(int)
    pil = np.asarray(Image.fromarray(img).rotate(angle, resample=Image.BILINEAR)).astype(int)
    assert np.abs(ours - pil)[4:-4, 4:-4].max() <= 1  # Pillow rounds differently by at most one level


def test_random_crop_without_rotation_is_a_shift_of_the_padded_image():
    x = _batch(n=16)
    out = Augment(pad=3, degrees=0.0)(x, torch.Generator().manual_seed(1))
    shifts = [(dx, dy) for dx in range(-3, 4) for dy in range(-3, 4)]
    for i in range(len(x)):
        assert any(np.array_equal(out[i].numpy(), _shifted(x[i].numpy(), dx, dy)) for dx, dy in shifts)
    assert not torch.equal(out, x)


def test_augment_keeps_shape_and_dtype_and_is_reproducible():
    x = _batch(n=8, c=1, h=28, w=28)
    a = augment(x, torch.Generator().manual_seed(3))
    b = augment(x, torch.Generator().manual_seed(3))
    c = augment(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(augment(x[:0], torch.Generator()), x[:0])
    params = Augment(pad=2, degrees=10).sample(1000, (28, 28), torch.Generator().manual_seed(0))
    assert params.angles.abs().max() <= 10 and params.shifts.abs().max() == 2 and not params.flips.any()
    assert Augment(flip=True).sample(
        1000, (28, 28), torch.Generator().manual_seed(0)
    ).flips.float().mean().item() == pytest.approx(0.5, abs=0.06)
    with pytest.raises(ConvscopeError, match="uint8"):
        augment(x.float())


def test_batches_with_augment_are_reproducible():
    ds = ImageDataset("toy", ["a", "b"], _batch(n=10, c=1, h=28, w=28), torch.arange(10) % 2)
    pre = Preprocessing(size=(28, 28), channels=1)
    aug = make_augment("mnist")
    runs = [
        list(ds.batches(pre, 4, shuffle=True, generator=torch.Generator().manual_seed(9), augment=aug))
        for _ in range(2)
    ]
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(*runs))
    plain = list(ds.batches(pre, 4, shuffle=True, generator=torch.Generator().manual_seed(9)))
    assert not all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(runs[0], plain))


def test_make_augment():
    assert make_augment(None) is None and make_augment(False) is None
    assert make_augment(True) == Augment()
    assert make_augment("mnist").flip is False and make_augment("digits").flip is False
    assert make_augment("cifar10").flip is True and make_augment("folder:/x").flip is True
    assert make_augment({"pad": 2, "flip": True, "degrees": 5}) == Augment(pad=2, flip=True, degrees=5)
    assert make_augment("") is None
    assert make_augment("shift,rotate") == Augment(pad=None, flip=False, degrees=10.0)
    assert make_augment("crop, flip") == Augment(pad=None, flip=True, degrees=0.0)
    assert make_augment("rotate") == Augment(pad=0, flip=False, degrees=10.0)
    assert Augment().padding((28, 28)) == 4 and Augment().padding((8, 8)) == 1 and Augment().padding((64, 64)) == 8
    with pytest.raises(ConvscopeError, match="unknown augmentation option"):
        make_augment({"rotate": 3})
    with pytest.raises(ConvscopeError, match="0..180"):
        Augment(degrees=200)
