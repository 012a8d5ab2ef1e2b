"""convscope.trace on the zoo, EfficientNet-Lite0, a ResNet-18-shaped net and a functional net.

Every recorded output is checked against an independent capture: plain PyTorch forward
hooks registered by the test itself, or the op recomputed from its recorded inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import convscope as cs
from convscope.errors import ConvscopeError, NotFound
from convscope.models import load_model
from convscope.models.reference_nets import FunctionalCNN, resnet18_shaped
from convscope.trace import LayerRecord, Trace, trace


def eager_outputs(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of every leaf module of a plain forward pass, by qualified name (first call)."""
    out: dict[str, torch.Tensor] = {}
    handles = []
    for name, m in net.named_modules():
        if name and not list(m.children()):
            handles.append(
                m.register_forward_hook(lambda mod, args, y, name=name: out.setdefault(name, y.detach().clone()))
            )
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return out


@pytest.mark.parametrize("spec", ["tiny-vgg", "mnist-cnn"])
def test_zoo_models_every_layer_matches_plain_forward(spec):
    torch.manual_seed(0)
    model = load_model(spec)
    x = torch.randn(2, *model.input_shape)
    t = trace(model, x)
    assert isinstance(t, Trace) and t.via == "fx"
    expected = eager_outputs(model.net, x)
    assert t.names == ["input", *expected]  # every layer, in execution order, by its module name
    for name, y in expected.items():
        torch.testing.assert_close(t[name].output, y, rtol=0, atol=0)
    assert [r.inputs for r in t.layers[1:]] == [[p] for p in t.names[:-1]]  # a chain
    torch.testing.assert_close(t.logits, model.net(x))
    torch.testing.assert_close(t.probs, model.net(x).softmax(-1))
    conv = t[t.names[1]]
    assert conv.kind == "conv" and conv.weight is model.net[0].weight and conv.module is model.net[0]
    assert conv.params["kernel_size"] == (3, 3) and conv.params["stride"] == (1, 1)


def test_resnet18_shaped_residual_adds_batchnorm_and_inplace_relu():
    torch.manual_seed(0)
    net = resnet18_shaped(num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    t = trace(net, x)
    assert t.via == "fx"
    adds = [r for r in t.layers if r.kind == "add"]
    assert len(adds) == 8 and all(len(r.inputs) == 2 for r in adds)
    assert adds[0].inputs == ["layer1.0.bn2", "maxpool"]
    assert adds[2].inputs == ["layer2.0.bn2", "layer2.0.downsample.1"]
    for r in adds:
        torch.testing.assert_close(r.output, r.inputs_tensors[0] + r.inputs_tensors[1])
    # the shared in-place ReLU is one record per call, and did not overwrite what it read
    assert "layer1.0.relu" in t and "layer1.0.relu#2" in t
    assert t["layer1.0.relu#2"].inputs == ["add"] and t["layer1.0.relu#2"].param_count == 0
    bn = t["layer1.0.bn1"]
    torch.testing.assert_close(
        bn.output,
        F.batch_norm(
            t["layer1.0.conv1"].output,
            bn.module.running_mean,
            bn.module.running_var,
            bn.weight,
            bn.bias,
            False,
            0.0,
            bn.module.eps,
        ),
    )
    assert (bn.output < 0).any()  # would be all >= 0 had the ReLU overwritten it
    torch.testing.assert_close(t["layer1.0.relu"].input, bn.output, rtol=0, atol=0)
    torch.testing.assert_close(t["layer1.0.relu"].output, bn.output.clamp_min(0))
    with torch.no_grad():
        torch.testing.assert_close(t.output, net(x), rtol=0, atol=0)
    assert t["flatten"].kind == "flatten" and t["flatten"].op == "torch.flatten"
    assert t["avgpool"].kind == "adaptive_avgpool"


def test_functional_cnn_records_functional_ops_with_their_inputs():
    torch.manual_seed(0)
    net = FunctionalCNN().eval()
    x = torch.randn(2, 3, 32, 32)
    t = trace(net, x)
    kinds = {r.name: (r.kind, r.op) for r in t.layers}
    assert kinds["relu"] == ("relu", "F.relu") and kinds["add"] == ("add", "operator.add")
    assert kinds["cat"] == ("concat", "torch.cat") and kinds["flatten"] == ("flatten", "torch.flatten")
    assert kinds["max_pool2d"][0] == "maxpool" and kinds["avg_pool2d"][0] == "avgpool"
    assert t["add"].inputs == ["relu_1", "max_pool2d"]
    assert t["cat"].inputs == ["add", "branch"] and len(t["cat"].inputs_tensors) == 2
    torch.testing.assert_close(t["cat"].output, torch.cat(t["cat"].inputs_tensors, 1))
    torch.testing.assert_close(t["max_pool2d"].output, F.max_pool2d(t["relu"].output, 2))
    assert t["max_pool2d"].params["kernel_size"] == (2, 2) and t["max_pool2d"].params["stride"] == (2, 2)
    assert t["flatten"].params == {"start_dim": 1, "end_dim": -1}
    with torch.no_grad():
        torch.testing.assert_close(t.output, net(x))


def test_efficientnet_lite0_traces_with_fx_padding_conv_and_shared_swish(
    efficientnet, photo_coffee, efficientnet_trace
):
    t = efficientnet_trace
    assert t.via == "fx" and t.input.shape == (1, 3, 224, 224)
    torch.testing.assert_close(t.input, efficientnet.batch(photo_coffee), rtol=0, atol=0)
    with torch.no_grad():
        logits = efficientnet.net(t.input)
    torch.testing.assert_close(t.output, logits, rtol=0, atol=0)
    assert t.top(1)[0][0][:2] == (int(logits.argmax()), efficientnet.class_name(int(logits.argmax())))
    stem = t["_conv_stem"]
    assert stem.kind == "conv" and stem.inputs == ["_conv_stem.static_padding"]
    assert t["_conv_stem.static_padding"].params["pad"] == (0, 1, 0, 1)  # TF 'same': the extra on the right
    assert stem.weight is efficientnet.net._conv_stem.weight and stem.param_count == 864
    dw = t["_blocks.1._depthwise_conv"]
    assert dw.params["groups"] == dw.params["in_channels"] == 96 and dw.params["stride"] == (2, 2)
    swish = [r.name for r in t.layers if r.name.startswith("_blocks.1._swish")]
    assert swish == ["_blocks.1._swish", "_blocks.1._swish#2"]
    adds = [r for r in t.layers if r.kind == "add"]
    assert len(adds) == 9 and all(len(r.inputs) == 2 for r in adds)
    assert t.summary().total_params == sum(p.numel() for p in efficientnet.net.parameters())
    assert sum(r.param_count for r in t.layers) == t.summary().total_params
    assert t["view"].kind == "flatten" and t["view"].inputs == ["_avg_pooling"]  # x.view(bs, -1)
    hooks = trace(efficientnet, t.input, method="hooks")  # the fallback sees the same graph
    assert hooks.names == t.names and [r.inputs for r in hooks] == [r.inputs for r in t]
    torch.testing.assert_close(hooks.output, t.output, rtol=0, atol=0)


class DataDependent(nn.Module):
    """fx cannot trace ``if x.mean() > 0``; the hooks path must still see the residual add."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(x))
        if x.mean() > 0:
            x = x + self.conv2(x)
        x = F.max_pool2d(x, 2)
        return self.fc(torch.flatten(x, 1))


def test_hooks_fallback_sees_functional_ops_and_residual_add():
    torch.manual_seed(0)
    net = DataDependent().eval()
    x = torch.randn(2, 3, 8, 8)
    t = trace(net, x)
    assert t.via == "hooks" and "control flow" in t.fx_error
    assert all(r.via == "hooks" for r in t.layers)
    assert t.names == ["input", "conv", "relu", "conv2", "add", "max_pool2d", "flatten", "fc"]
    assert t["add"].inputs == ["relu", "conv2"]
    torch.testing.assert_close(t["add"].output, t["relu"].output + t["conv2"].output)
    assert (t["conv"].output < 0).any()  # in-place ReLU did not overwrite the conv's record
    torch.testing.assert_close(t["relu"].output, t["conv"].output.clamp_min(0))
    with torch.no_grad():
        torch.testing.assert_close(t.output, net(x))
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())


def test_hooks_path_matches_fx_path_on_the_same_net():
    torch.manual_seed(0)
    net = resnet18_shaped(num_classes=10).eval()
    x = torch.randn(1, 3, 32, 32)
    a, b = trace(net, x, method="fx"), trace(net, x, method="hooks")
    assert a.names == b.names
    assert [r.inputs for r in a.layers] == [r.inputs for r in b.layers]
    assert [r.kind for r in a.layers] == [r.kind for r in b.layers]
    for ra, rb in zip(a.layers, b.layers):
        torch.testing.assert_close(ra.output, rb.output, rtol=0, atol=0)


def test_a_shared_module_gets_one_record_per_call():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.ReLU6()
            self.conv = nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return self.act(self.conv(self.act(x)))

    net = Twice()
    x = torch.randn(1, 2, 4, 4) * 10
    for method in ("fx", "hooks"):
        t = trace(net, x, method=method)
        assert t.names == ["input", "act", "conv", "act#2"], method
        assert t["act#2"].inputs == ["conv"]
        torch.testing.assert_close(t["act"].output, x.clamp(0, 6))


def test_mode_is_restored_and_hooks_removed_even_when_forward_raises():
    class Boom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            if x.sum() > -1e9:  # not fx-traceable: takes the hooks path
                raise RuntimeError("boom")
            return x

    net = Boom().train()
    net.drop.eval()
    with pytest.raises(ConvscopeError, match="boom"):
        trace(net, torch.randn(1, 3, 4, 4))
    assert net.training and not net.drop.training and net.conv.training
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in net.modules())

    net2 = resnet18_shaped(num_classes=4).train()
    t = trace(net2, torch.randn(2, 3, 32, 32))
    assert net2.training and all(m.training for m in net2.modules())
    bn = t["bn1"]
    assert not bn.params["batch_statistics"]  # traced in eval mode: running statistics


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_wrong_input_is_a_one_line_convscope_error():
    model = load_model("tiny-vgg")
    with pytest.raises(ConvscopeError, match="expects 3-channel input"):
        trace(model, torch.randn(1, 1, 64, 64))
    with pytest.raises(ConvscopeError) as err:
        trace(model, torch.randn(1, 3, 5, 5))
    assert "\n" not in str(err.value) and "TinyVGG failed on input (1, 3, 5, 5)" in str(err.value)
    with pytest.raises(ConvscopeError):
        trace(model, torch.randn(1, 3, 64, 64), method="magic")
    with pytest.raises(ConvscopeError, match="TorchScript"):
        trace(torch.jit.script(model.net), torch.randn(1, 3, 64, 64))


def test_inputs_image_single_tensor_and_lookup():
    model = load_model("tiny-vgg")
    img = Image.new("RGB", (100, 80), (200, 10, 10))
    t = trace(model, img)
    torch.testing.assert_close(t.input, model.batch(img))
    t1 = trace(model, torch.rand(3, 64, 64))
    assert t1.input.shape == (1, 3, 64, 64)
    assert t1[1] is t1["conv_1_1"] and t1[model.net.conv_1_1] is t1["conv_1_1"]
    assert [r.name for r in t1.consumers("conv_1_1")] == ["relu_1_1"]
    with pytest.raises(NotFound, match="similar: conv_1_1"):
        t1["conv_1"]
    with pytest.raises(NotFound, match=r"'conv_9' in this trace; similar: conv_\d_\d"):  # a typo, not a substring
        t1["conv_9"]
    with pytest.raises(NotFound, match="; its layers are: input, conv_1_1, relu_1_1, "):  # nothing close: the list
        t1["zzz"]
    assert isinstance(t1[0], LayerRecord) and t1[0].kind == "input"


def test_to_json_is_plain_json_with_correct_statistics():
    torch.manual_seed(0)
    model = load_model("mnist-cnn")
    t = trace(model, torch.randn(2, 1, 28, 28))
    d = json.loads(json.dumps(t.to_json()))
    assert d["via"] == "fx" and d["input_shape"] == [2, 1, 28, 28]
    conv = next(layer for layer in d["layers"] if layer["name"] == "conv1")
    out = t["conv1"].output
    assert conv["output_shape"] == [2, 32, 26, 26] and conv["params"]["kernel_size"] == [3, 3]
    assert conv["stats"]["max"] == pytest.approx(float(out.max()))
    assert conv["stats"]["std"] == pytest.approx(float(out.std(unbiased=False)), rel=1e-5)
    assert conv["param_count"] == 320 and conv["macs"] == 32 * 26 * 26 * 9
    assert len(d["top"]) == 2 and d["top"][0][0]["prob"] == pytest.approx(float(t.probs[0].max()))
    assert "stats" not in t.to_json(stats=False)["layers"][1]


def test_summary_counts_against_independent_numbers():
    s = trace(resnet18_shaped(), torch.zeros(1, 3, 224, 224)).summary()
    assert s.total_params == 11_689_512 and s.total_macs == 1_814_073_344  # torchvision's 1.81 GMACs
    tv = trace(load_model("tiny-vgg"), torch.zeros(1, 3, 64, 64)).summary()
    # hand count: 62*62*10*27 + 60*60*10*90 + 28*28*10*90 + 26*26*10*90 + 1690*10
    assert tv.total_macs == 1_037_880 + 3_240_000 + 705_600 + 608_400 + 16_900
    assert tv.total_params == 19_920 and sum(r.params for r in tv.rows) == 19_920
    text = str(tv)
    assert 'Model: "tiny-vgg"' in text and "conv_1_1 (Conv2d)" in text and "(1, 10, 62, 62)" in text
    assert "Total params: 19,920" in text and "Connected to" not in text  # a chain needs no edges column
    assert "Connected to" in str(s) and "layer1.0.bn2, maxpool" in str(s)
    assert (
        "<table>" in tv._repr_html_()
        and "conv_1_1" in trace(load_model("tiny-vgg"), torch.zeros(1, 3, 64, 64))._repr_html_()
    )


def test_model_ending_in_softmax_reports_its_own_probabilities():
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.Softmax(dim=1))
    x = torch.randn(3, 3, 2, 2)
    t = trace(net, x)
    torch.testing.assert_close(t.probs, t.output)
    torch.testing.assert_close(t.logits, t["1"].output)


def test_graph_is_cached_and_rebuilt_when_a_submodule_is_replaced():
    from convscope.trace import fx_trace

    net = FunctionalCNN()
    x = torch.randn(1, 3, 32, 32)
    trace(net, x)
    first = fx_trace._CACHE[net][1]
    trace(net, x)
    assert fx_trace._CACHE[net][1] is first
    net.conv2 = nn.Conv2d(8, 8, 3, padding=1)
    t = trace(net, x)
    assert fx_trace._CACHE[net][1] is not first and t["conv2"].module is net.conv2


def test_cs_trace_is_the_function_through_the_lazy_export():
    import convscope.trace.core as core

    assert cs.__getattr__("trace") is core.trace and cs.__getattr__("Trace") is core.Trace
    t = cs.trace(load_model("tiny-vgg"), torch.zeros(1, 3, 64, 64))
    assert isinstance(t, Trace)


def test_cs_trace_is_callable_when_the_package_was_imported_first():
    # importing the subpackage first binds convscope.trace to the package: it must be callable too
    code = (
        "from convscope.trace import details\nimport convscope as cs, torch\n"
        "from convscope.models.zoo import build\n"
        "assert not isinstance(cs.__dict__['trace'], type(lambda: 0))\n"
        "t = cs.trace(build('tiny-vgg'), torch.zeros(1, 3, 64, 64))\n"
        "from convscope.trace import trace, Trace\n"
        "assert isinstance(t, Trace) and callable(trace)\n"
        "print(t.names[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "conv_1_1"


def test_compiled_runner_gives_the_same_records_as_the_interpreter():
    from convscope.trace import fx_trace

    torch.manual_seed(0)
    net = resnet18_shaped(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    first = trace(net, x)  # a new graph runs on the interpreter, which checks for in-place surprises
    plan = fx_trace._CACHE[net][1]
    assert plan.safe is True and plan.compiled is None
    second = trace(net, x)  # then on the compiled graph, records built node by node
    assert plan.compiled is not None and plan.compiled.templates
    third = trace(net, x)  # and from then on filled from the template
    for other in (second, third):
        assert first.names == other.names and [r.inputs for r in first] == [r.inputs for r in other]
        for a, b in zip(first.layers, other.layers):
            assert (a.kind, a.op, a.params.keys(), a.param_count) == (b.kind, b.op, b.params.keys(), b.param_count)
            assert b.module is a.module and b.weight is a.weight
            torch.testing.assert_close(a.output, b.output, rtol=0, atol=0)
            assert len(a.inputs_tensors) == len(b.inputs_tensors)
            for ta, tb in zip(a.inputs_tensors, b.inputs_tensors):
                torch.testing.assert_close(ta, tb, rtol=0, atol=0)
        # the in-place ReLU (run out of place on the compiled graph) left its input intact
        assert (other["layer2.1.bn1"].output < 0).any()
        assert other["layer2.1.relu"].input is other["layer2.1.bn1"].output
    assert third["conv1"].output is not second["conv1"].output  # fresh tensors every trace


def test_an_unannounced_in_place_change_is_caught_and_records_stay_true():
    from convscope.trace import fx_trace

    class Sneaky(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)

        def forward(self, x):
            y = self.conv(x)
            torch.ops.aten.relu_.default(y)  # in place, under a name that does not say so
            return y * 1

    torch.manual_seed(0)
    net = Sneaky()
    x = torch.randn(1, 1, 4, 4)
    for _ in range(2):
        t = trace(net, x)
        assert fx_trace._CACHE[net][1].safe is False
        with torch.no_grad():
            expected_conv = net.conv(x)
        torch.testing.assert_close(t["conv"].output, expected_conv, rtol=0, atol=0)
        assert (t["conv"].output < 0).any()
        torch.testing.assert_close(t.output, net(x).detach())


def test_in_place_op_whose_input_is_read_later_keeps_eager_semantics():
    class ReadsAfter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            y = self.conv(x)
            z = self.relu(y)  # overwrites y, which the next line reads: y + z == 2 * relu(conv(x))
            return z + y

    torch.manual_seed(0)
    net = ReadsAfter()
    x = torch.randn(1, 1, 5, 5)
    with torch.no_grad():
        conv = net.conv(x)
    for _ in range(3):  # interpreter, compiled, template
        t = trace(net, x)
        torch.testing.assert_close(t.output, 2 * conv.clamp_min(0), rtol=0, atol=0)
        torch.testing.assert_close(t["conv"].output, conv, rtol=0, atol=0)  # the record kept the pre-ReLU values
        assert t["add"].inputs == ["relu", "conv"]


def test_a_factory_net_that_fails_on_the_guessed_input_says_how_to_give_its_size(tmp_path):
    """A bare module from `file.py:factory` gets a guessed 224x224 input; a 28x28-only net fails on
    it, and the error says the input was guessed and how to name the real one."""
    (tmp_path / "mine.py").write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))\n"
    )
    image = tmp_path / "digit.png"
    Image.new("L", (28, 28)).save(image)
    model = load_model(f"{tmp_path / 'mine.py'}:make")
    with pytest.raises(ConvscopeError, match=r"input 1x224x224 was guessed.*cs\.Preprocessing\(size=\(H, W\)"):
        trace(model, image)
    assert trace(model, torch.zeros(1, 1, 28, 28)).logits.shape == (1, 10)  # a tensor of the right size runs
    sized = cs.Model(model.net, preprocessing=cs.Preprocessing(size=(28, 28), channels=1))
    assert trace(sized, image).logits.shape == (1, 10)  # ...and so does the image, once the size is given
