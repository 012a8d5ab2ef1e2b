"""The one seam into a model (convscope.probe), tested through every public path that uses it.

- Conv -> ReLU(inplace=True): the conv's true (negative) values must reach the user through
  the trace, the report's maps, the dataset pass, top examples, snapshots and attribution,
  compared with a plain PyTorch forward of a non-inplace copy.
- A trace in the main thread while two other threads run plain forwards on the same model
  (fx-traceable and not): every record equals a reference, the other threads are untouched.
- A model with a submodule deliberately kept in eval and a frozen parameter is left exactly
  as it was (every ``training`` and ``requires_grad`` flag) by every operation.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import convscope as cs
from convscope import explain as ex
from convscope import features
from convscope.analysis import activation_maps, layer_table, report_layers, run_pass
from convscope.data.base import ImageDataset
from convscope.models import Model, Preprocessing
from convscope.train.evaluate import evaluate
from convscope.train.snapshots import snapshot_arrays

PREP = Preprocessing(size=(8, 8), channels=1)


def inplace_net() -> nn.Sequential:
    """Conv -> ReLU(inplace=True); channel 0 of the conv is negative on every (non-negative) input."""
    torch.manual_seed(0)
    net = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(1, 3, 3, padding=1),
            relu=nn.ReLU(inplace=True),
            pool=nn.AdaptiveAvgPool2d(2),
            flat=nn.Flatten(),
            fc=nn.Linear(12, 2),
        )
    )
    with torch.no_grad():
        net.conv.weight[0] = -net.conv.weight[0].abs() - 0.05
        net.conv.bias[0] = -1.0
    return net.eval()


def dataset(n: int = 6) -> ImageDataset:
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    return ImageDataset("toy", ["a", "b"], images, torch.arange(n) % 2, indices=torch.arange(n))


def true_conv(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The conv's output from a plain forward of a copy whose ReLU is not in place."""
    twin = copy.deepcopy(net)
    twin.relu.inplace = False
    seen = []
    h = twin.conv.register_forward_hook(lambda m, i, o: seen.append(o.detach().clone()))
    with torch.no_grad():
        twin(x)
    h.remove()
    return seen[0]


@pytest.fixture()
def toy():
    net = inplace_net()
    data = dataset()
    x = PREP.normalize(data.images)
    want = true_conv(net, x)
    assert want.min() < -0.5  # the value an in-place ReLU would overwrite with 0
    return Model(net, classes=["a", "b"], preprocessing=PREP, name="toy"), data, x, want


@pytest.mark.parametrize("method", ["fx", "hooks"])
def test_trace_keeps_the_negative_conv_output(toy, method):
    model, _, x, want = toy
    t = cs.trace(model, x, method=method)
    assert t.via == method
    torch.testing.assert_close(t["conv"].output, want)
    assert float(t["conv"].output.min()) == pytest.approx(float(want.min()))


def test_report_maps_keep_the_negative_conv_output(toy):
    model, _, x, want = toy
    maps = activation_maps(model, x, ["conv", "relu"])
    np.testing.assert_allclose(maps["conv"], want[0].numpy(), rtol=1e-6, atol=1e-6)
    assert maps["conv"].min() == pytest.approx(float(want[0].min()))
    np.testing.assert_allclose(maps["relu"], want[0].clamp(min=0).numpy(), rtol=1e-6, atol=1e-6)


def test_dataset_pass_features_keep_the_negative_conv_output(toy):
    model, data, _, want = toy
    r = run_pass(model, data, layer="conv", progress=False)
    np.testing.assert_allclose(r.features, want.flatten(1).numpy(), rtol=1e-5, atol=1e-6)


def test_top_examples_keep_the_negative_conv_output(toy):
    model, data, _, want = toy
    top = features.top_examples(model, data, "conv", k=2)
    best = want[:, 0].flatten(1).max(1).values  # channel 0's score per image: all negative
    order = best.argsort(descending=True)[:2]
    np.testing.assert_allclose(top.values[0], best[order].numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(top.maps[0, 0], want[order[0], 0].numpy(), rtol=1e-6, atol=1e-6)


def test_snapshot_keeps_the_negative_conv_output(toy):
    model, data, x, want = toy
    arrays = snapshot_arrays(0, model.net, data.images[0], x[0], 0)
    np.testing.assert_allclose(arrays["activations"], want[0].numpy(), rtol=1e-6, atol=1e-6)


def test_attribution_sees_the_negative_conv_output(toy):
    """Grad-CAM without its final ReLU is sum_k w_k A_k: wrong A (clipped to 0) gives another map."""
    model, _, x, _ = toy
    twin = copy.deepcopy(model.net)
    twin.relu.inplace = False
    A = twin.conv(x).detach().requires_grad_(True)
    score = twin.fc(twin.flat(twin.pool(twin.relu(A))))[:, 1].sum()
    (grad,) = torch.autograd.grad(score, A)
    want = (grad.mean((2, 3), keepdim=True) * A).sum(1).detach()
    got = ex.GradCAM(model, "conv", relu=False)(x, 1).raw
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


# -- a trace beside plain forwards in other threads ---------------------------------------------


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(inplace=True)
        self.conv2, self.fc = nn.Conv2d(4, 4, 3, padding=1), nn.Linear(4, 2)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv1(x))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        return self.head(x + self.conv2(x))


class Branchy(Plain):
    """Data-dependent control flow: torch.fx cannot trace it, so the trace uses hooks."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x)
        if x.sum() > 0:
            x = x + self.conv2(x)
        return self.head(x)


def _same_records(t, ref) -> bool:
    return t.names == ref.names and all(
        torch.equal(a.output, b.output)
        and len(a.inputs_tensors) == len(b.inputs_tensors)
        and all(torch.equal(p, q) for p, q in zip(a.inputs_tensors, b.inputs_tensors))
        for a, b in zip(t.layers, ref.layers)
    )


@pytest.mark.parametrize("cls, via", [(Plain, "fx"), (Branchy, "hooks")])
def test_trace_beside_forwards_in_other_threads(cls, via):
    torch.manual_seed(0)
    net = cls().eval()
    x = torch.randn(2, 1, 12, 12)
    ref = cs.trace(net, x)  # builds (and caches) the fx graph before other threads run the model
    assert ref.via == via
    inputs = [torch.randn(3, 1, 12, 12) for _ in range(2)]
    with torch.no_grad():
        expected = [net(xi).clone() for xi in inputs]
    stop, errors, wrong, runs = threading.Event(), [], [], [0, 0]

    def worker(k: int) -> None:
        try:
            while not stop.is_set():
                with torch.no_grad():
                    out = net(inputs[k])
                if not torch.equal(out, expected[k]):
                    wrong.append(k)
                runs[k] += 1
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    try:
        bad = sum(not _same_records(cs.trace(net, x), ref) for _ in range(60))
    finally:
        stop.set()
        for th in threads:
            th.join()
    assert errors == [] and wrong == []
    assert bad == 0, f"{bad} of 60 traces differ from the reference"
    assert min(runs) > 0


# -- a submodule kept in eval, a frozen parameter ----------------------------------------------


def flags(net: nn.Module) -> list[tuple[str, bool]]:
    return [(f"{n}.training", m.training) for n, m in net.named_modules()] + [
        (f"{n}.requires_grad", p.requires_grad) for n, p in net.named_parameters()
    ]


def kept_in_eval() -> Model:
    torch.manual_seed(0)
    net = nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(1, 3, 3, padding=1),
            bn=nn.BatchNorm2d(3),
            relu=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(2),
            flat=nn.Flatten(),
            fc=nn.Linear(12, 2),
        )
    )
    net.train()
    net.bn.eval()  # e.g. frozen statistics while fine-tuning
    net.conv.bias.requires_grad_(False)
    return Model(net, classes=["a", "b"], preprocessing=PREP, name="kept")


OPERATIONS = {
    "trace": lambda m, d, x: cs.trace(m, x),
    "trace-train": lambda m, d, x: cs.trace(m, x, train=True),
    "gradcam": lambda m, d, x: ex.attribute(m, x, "gradcam"),
    "saliency": lambda m, d, x: ex.attribute(m, x, "saliency"),
    "visualize": lambda m, d, x: features.visualize(m, "conv", [0], steps=2, param="pixel", transforms="none"),
    "top_examples": lambda m, d, x: features.top_examples(m, d, "conv", k=1),
    "receptive_field": lambda m, d, x: features.receptive_field(m, "conv", samples=2),
    "run_pass": lambda m, d, x: run_pass(m, d, progress=False),
    "evaluate": lambda m, d, x: evaluate(m, d),
    "snapshot": lambda m, d, x: snapshot_arrays(0, m.net, d.images[0], x[0], 0),
    "predict": lambda m, d, x: m.predict(x),
    "report": lambda m, d, x: (layer_table(m), activation_maps(m, x, report_layers(m))),
}


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_operation_leaves_the_model_exactly_as_it_was(name):
    model, data = kept_in_eval(), dataset()
    x = PREP.normalize(data.images)
    before = flags(model.net)
    OPERATIONS[name](model, data, x)
    assert flags(model.net) == before
