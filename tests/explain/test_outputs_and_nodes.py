"""Any model, any output (issue 15, section 7).

Two model shapes users have: a net that returns a dict or a tuple (Hugging Face style
``{"logits": ...}``, torchvision GoogLeNet's ``GoogLeNetOutputs``), and a net written with
``F.conv2d`` and its own ``nn.Parameter``s, whose layers are trace records (fx nodes), not
modules. The models are written here in torchvision's shape (torchvision is not installed).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convscope as cs
from convscope.analysis.dataset_pass import run_pass
from convscope.data.base import ImageDataset
from convscope.errors import ConvscopeError
from convscope.explain import METHODS
from convscope.probe import capture, model_state, resolve_layer, spatial_layers

# -- models --------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock (in-place ReLU shared by both calls, ``out += identity``)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class DictResNet(nn.Module):
    """A small ResNet whose forward returns ``{"logits": ..., "features": ...}``."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8), BasicBlock(8))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def body(self, x):
        x = self.layer1(self.relu(self.bn1(self.conv1(x))))
        f = torch.flatten(self.avgpool(x), 1)
        return self.fc(f), f

    def forward(self, x):
        logits, f = self.body(x)
        return {"logits": logits, "features": f}


class AmbiguousNet(DictResNet):
    def forward(self, x):
        logits, f = self.body(x)
        return {"out": logits, "aux": f}


GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class GoogLeNetStyle(DictResNet):
    """torchvision's GoogLeNet in train mode: a namedtuple with ``logits`` first."""

    def forward(self, x):
        logits, f = self.body(x)
        return GoogLeNetOutputs(logits, logits * 0.5, f)


class PlainTuple(DictResNet):
    def forward(self, x):
        logits, f = self.body(x)
        return logits, f


class Logits(nn.Module):
    """The wrapper a user writes today: the same net, returning the logits tensor."""

    def __init__(self, net: nn.Module, pick=lambda out: out["logits"]) -> None:
        super().__init__()
        self.net = net
        self.pick = pick

    def forward(self, x):
        return self.pick(self.net(x))


class FunctionalNet(nn.Module):
    """Convolutions as ``F.conv2d`` with the net's own parameters: no conv module at all."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.w1 = nn.Parameter(torch.randn(6, 3, 3, 3, generator=g) * 0.4)
        self.b1 = nn.Parameter(torch.randn(6, generator=g) * 0.1)
        self.w2 = nn.Parameter(torch.randn(8, 6, 3, 3, generator=g) * 0.3)
        self.w3 = nn.Parameter(torch.randn(4, 8, generator=g) * 0.5)

    def forward(self, x):
        x = F.relu(F.conv2d(x, self.w1, self.b1, padding=1))
        x = F.relu(F.conv2d(x, self.w2, padding=1))
        return x.mean((2, 3)) @ self.w3.t()


def _seeded(net: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in net.parameters():
        nn.init.normal_(p, 0, 0.3)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))


CAMS = [n for n, c in METHODS.items() if c.family == "cam"]
PIXELS = [
    "saliency",
    "integratedgradients",
    "occlusion",
    "inputxgradient",
    "guidedbackprop",
    "smoothgrad",
    "guidedgradcam",
]
FAST = {"integratedgradients": {"steps": 4}, "smoothgrad": {"samples": 3}}


# -- outputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", CAMS + PIXELS)
def test_dict_output_explained_like_the_wrapper_that_returns_logits(method, x):
    net = _seeded(DictResNet())
    wrapped = Logits(net)
    options = FAST.get(method, {})
    want = cs.attribute(wrapped, x, method=method, target=[1, 3], **options)
    layer = want.layer[len("net.") :] if want.layer else None
    for output in ("logits", None):  # named, and the obvious "logits" entry picked
        got = cs.attribute(net, x, method=method, layer=layer, target=[1, 3], output=output, **options)
        torch.testing.assert_close(got.maps, want.maps, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got.raw, want.raw, rtol=1e-5, atol=1e-6)
    predicted = cs.attribute(cs.Model(net, output="logits"), x, method=method, **options)
    assert predicted.targets.tolist() == wrapped(x).argmax(1).tolist()


def test_ambiguous_output_is_one_line_listing_the_keys(x):
    net = _seeded(AmbiguousNet())
    with pytest.raises(ConvscopeError) as err:
        cs.GradCAM(net)(x)
    text = str(err.value)
    assert "\n" not in text and "'out': 2x5" in text and "'aux': 2x8" in text and "output=" in text
    with pytest.raises(ConvscopeError, match="output='logits' is not in the model's output.*'out'.*'aux'"):
        cs.attribute(net, x, method="saliency", output="logits")
    got = cs.attribute(net, x, method="gradcam", output="out", target=2)
    want = cs.attribute(Logits(net, lambda o: o["out"]), x, method="gradcam", target=2)
    torch.testing.assert_close(got.maps, want.maps)
    # the trace keeps an ambiguous output whole, and reads the scores once they are named
    assert cs.trace(net, x).logits is None
    torch.testing.assert_close(cs.trace(net, x, output="out").logits, net(x)["out"])


def test_googlenet_and_tuple_outputs(x):
    google = _seeded(GoogLeNetStyle())
    got = cs.attribute(google, x, method="gradcam", target=0)  # the namedtuple's logits field
    want = cs.attribute(Logits(google, lambda o: o.logits), x, method="gradcam", target=0)
    torch.testing.assert_close(got.maps, want.maps)
    torch.testing.assert_close(cs.trace(google, x).logits, google(x).logits)

    pair = _seeded(PlainTuple())
    with pytest.raises(ConvscopeError, match=r"a tuple of 2, indices 0: 2x5, 1: 2x8"):
        cs.attribute(pair, x, method="occlusion")
    for output in (0, lambda out: out[0]):
        got = cs.attribute(pair, x, method="occlusion", output=output, target=4)
        want = cs.attribute(Logits(pair, lambda o: o[0]), x, method="occlusion", target=4)
        torch.testing.assert_close(got.maps, want.maps)
    with pytest.raises(ConvscopeError, match="output=2 is not in the model's output"):
        cs.attribute(pair, x, method="saliency", output=2)


def test_model_carries_its_output_everywhere(x):
    net = _seeded(AmbiguousNet())
    model = cs.Model(net, classes=list("abcde"), preprocessing=cs.Preprocessing(size=(16, 16)), output="out")
    t = cs.trace(model, x)
    assert t.top(1)[0][0][0] == int(net(x)["out"][0].argmax())
    assert model.predict(x, top=1)[0][0][0] == "abcde"[int(net(x)["out"][0].argmax())]
    report = cs.sanity_check(model, x[:1], methods=("gradcam",), max_steps=1)
    assert report.maps["gradcam"].shape == (2, 1, 16, 16)
    images = (x * 255).to(torch.uint8)
    data = ImageDataset("toy", list("abcde"), images, torch.tensor([0, 3]), indices=torch.arange(2))
    dp = run_pass(model, data, progress=False)
    ((batch, _),) = data.batches(model.preprocessing, 8)
    want = net(batch)["out"]
    np.testing.assert_allclose(dp.probs, want.softmax(-1).detach().numpy(), rtol=1e-5, atol=1e-6)
    vis = cs.visualize(model, objective="logit", units=[1], steps=2, transforms="none")
    assert vis.values.shape == (1,)


# -- layers that are trace records, not modules ----------------------------------------------------


def test_functional_net_gradcam_equals_autograd_on_the_intermediate_tensor(x):
    net = FunctionalNet().eval()
    t = cs.trace(net, x)
    assert [r.name for r in t if r.kind == "conv"] == ["conv2d", "conv2d_1"]
    target = torch.tensor([1, 3])
    got = cs.GradCAM(net, "conv2d_1")(x, target)

    a1 = F.relu(F.conv2d(x, net.w1, net.b1, padding=1))
    A = F.conv2d(a1, net.w2, padding=1)
    out = F.relu(A).mean((2, 3)) @ net.w3.t()
    (G,) = torch.autograd.grad(out[torch.arange(2), target].sum(), A)
    want = (G.mean((2, 3), keepdim=True) * A).sum(1).clamp(min=0)
    torch.testing.assert_close(got.raw, want.detach())
    assert got.layer == "conv2d_1"
    # before: "the model has no layer with a spatial (B, C, H, W) output"; now the last spatial record
    assert cs.GradCAM(net)(x).layer == "relu_1"
    assert [str(r) for r in spatial_layers(net, x)] == ["conv2d", "relu", "conv2d_1", "relu_1"]


def test_functional_net_features_and_examples(x):
    net = FunctionalNet().eval()
    model = cs.Model(net, preprocessing=cs.Preprocessing(size=(16, 16)))
    vis = cs.visualize(model, "conv2d_1", units=[0, 5], steps=3, transforms="none")
    with torch.no_grad():
        a1 = F.relu(F.conv2d(vis.inputs, net.w1, net.b1, padding=1))
        want = F.conv2d(a1, net.w2, padding=1)[[0, 1], [0, 5]].mean((1, 2))
    np.testing.assert_allclose(vis.values, want.numpy(), rtol=1e-5, atol=1e-6)

    images = (torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(5)) * 255).to(torch.uint8)
    data = ImageDataset("toy", ["a", "b", "c", "d"], images, torch.arange(6) % 4, indices=torch.arange(6))
    top = cs.top_examples(model, data, "conv2d", k=2, channels=[0, 4])
    ((batch, _),) = data.batches(model.preprocessing, 8)
    with torch.no_grad():
        act = F.conv2d(batch, net.w1, net.b1, padding=1)
    best = act[:, [0, 4]].flatten(2).amax(2).T.topk(2, dim=1)
    assert top.indices.tolist() == best.indices.tolist()
    np.testing.assert_allclose(top.values, best.values.numpy(), rtol=1e-5)
    dp = run_pass(model, data, layer="relu_1", progress=False)
    assert dp.features.shape == (6, 8 * 16 * 16)


def test_every_spatial_trace_record_is_a_layer_with_the_records_value(x):
    """The names the summary shows are what every entry point accepts, with the same tensor."""
    for net, some in (
        (_seeded(DictResNet()), {"add", "add_1", "layer1.0.relu#2"}),
        (FunctionalNet().eval(), {"conv2d", "relu_1"}),
    ):
        t = cs.trace(net, x)
        spatial = [r for r in t.layers[1:] if r.output.dim() == 4 and r.output[0, 0].numel() > 1]
        assert some <= {r.name for r in spatial}
        menu = {str(r) for r in spatial_layers(net, x)}
        for rec in spatial:
            assert rec.name in menu
            ref = resolve_layer(net, rec.name)
            assert str(ref) == rec.name
            with model_state(net), torch.no_grad(), capture(net, ref) as box:
                box.run(x)
            torch.testing.assert_close(box.value, rec.output)
            assert cs.GradCAM(net, rec.name)(x).layer == rec.name


def test_unknown_layer_names_modules_and_records(x):
    net = FunctionalNet().eval()
    with pytest.raises(cs.ConvscopeError, match=r"no layer named 'conv2d_7'; did you mean conv2d_1"):
        cs.GradCAM(net, "conv2d_7")(x)


# -- the command line ----------------------------------------------------------------------------

FACTORY = """
import torch
from torch import nn


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        f = self.features(x).mean((2, 3))
        return {"out": self.fc(f), "aux": f}


def build():
    return TwoHeads()
"""


def test_cli_output_option_selects_the_scores(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from convscope.cli.main import main
    from convscope.models import load_model

    (tmp_path / "h8_two_heads.py").write_text(FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    image = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((20, 20, 3)) * 255).astype(np.uint8)).save(image)
    argv = ["attribute", str(image), "--model", "h8_two_heads:build", "--method", "gradcam"]
    assert main([*argv, "--out", str(tmp_path / "a")]) != 0
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "'out': 1x4" in err and "'aux': 1x8" in err
    assert main([*argv, "--output", "out", "--out", str(tmp_path / "b")]) == 0
    want = cs.attribute(load_model("h8_two_heads:build"), str(image), method="gradcam", output="out")
    np.testing.assert_allclose(np.load(tmp_path / "b" / "gradcam.npy"), want.numpy()[0], rtol=1e-5, atol=1e-6)
