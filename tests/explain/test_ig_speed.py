"""Integrated Gradients' default speed path (the BatchNorm-folded channels-last copy on the CPU)
gives Captum's numbers to float32 rounding (issue 16).

Folding is the same function, but a ReLU's or ReLU6's derivative is a step: where a
pre-activation lies within float32 rounding of a kink, the plain net and the folded copy may
take different sides. That is float32's own error, not folding's: the reference here is
Captum in float64 on a float64 copy of the net, and the folded float32 result must be as
close to it as Captum's own float32 result is, on the photo: the seeded ResNet-18-shaped net
(ReLU) and the pretrained EfficientNet-Lite0 (ReLU6, whose kinks made folding look wrong when
it was compared with float32 Captum).
"""

from __future__ import annotations

import copy

import pytest
import torch

captum_attr = pytest.importorskip("captum.attr")

from convscope import explain as ex  # noqa: E402


def _l1(got, want):
    return float((got - want).abs().sum() / want.abs().sum())


def _max(got, want):
    return float((got - want).abs().max() / want.abs().max())


@pytest.mark.parametrize("net_name", ["resnet", "efficientnet"])
def test_folded_ig_is_as_close_to_float64_as_captum_float32(net_name, request, effnet_x):
    model = request.getfixturevalue(net_name)
    net = getattr(model, "net", model)
    x = effnet_x  # the photo, for both nets
    with torch.no_grad():
        target = int(net(x).argmax(1))
    method = ex.IntegratedGradients(model, steps=6, batch_size=6)
    assert method.speedups(x.device).fold_bn and method.runner(x) is not net  # the folded copy really runs
    ours = method(x, target).raw
    f32 = captum_attr.IntegratedGradients(net).attribute(x, target=target, n_steps=6, internal_batch_size=6)
    f64 = (
        captum_attr.IntegratedGradients(copy.deepcopy(net).double())
        .attribute(x.double(), target=target, n_steps=6, internal_batch_size=6)
        .float()
    )
    # overall: within a few times float32's own error (l1, relative), and close in absolute terms
    assert _l1(ours, f64) <= max(3 * _l1(f32, f64), 1e-5), (_l1(ours, f64), _l1(f32, f64))
    assert _l1(ours, f64) < 5e-3
    # the largest single difference: no worse than float32's own, to a factor for which kink flips
    assert _max(ours, f64) <= max(3 * _max(f32, f64), 1e-4), (_max(ours, f64), _max(f32, f64))
    # the totals (sum IG, which approximates S(x) - S(0)) agree
    assert abs(float(ours.sum()) - float(f64.sum())) <= 1e-3 * float(f64.abs().sum())
