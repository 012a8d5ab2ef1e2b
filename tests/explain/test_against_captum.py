"""convscope's methods against Captum 0.9 on the same nets and inputs, to 1e-4 relative.

Nets: the ResNet-18-shaped net (random seeded weights, non-trivial BatchNorm, in-place
ReLUs) and the pretrained EfficientNet-Lite0 (ReLU6) on two real photos. Step counts,
samples and occlusion grids are small to keep the suite fast; the arithmetic compared
is the same at any size.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from convscope import explain as ex

captum_attr = pytest.importorskip("captum.attr", reason="the comparisons need captum (test dependency)")
warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")

TOL = 1e-4
TARGETS = [3, 7]


def _interp(cam: torch.Tensor, size) -> torch.Tensor:
    return captum_attr.LayerAttribution.interpolate(cam, size, "bilinear")[:, 0]


@pytest.mark.parametrize("fold_bn", [False, True])
def test_gradcam_resnet(resnet, resnet_x, fold_bn, rel_err):
    ours = ex.GradCAM(resnet, "layer4", fold_bn=fold_bn)(resnet_x, TARGETS)
    want = captum_attr.LayerGradCam(resnet, resnet.layer4).attribute(resnet_x, TARGETS, relu_attributions=True)
    assert ours.raw.abs().max() > 0
    assert rel_err(ours.raw, want[:, 0]) < TOL
    assert rel_err(ours.maps, _interp(want, resnet_x.shape[-2:])) < TOL


def test_gradcam_inner_layer_before_inplace_relu(resnet, resnet_x, rel_err):
    """layer3.0.bn1 feeds an in-place ReLU: the recorded activation must be the pre-ReLU one."""
    ours = ex.GradCAM(resnet, "layer3.0.bn1")(resnet_x, TARGETS)
    want = captum_attr.LayerGradCam(resnet, resnet.layer3[0].bn1).attribute(resnet_x, TARGETS, relu_attributions=True)
    assert rel_err(ours.raw, want[:, 0]) < TOL


@pytest.mark.parametrize(
    "ours_cls, theirs_cls, kwargs",
    [
        (ex.Saliency, "Saliency", {}),
        (ex.InputXGradient, "InputXGradient", {}),
        (ex.GuidedBackprop, "GuidedBackprop", {}),
    ],
)
def test_gradient_methods_resnet(resnet, resnet_x, ours_cls, theirs_cls, kwargs, rel_err):
    ours = ours_cls(resnet)(resnet_x, TARGETS)
    want = getattr(captum_attr, theirs_cls)(resnet).attribute(resnet_x, TARGETS, **kwargs)
    assert rel_err(ours.raw, want) < TOL
    reduced = want.amax(1) if ours_cls is ex.Saliency else want.sum(1)
    assert rel_err(ours.maps, reduced) < TOL


def test_guided_gradcam_resnet(resnet, resnet_x, rel_err):
    ours = ex.GuidedGradCAM(resnet, "layer4", fold_bn=False)(resnet_x, TARGETS)
    want = captum_attr.GuidedGradCam(resnet, resnet.layer4).attribute(resnet_x, TARGETS, interpolate_mode="bilinear")
    assert rel_err(ours.raw, want) < TOL


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_middle"])
def test_integrated_gradients_resnet(resnet, resnet_x, method, rel_err):
    ours = ex.IntegratedGradients(resnet, steps=5, method=method, batch_size=4)(resnet_x, TARGETS)
    want = captum_attr.IntegratedGradients(resnet).attribute(
        resnet_x, baselines=0.0, target=TARGETS, n_steps=5, method=method
    )
    assert rel_err(ours.raw, want) < TOL


def test_occlusion_resnet(resnet, resnet_x, rel_err):
    # window 24 / stride 20 on 64 px: the last window is cut off at the border, as in Captum
    ours = ex.Occlusion(resnet, window=24, stride=20, batch_size=7)(resnet_x, TARGETS)
    want = captum_attr.Occlusion(resnet).attribute(
        resnet_x, sliding_window_shapes=(3, 24, 24), strides=(3, 20, 20), baselines=0.0, target=TARGETS
    )
    assert rel_err(ours.raw, want[:, 0]) < TOL
    assert torch.equal(want[:, 0], want[:, 2])  # Captum's window spans all channels too


def test_smoothgrad_resnet_fixed_seed(resnet, resnet_x, rel_err):
    ours = ex.SmoothGrad(resnet, samples=3, stdev=0.4, seed=123, batch_size=4)(resnet_x, TARGETS)
    torch.manual_seed(123)
    want = captum_attr.NoiseTunnel(captum_attr.Saliency(resnet)).attribute(
        resnet_x, nt_type="smoothgrad", nt_samples=3, stdevs=0.4, target=TARGETS
    )
    assert rel_err(ours.raw, want) < TOL
    other = ex.SmoothGrad(resnet, samples=3, stdev=0.4, seed=124)(resnet_x, TARGETS)
    assert rel_err(other.raw, want) > 1e-2  # the seed matters: the comparison is not vacuous


# -- EfficientNet-Lite0, pretrained, real photos ------------------------------------------
@pytest.fixture(scope="module")
def eff_targets(efficientnet, effnet_x):
    with torch.no_grad():
        return efficientnet.net(effnet_x).argmax(1).tolist()


def test_gradcam_efficientnet(efficientnet, effnet_x2, rel_err):
    net = efficientnet.net
    ours = ex.GradCAM(efficientnet, "_bn1")(effnet_x2)
    with torch.no_grad():
        assert ours.targets.tolist() == net(effnet_x2).argmax(1).tolist()
    want = captum_attr.LayerGradCam(net, net._bn1).attribute(effnet_x2, ours.targets.tolist(), relu_attributions=True)
    assert rel_err(ours.raw, want[:, 0]) < TOL
    assert rel_err(ours.maps, _interp(want, (224, 224))) < TOL


def test_gradient_methods_efficientnet(efficientnet, effnet_x, eff_targets, rel_err):
    net = efficientnet.net
    sal = ex.Saliency(efficientnet)(effnet_x)
    assert rel_err(sal.raw, captum_attr.Saliency(net).attribute(effnet_x, eff_targets)) < TOL
    ixg = ex.InputXGradient(efficientnet)(effnet_x)
    assert rel_err(ixg.raw, captum_attr.InputXGradient(net).attribute(effnet_x, eff_targets)) < TOL


def test_guided_backprop_efficientnet_relu6(efficientnet, effnet_x, eff_targets, rel_err, relu6_as_relu):
    """Our Guided Backprop guides ReLU6; Captum hooks only nn.ReLU, so it gets ReLU6 as a ReLU subclass."""
    twin = relu6_as_relu(efficientnet.net)
    want = captum_attr.GuidedBackprop(twin).attribute(effnet_x, eff_targets)
    ours = ex.GuidedBackprop(efficientnet)(effnet_x)
    assert rel_err(ours.raw, want) < TOL
    plain = captum_attr.Saliency(efficientnet.net).attribute(effnet_x, eff_targets, abs=False)
    assert rel_err(plain, want) > 0.1  # guiding really changes the result on this net


def test_integrated_gradients_and_smoothgrad_efficientnet(efficientnet, effnet_x, eff_targets, rel_err):
    x = effnet_x
    net = efficientnet.net
    # the plain net, as Captum runs it; the default folded copy is checked against float64 in test_ig_speed.py
    ours = ex.IntegratedGradients(efficientnet, steps=2, fold_bn=False)(x, eff_targets[:1])
    want = captum_attr.IntegratedGradients(net).attribute(x, target=eff_targets[:1], n_steps=2)
    assert rel_err(ours.raw, want) < TOL
    ours = ex.SmoothGrad(efficientnet, samples=2, stdev=0.2, seed=7)(x, eff_targets[:1])
    torch.manual_seed(7)
    want = captum_attr.NoiseTunnel(captum_attr.Saliency(net)).attribute(
        x, nt_type="smoothgrad", nt_samples=2, stdevs=0.2, target=eff_targets[:1]
    )
    assert rel_err(ours.raw, want) < TOL


def test_occlusion_efficientnet(efficientnet, effnet_x, eff_targets, rel_err):
    x = effnet_x
    ours = ex.Occlusion(efficientnet, window=80, stride=72, fold_bn=False)(x, eff_targets[:1])
    want = captum_attr.Occlusion(efficientnet.net).attribute(
        x, sliding_window_shapes=(3, 80, 80), strides=(3, 72, 72), baselines=0.0, target=eff_targets[:1]
    )
    assert rel_err(ours.raw, want[:, 0]) < TOL
