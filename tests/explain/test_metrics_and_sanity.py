"""Faithfulness metrics, similarity measures and the randomisation sanity check, each
against an independent computation (NumPy loops, SciPy, scikit-image)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from convscope import explain as ex
from convscope.explain.metrics import blur
from convscope.explain.sanity import randomization_groups
from convscope.models import Model, Preprocessing


@pytest.fixture()
def linear_model():
    """Softmax regression on a 1x4x4 image: probabilities are easy to recompute with NumPy."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    return Model(net, preprocessing=Preprocessing(size=(4, 4), channels=1))


def _np_probs(net, images: np.ndarray) -> np.ndarray:
    W = net[1].weight.detach().double().numpy()
    b = net[1].bias.detach().double().numpy()
    z = images.reshape(len(images), -1) @ W.T + b
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_deletion_and_insertion_curves_by_loops(linear_model):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 4, 4, generator=g)
    maps = torch.randn(2, 4, 4, generator=g)  # distinct values: a strict order
    steps = 5
    dele = ex.deletion(linear_model, x, maps, target=[0, 2], steps=steps, batch_size=4)
    ins = ex.insertion(linear_model, x, maps, target=[0, 2], steps=steps, substrate=0.5, batch_size=3)
    for b, c in enumerate([0, 2]):
        order = np.argsort(-maps[b].numpy().ravel(), kind="stable")
        for i in range(steps + 1):
            k = round(i * 16 / steps)
            gone = x[b, 0].numpy().ravel().astype(np.float64).copy()
            gone[order[:k]] = 0.0
            shown = np.full(16, 0.5)
            shown[order[:k]] = x[b, 0].numpy().ravel()[order[:k]]
            assert dele.scores[b, i] == pytest.approx(_np_probs(linear_model.net, gone[None])[0, c], abs=1e-6)
            assert ins.scores[b, i] == pytest.approx(_np_probs(linear_model.net, shown[None])[0, c], abs=1e-6)
        fr = dele.fractions.numpy()
        assert dele.auc[b] == pytest.approx(np.trapezoid(dele.scores[b].numpy(), fr), abs=1e-6)
        assert ins.auc[b] == pytest.approx(np.trapezoid(ins.scores[b].numpy(), fr), abs=1e-6)


def test_deletion_takes_an_attribution_and_its_targets(small_resnet, resnet_x):
    cam = ex.GradCAM(small_resnet)(resnet_x, [3, 5])
    curve = ex.deletion(small_resnet, resnet_x, cam, steps=4)
    with torch.no_grad():
        p = small_resnet(resnet_x).softmax(-1)[[0, 1], [3, 5]]
    assert torch.allclose(curve.scores[:, 0], p, atol=1e-6)  # nothing deleted yet: the original probability
    with torch.no_grad():
        p0 = small_resnet(torch.zeros_like(resnet_x)).softmax(-1)[[0, 1], [3, 5]]
    assert torch.allclose(curve.scores[:, -1], p0, atol=1e-6)  # everything deleted


def test_blur_substrate_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(1, 2, 20, 23, generator=torch.Generator().manual_seed(2))
    want = np.stack(
        [ndimage.gaussian_filter(x[0, c].double().numpy(), sigma=5.0, mode="mirror", truncate=1.0) for c in range(2)]
    )
    assert np.allclose(blur(x)[0].numpy(), want, atol=1e-5)


def test_average_drop_and_increase_in_confidence(linear_model):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 1, 4, 4, generator=g)
    maps = torch.rand(3, 4, 4, generator=g)
    cc = ex.confidence_change(linear_model, x, maps, target=1)
    m = maps.numpy().reshape(3, -1)
    scaled = (m - m.min(1, keepdims=True)) / (m.max(1, keepdims=True) - m.min(1, keepdims=True))
    y = _np_probs(linear_model.net, x.numpy().reshape(3, -1).astype(np.float64))[:, 1]
    o = _np_probs(linear_model.net, x.numpy().reshape(3, -1) * scaled)[:, 1]
    drop = np.maximum(0, y - o) / y
    assert np.allclose(cc.drop.numpy(), drop, atol=1e-6)
    assert cc.average_drop == pytest.approx(drop.mean() * 100, abs=1e-4)
    assert cc.increase_in_confidence == pytest.approx((o > y).mean() * 100)


def test_spearman_with_ties_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(4)
    a = torch.randint(0, 4, (3, 7, 5), generator=g).float()  # many ties, as in ReLU'd CAMs
    b = torch.randn(3, 7, 5, generator=g)
    b[1] = a[1] * 2 + 1  # a monotone transform: correlation 1
    got = ex.spearman(a, b)
    for i in range(3):
        want = stats.spearmanr(a[i].ravel().numpy(), b[i].ravel().numpy()).statistic
        assert float(got[i]) == pytest.approx(want, abs=1e-9)
    assert float(got[1]) == pytest.approx(1.0)


def test_ssim_matches_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(5)
    a = torch.rand(2, 30, 26, generator=g)
    b = a + 0.3 * torch.rand(2, 30, 26, generator=g)
    got = ex.ssim(a, b)
    for i in range(2):
        na = (a[i] - a[i].min()) / (a[i].max() - a[i].min())
        nb = (b[i] - b[i].min()) / (b[i].max() - b[i].min())
        want = metrics.structural_similarity(na.double().numpy(), nb.double().numpy(), data_range=1.0)
        assert float(got[i]) == pytest.approx(want, abs=1e-6)
    assert torch.allclose(ex.ssim(a, a * 3 + 1), torch.ones(2, dtype=torch.float64))


def test_sanity_check_cascades_from_the_top_on_a_copy(small_resnet, resnet_x):
    before = {k: v.clone() for k, v in small_resnet.state_dict().items()}
    groups = randomization_groups(small_resnet, resnet_x)
    names = [g for g, _ in groups]
    assert names[:3] == ["fc", "layer4.1", "layer4.0"] and names[-2:] == ["bn1", "conv1"]
    assert "layer4.0.downsample.0" in dict(groups)["layer4.0"]
    seen = []
    rep = ex.sanity_check(
        small_resnet,
        resnet_x,
        methods=("gradcam", "saliency"),
        layer="layer3",
        max_steps=3,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert all(torch.equal(before[k], v) for k, v in small_resnet.state_dict().items())
    assert rep.steps == names[:3] and seen[-1] == (4, 4)
    for m in ("gradcam", "saliency"):
        assert rep.maps[m].shape == (4, 2, 64, 64)
        assert torch.allclose(rep.spearman[m][0], torch.ones(2)) and torch.allclose(rep.ssim[m][0], torch.ones(2))
    # step 0 is the untouched model's own explanation
    with torch.no_grad():
        assert rep.targets.tolist() == small_resnet(resnet_x).argmax(1).tolist()
    own = ex.GradCAM(small_resnet, "layer3")(resnet_x).maps
    assert torch.allclose(rep.maps["gradcam"][0], own, atol=1e-6)
    # the table's Spearman values are those of the stored maps (recomputed with SciPy)
    stats = pytest.importorskip("scipy.stats")
    s = stats.spearmanr(rep.maps["saliency"][0, 1].ravel().numpy(), rep.maps["saliency"][2, 1].ravel().numpy())
    assert float(rep.spearman["saliency"][2, 1]) == pytest.approx(s.statistic, abs=1e-6)
    # randomising the classifier changes saliency: the test has teeth
    assert float(rep.spearman["saliency"][1].mean()) < 0.99
    rows = rep.rows()
    assert len(rows) == 2 * 4 and rows[0]["randomized_down_to"] == "(original)"
    assert rep.to_csv().splitlines()[0] == "method,step,randomized_down_to,spearman,ssim"
    assert "layer4.1" in rep.table()
