"""The building blocks: parameterisations, transforms, redirected ReLU, receptive fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from convscope.features.params import COLOR_CORRELATION_SVD_SQRT, ImageParam, fft_scale
from convscope.features.receptive import receptive_field
from convscope.features.relu import redirected_relu
from convscope.features.transforms import Transforms
from convscope.models import Model, Preprocessing, load_model
from convscope.models.reference_nets import resnet18_shaped


def test_fft_scale_is_one_over_frequency():
    s = fft_scale(8, 8)
    assert s.shape == (8, 5)
    assert s[0, 0] == pytest.approx(8.0)  # DC clamped at 1 / max(h, w)
    assert s[0, 1] == pytest.approx(8.0)  # f = 1/8
    assert s[2, 3] == pytest.approx(1 / np.hypot(2 / 8, 3 / 8))
    assert s[4, 4] == pytest.approx(1 / np.hypot(0.5, 0.5))


def test_fft_image_is_the_inverse_fft_of_the_scaled_spectrum():
    p = ImageParam(2, 1, (6, 8), kind="fft", generators=[torch.Generator().manual_seed(i) for i in range(2)])
    spec = torch.complex(p.raw[..., 0], p.raw[..., 1]) * fft_scale(6, 8)
    expected = torch.sigmoid(torch.from_numpy(np.fft.irfft2(spec.detach().numpy(), s=(6, 8), norm="ortho")) / 4)
    torch.testing.assert_close(p().detach(), expected.float(), rtol=1e-5, atol=1e-6)


def test_colour_decorrelation_mixes_channels_by_the_normalised_matrix():
    p = ImageParam(1, 3, (4, 4), kind="fft")
    m = COLOR_CORRELATION_SVD_SQRT / COLOR_CORRELATION_SVD_SQRT.norm(dim=0).max()
    assert p.decorrelate and torch.allclose(p.color, m)
    with torch.no_grad():
        p.raw.zero_()
        p.raw[0, 0, 0, 0, 0] = 16.0  # DC of the first colour component only
    img = torch.logit(p().detach())
    ratios = img[:, :, 0, 0] / img[0, 0, 0, 0]
    torch.testing.assert_close(ratios[0], m[:, 0] / m[0, 0], rtol=1e-4, atol=1e-5)
    assert not ImageParam(1, 1, (4, 4), kind="fft").decorrelate
    assert not ImageParam(1, 3, (4, 4), kind="pixel").decorrelate


def test_transform_view_geometry():
    canvas = torch.rand(2, 3, 14, 18)
    t = Transforms(pad=2, jitter=0.0, scale=(1.0, 1.0), rotate=1e-7)  # goes through grid_sample
    crop = canvas[..., 2:12, 2:16]
    torch.testing.assert_close(t.view(canvas, (10, 14)), crop, atol=1e-4, rtol=0)
    torch.testing.assert_close(Transforms.none().view(canvas, (14, 18)), canvas)
    shifted = Transforms(pad=2, jitter=2.0, scale=(1.0, 1.0), rotate=0.0).view(
        canvas, (10, 14), [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    )
    assert shifted.shape == (2, 3, 10, 14) and not torch.allclose(shifted, crop)
    assert Transforms.standard((28, 28)).pad == 2 and Transforms.standard((224, 224)).pad == 12


def test_redirected_relu_gradient_by_hand():
    net = nn.Sequential(nn.ReLU())
    x = torch.tensor([[-1.0, 2.0, -3.0]], requires_grad=True)
    with redirected_relu(net):
        y = net(x)
        assert torch.equal(y, torch.relu(x))
        (g,) = torch.autograd.grad((y * torch.tensor([1.0, 1.0, 1.0])).sum(), [x])
    assert torch.equal(g, torch.tensor([[0.0, 1.0, 0.0]]))  # a live unit: the true gradient
    x = torch.tensor([[-1.0, -2.0, -3.0]], requires_grad=True)
    with redirected_relu(net):
        # loss gradient -1 pushes up (allowed), +1 would push lower (blocked)
        (g,) = torch.autograd.grad((net(x) * torch.tensor([-1.0, 1.0, -2.0])).sum(), [x])
    assert torch.equal(g, torch.tensor([[-1.0, 0.0, -2.0]]))
    assert not net[0]._forward_hooks and not net[0]._forward_pre_hooks
    six = nn.Sequential(nn.ReLU6())
    x = torch.tensor([[7.0, -1.0]], requires_grad=True)
    with redirected_relu(six):
        (g,) = torch.autograd.grad((six(x) * torch.tensor([-1.0, 1.0])).sum(), [x])
    assert torch.equal(g, torch.tensor([[0.0, 0.0]]))  # both blocked: 7 pushed up, -1 pushed down


def _sequential_rf(layers):
    """Textbook receptive field of a plain chain: r += (k - 1) * j; j *= s; start += ((k-1)/2 - p) * j."""
    r, j, start = 1, 1, 0.0
    for k, s, p in layers:
        start += ((k - 1) / 2 - p) * j
        r += (k - 1) * j
        j *= s
    return r, j, start - (r - 1) / 2


def test_receptive_field_matches_the_textbook_formula():
    m = load_model("tiny-vgg")
    conv, pool = (3, 1, 0), (2, 2, 0)
    chain = {
        "conv_1_1": [conv],
        "max_pool_1": [conv, conv, pool],
        "conv_2_2": [conv, conv, pool, conv, conv],
        "max_pool_2": [conv, conv, pool, conv, conv, pool],
    }
    for layer, layers in chain.items():
        rf = receptive_field(m, layer)
        r, j, offset = _sequential_rf(layers)
        assert rf.size == (r, r) and rf.stride == (j, j) and rf.offset == (offset, offset), layer
    prep = Preprocessing(size=(96, 96), channels=3)
    resnet = Model(resnet18_shaped(num_classes=10).eval(), preprocessing=prep)
    rf = receptive_field(resnet, "maxpool")
    assert (rf.size, rf.stride, rf.offset) == ((11, 11), (4.0, 4.0), (-5.0, -5.0))
    assert rf.box(0, 0) == (0, 6, 0, 6) and rf.box(10, 3) == (35, 46, 7, 18)
    assert receptive_field(resnet, "layer1").size == (43, 43)  # ResNet-18's published value
