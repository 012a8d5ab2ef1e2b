"""The CAM methods Captum lacks, against the papers' formulas on small hand-computed cases.

The probe net's "layer" is an Identity on the input, so the activations ``A`` are the
input itself, and its score is linear in ``A`` (``S_c = sum V_c * A``), so the gradient
``G`` is exactly ``V_c``. Expected values are literal numbers worked out by hand, or the
paper's formula written as plain loops over channels and positions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from convscope import explain as ex
from convscope.models import Model, Preprocessing
from convscope.models.reference_nets import ResNet18Shaped

A = torch.tensor(
    [
        [[1.0, 2.0], [0.0, 1.0]],
        [[0.0, 0.0], [0.0, 0.0]],  # an all-zero channel
        [[3.0, 0.0], [1.0, 0.0]],
    ]
)
V = torch.tensor(
    [
        [[[1.0, -1.0], [2.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]], [[-1.0, 0.0], [0.5, 0.5]]],
        [[[0.0, 1.0], [1.0, 0.0]], [[2.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [-1.0, 0.0]]],
    ]
)


class Probe(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.feat = nn.Identity()
        self.register_buffer("V", V.clone())

    def forward(self, x):
        return torch.einsum("bkij,ckij->bc", self.feat(x), self.V)


@pytest.fixture()
def probe():
    return Model(Probe(), preprocessing=Preprocessing(size=(2, 2), channels=3))


def run(cls, probe, **kw):
    return cls(probe, "feat", **kw)(A.unsqueeze(0), 0)


def test_gradcam_by_hand(probe):
    # weights: mean of V_0 per channel = 0.5, 1, 0  ->  0.5 * A0 + 1 * A1 + 0 * A2
    r = run(ex.GradCAM, probe)
    assert torch.allclose(r.raw[0], torch.tensor([[0.5, 1.0], [0.0, 0.5]]))
    assert torch.equal(r.maps, r.raw)  # layer resolution == input resolution here


def test_hirescam_and_layercam_by_hand(probe):
    # HiResCAM: sum_k G_k * A_k = [[1 - 3, -2], [0.5, 0]] -> ReLU
    assert torch.allclose(run(ex.HiResCAM, probe, relu=False).raw[0], torch.tensor([[-2.0, -2.0], [0.5, 0.0]]))
    assert torch.allclose(run(ex.HiResCAM, probe).raw[0], torch.tensor([[0.0, 0.0], [0.5, 0.0]]))
    # LayerCAM: sum_k ReLU(G_k) * A_k = [[1, 0], [0.5, 0]]
    assert torch.allclose(run(ex.LayerCAM, probe).raw[0], torch.tensor([[1.0, 0.0], [0.5, 0.0]]))


def test_xgradcam_by_hand(probe):
    # w_0 = (1 - 2) / 4 = -0.25, w_1 = 0 (sum of A is 0), w_2 = (-3 + 0.5) / 4 = -0.625
    want = -0.25 * A[0] - 0.625 * A[2]
    assert torch.allclose(run(ex.XGradCAM, probe, relu=False).raw[0], want)
    assert torch.equal(run(ex.XGradCAM, probe).raw[0], torch.zeros(2, 2))


def test_gradcam_plus_plus_formula(probe):
    G = V[0]
    want = torch.zeros(2, 2)
    for k in range(3):
        total = float(A[k].sum())
        w = 0.0
        for i in range(2):
            for j in range(2):
                g = float(G[k, i, j])
                denom = 2 * g**2 + total * g**3
                alpha = g**2 / denom if denom != 0 else 0.0
                w += alpha * max(g, 0.0)
        want += w * A[k]
    got = run(ex.GradCAMPlusPlus, probe, relu=False).raw[0]
    assert torch.allclose(got, want) and want.abs().sum() > 0


def test_cam_uses_classifier_weights():
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("feat", nn.Identity())
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(3, 4))
    model = Model(net, preprocessing=Preprocessing(size=(2, 2), channels=3))
    got = ex.CAM(model, "feat", relu=False)(A.unsqueeze(0), 2).raw[0]
    want = sum(float(net.fc.weight[2, k]) * A[k] for k in range(3))
    assert torch.allclose(got, want)
    # for GAP + linear, Grad-CAM's weights are the fc weights / (h w): same map up to that factor
    assert torch.allclose(ex.GradCAM(model, "feat", relu=False)(A.unsqueeze(0), 2).raw[0], want / 4)


def test_eigencam_is_projection_on_first_principal_direction(probe):
    M = A.reshape(3, 4).T.numpy().astype(np.float64)  # (positions, channels)
    v = np.linalg.svd(M)[2][0]
    proj = M @ v
    if proj.sum() < 0:
        proj = -proj
    got = run(ex.EigenCAM, probe, relu=False).raw[0]
    assert np.allclose(got.numpy().ravel(), proj, atol=1e-6)


def _softmax(z):
    e = [math.exp(v - max(z)) for v in z]
    return [v / sum(e) for v in e]


def test_scorecam_formula_by_loops(probe):
    x = A.unsqueeze(0)
    want = torch.zeros(2, 2)
    for k in range(3):
        a = A[k]
        if float(a.max()) == float(a.min()):
            continue  # constant maps are skipped (authors' reference code)
        mask = (a - a.min()) / (a.max() - a.min())
        logits = [float((V[c] * (A * mask)).sum()) for c in range(2)]
        want += _softmax(logits)[0] * a
    for batch_size in (1, 5):
        got = ex.ScoreCAM(probe, "feat", batch_size=batch_size, relu=False)(x, 0).raw[0]
        assert torch.allclose(got, want, atol=1e-6)


def test_scorecam_skip_is_exact_and_top_n_is_the_documented_approximation(resnet_x):
    """Against a naive Score-CAM that runs every channel (one forward each, softmax scores)."""
    torch.manual_seed(3)
    resnet = ResNet18Shaped(num_classes=10, width=8).eval()  # 64 channels in layer4
    sc = ex.ScoreCAM(resnet, "layer4", batch_size=64)
    got = sc(resnet_x, [1, 2])
    acts = {}
    h = resnet.layer4.register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach().clone()))
    with torch.no_grad():
        resnet(resnet_x)
    h.remove()
    a = acts["a"]
    flat = a.flatten(2)
    constant = flat.amax(-1) == flat.amin(-1)
    assert constant.any() and (~constant).any()  # the skip really happens here
    want = torch.zeros_like(got.raw)
    for b, c in enumerate([1, 2]):  # every channel, all masks of a sample in one batch
        up = torch.nn.functional.interpolate(a[b].unsqueeze(1), size=(64, 64), mode="bilinear", align_corners=False)[
            :, 0
        ]
        lo, hi = up.flatten(1).amin(1), up.flatten(1).amax(1)
        mask = (up - lo.view(-1, 1, 1)) / (hi - lo).clamp_min(1e-30).view(-1, 1, 1)
        with torch.no_grad():
            p = resnet(resnet_x[b : b + 1] * mask.unsqueeze(1)).softmax(-1)[:, c]
        p = torch.where(hi > lo, p, torch.zeros_like(p))  # constant maps: skipped by definition
        want[b] = (p.view(-1, 1, 1) * a[b]).sum(0)
    want = want.clamp(min=0)
    assert torch.allclose(got.raw, want, rtol=1e-4, atol=1e-6 * float(want.abs().max()))
    approx = ex.ScoreCAM(resnet, "layer4", top_n=4)(resnet_x, [1, 2])
    assert not torch.allclose(approx.raw, got.raw)
    assert approx.raw.shape == got.raw.shape
