"""The shared protocol: registry, targets, layers, model state, hooks and threads."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

import convscope as cs
from convscope import explain as ex
from convscope.errors import ConvscopeError
from convscope.models import Model, Preprocessing

ALL = [
    "gradcam",
    "gradcam++",
    "xgradcam",
    "layercam",
    "hirescam",
    "scorecam",
    "eigencam",
    "cam",
    "saliency",
    "smoothgrad",
    "inputxgradient",
    "guidedbackprop",
    "guidedgradcam",
    "integratedgradients",
    "occlusion",
]


def test_registry_lists_every_method():
    assert sorted(ex.method_names()) == sorted(ALL)
    info = {m["name"]: m for m in ex.method_info()}
    assert info["gradcam"]["family"] == "cam" and info["gradcam"]["uses_layer"]
    assert not info["saliency"]["uses_layer"] and info["occlusion"]["family"] == "perturbation"
    assert ex.get_method("Grad_CAM") is ex.GradCAM and ex.get_method("GradCAMPlusPlus".lower()) is not None
    with pytest.raises(ConvscopeError, match="unknown attribution method"):
        ex.get_method("nope")
    assert cs.GradCAM is ex.GradCAM and cs.attribute is ex.attribute


def test_every_method_returns_batch_maps_on_the_model_device(small_resnet, resnet_x):
    resnet = small_resnet
    opts = {
        "smoothgrad": {"samples": 2},
        "integratedgradients": {"steps": 2},
        "occlusion": {"window": 32, "stride": 32},
        "scorecam": {"top_n": 3},
    }
    for name in ALL:
        r = cs.attribute(resnet, resnet_x, method=name, target=[1, 2], **opts.get(name, {}))
        assert r.maps.shape == (2, 64, 64), name
        assert r.maps.device == resnet_x.device and torch.isfinite(r.maps).all(), name
        assert r.targets.tolist() == [1, 2], name
        if ex.get_method(name).family == "cam":
            assert r.raw.shape == (2, 2, 2) and r.layer == "layer4", name


def test_targets_none_int_list_callable_agree(small_resnet, resnet_x):
    resnet = small_resnet
    gc = ex.GradCAM(resnet)
    with torch.no_grad():
        pred = resnet(resnet_x).argmax(1)
    none = gc(resnet_x)
    assert torch.equal(none.targets, pred)
    listed = gc(resnet_x, pred.tolist())
    assert torch.equal(none.raw, listed.raw)
    fixed = gc(resnet_x, 4)
    assert torch.equal(gc(resnet_x, torch.tensor([4, 4])).raw, fixed.raw)
    by_fn = gc(resnet_x, lambda out: out[:, 4])
    assert by_fn.targets is None and torch.allclose(by_fn.raw, fixed.raw)
    single = gc(resnet_x[1:], 4)  # samples are independent: batch of one == row of the batch
    assert torch.allclose(single.raw[0], fixed.raw[1], atol=1e-6)
    with pytest.raises(ConvscopeError, match="out of range"):
        gc(resnet_x, 10)
    with pytest.raises(ConvscopeError, match="2 targets"):
        gc(resnet_x[:1], [1, 2])


def test_layers_by_name_module_and_default(small_resnet, resnet_x):
    resnet = small_resnet
    by_name = ex.GradCAM(resnet, "layer3")(resnet_x, 1)
    by_module = ex.GradCAM(resnet, resnet.layer3)(resnet_x, 1)
    assert by_name.layer == by_module.layer == "layer3" and torch.equal(by_name.raw, by_module.raw)
    assert ex.GradCAM(resnet)(resnet_x, 1).layer == "layer4"
    with pytest.raises(ConvscopeError, match="did you mean layer4"):
        ex.GradCAM(resnet, "layer5")(resnet_x)
    with pytest.raises(ConvscopeError, match="not part of the model"):
        ex.GradCAM(resnet, nn.Conv2d(1, 1, 1))(resnet_x)
    with pytest.raises(ConvscopeError, match="not a"):
        ex.GradCAM(resnet, "fc")(resnet_x)


def test_spatial_layers_for_a_layer_menu(small_resnet, resnet_x):
    refs = ex.spatial_layers(small_resnet, resnet_x)
    names = [r.name for r in refs]
    assert names[-1] == "layer4" and "fc" not in names and "avgpool" not in names
    assert names.index("layer3") < names.index("layer4.0.conv1")
    relus = [r for r in refs if r.name == "layer4.1.relu"]  # a shared module: one entry per call
    assert [str(r) for r in relus] == ["layer4.1.relu", "layer4.1.relu#2"]
    assert relus[1].call == 1 and relus[1].shape == (1, 64, 2, 2)
    assert ex.GradCAM(small_resnet).layer_ref(resnet_x).name == names[-1]


@pytest.mark.parametrize("layer, call", [("layer4.1.relu", 0), ("layer4.1.relu#2", 1)])
def test_reused_module_is_named_per_call(small_resnet, resnet_x, layer, call):
    """layer4.1.relu runs twice per forward: its name is the first call, ``#2`` the block's output."""
    resnet = small_resnet
    result = ex.GradCAM(resnet, layer)(resnet_x, 2)
    seen = []
    h = resnet.layer4[1].relu.register_forward_hook(lambda m, i, o: seen.append(o.clone()) or seen[-1])
    x = resnet_x.clone().requires_grad_(True)
    out = resnet(x)
    h.remove()
    act = seen[call]
    (grad,) = torch.autograd.grad(out[:, 2].sum(), act)
    want = (grad.mean((2, 3), keepdim=True) * act).sum(1).clamp(min=0)
    assert len(seen) == 2 and result.layer == layer
    assert torch.allclose(result.raw, want, rtol=1e-4, atol=1e-6)


def test_model_state_restored_even_after_an_error():
    torch.manual_seed(0)
    seen_training = []

    class Spy(nn.Module):
        fail = False

        def forward(self, x):
            seen_training.append(self.training)
            if self.fail:
                raise RuntimeError("boom")
            return x

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        Spy(),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    net.train()
    net[0].bias.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 8, 8)
    for name in ("gradcam", "guidedbackprop", "scorecam"):
        cs.attribute(net, x, method=name, layer="0")
    assert all(t is False for t in seen_training)  # explanations run in eval mode
    assert net.training and all(m.training for m in net.modules())
    assert net[0].weight.requires_grad and not net[0].bias.requires_grad
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN stats untouched
    net[3].fail = True
    with pytest.raises(RuntimeError, match="boom"):
        ex.GradCAM(net, "0")(x)
    assert net.training and net[0].weight.requires_grad and not net[0].bias.requires_grad
    assert all(not m._forward_hooks for m in net.modules())


def test_two_threads_never_see_each_others_activations():
    """Both threads register their hooks, then meet inside the forward before the target layer."""
    torch.manual_seed(0)

    class Rendezvous(nn.Module):
        barrier: threading.Barrier | None = None

        def forward(self, x):
            if self.barrier is not None:
                self.barrier.wait(timeout=30)
            return x

    meet = Rendezvous()
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(inplace=True),
        meet,
        nn.Conv2d(6, 6, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 4),
    ).eval()
    model = Model(net, preprocessing=Preprocessing(size=(8, 8), channels=3))
    xs = [torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)]
    gradcam, guided = ex.GradCAM(model, "3"), ex.GuidedBackprop(model)
    expected = [(gradcam(x, 1).raw, guided(x, 1).raw) for x in xs]  # sequential; also resolves the layer
    meet.barrier = threading.Barrier(2)
    results: dict[int, tuple] = {}
    errors = []

    def work(i):
        try:
            cam = gradcam(xs[i], 1).raw
            results[i] = (cam, guided(xs[i], 1).raw)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    for i in range(2):
        assert torch.allclose(results[i][0], expected[i][0]) and torch.allclose(results[i][1], expected[i][1])
    assert not torch.allclose(expected[0][0], expected[1][0])
    assert all(not m._forward_hooks for m in net.modules()) and not net.training


def test_folded_copy_leaves_the_model_alone_and_follows_weight_changes(small_resnet, resnet_x):
    resnet = small_resnet
    before = {k: v.clone() for k, v in resnet.state_dict().items()}
    gc = ex.GradCAM(resnet, "layer4.1.bn2")  # a BatchNorm as target: folded into its conv, still the same values
    folded = gc(resnet_x, 1).raw
    plain = ex.GradCAM(resnet, "layer4.1.bn2", fold_bn=False)(resnet_x, 1).raw
    assert torch.allclose(folded, plain, rtol=1e-4, atol=1e-5 * float(plain.abs().max()))
    assert gc.runner(resnet_x) is not resnet
    assert all(torch.equal(before[k], v) for k, v in resnet.state_dict().items())
    with torch.no_grad():
        resnet.layer4[1].bn2.weight.mul_(2.0)
    try:
        changed = gc(resnet_x, 1).raw
        assert torch.allclose(
            changed,
            ex.GradCAM(resnet, "layer4.1.bn2", fold_bn=False)(resnet_x, 1).raw,
            rtol=1e-4,
            atol=1e-5 * float(plain.abs().max()),
        )
        assert not torch.allclose(changed, folded)
    finally:
        with torch.no_grad():
            resnet.layer4[1].bn2.weight.div_(2.0)


def test_progress_is_reported_for_long_work(small_resnet, resnet_x):
    resnet = small_resnet
    calls = []
    ex.ScoreCAM(resnet, batch_size=50, top_n=100)(resnet_x, 1, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1] == len(calls)


def test_integrated_gradients_trapezoid_is_a_true_trapezoid_rule():
    """Completeness: sum IG = f(x) - f(x0) for a quadratic score, where the trapezoid rule
    with weights 1/(2(n-1)), 1/(n-1), ... is accurate (Captum's 'riemann_trapezoid' weights
    sum to (n-1)/n instead, so it is not compared with Captum)."""
    alphas, weights = ex.gradient.path_points(11, "riemann_trapezoid")
    assert abs(sum(weights) - 1) < 1e-12 and alphas[0] == 0 and alphas[-1] == 1

    class Quad(nn.Module):
        def forward(self, x):
            return (x.flatten(1) ** 2).sum(1, keepdim=True).repeat(1, 2)

    model = Model(Quad(), preprocessing=Preprocessing(size=(2, 2), channels=1))
    x = torch.tensor([[[[1.0, 2.0], [3.0, -1.0]]]])
    ig = ex.IntegratedGradients(model, steps=11, method="riemann_trapezoid")(x, 0)
    assert torch.allclose(ig.raw.sum(), torch.tensor(15.0), rtol=1e-2)
    gl = ex.IntegratedGradients(model, steps=3)(x, 0)  # Gauss-Legendre is exact for this polynomial
    assert torch.allclose(gl.raw, x**2, rtol=1e-5)
