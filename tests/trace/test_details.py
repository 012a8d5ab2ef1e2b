"""The per-layer arithmetic reproduces PyTorch's own outputs (<= 1e-5) over a grid of settings."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ConvscopeError
from convscope.trace import details as D
from convscope.trace import trace

ATOL = 1e-5


def traced(layer: nn.Module, x: torch.Tensor, name: str = "0", **kw):
    return trace(nn.Sequential(layer), x, **kw)[name]


# -- convolution -------------------------------------------------------------------------
CONVS = [  # in, out, kernel, stride, padding, dilation, groups, padding_mode, bias
    (3, 4, 3, 1, 0, 1, 1, "zeros", True),
    (3, 4, 3, 2, 1, 1, 1, "zeros", True),
    (3, 4, 3, 1, "same", 1, 1, "zeros", True),
    (4, 4, 4, 1, "same", 1, 2, "zeros", True),  # even kernel: 'same' pads one more on the right
    (3, 2, 3, 1, "same", 2, 1, "zeros", False),
    (4, 6, 3, 2, 2, 2, 2, "zeros", True),
    (3, 4, (5, 3), (2, 1), (2, 0), (1, 2), 1, "zeros", True),
    (4, 4, 3, 2, 1, 1, 4, "zeros", False),  # depthwise
    (2, 6, 3, 1, 1, 1, 2, "zeros", True),  # depthwise with multiplier 3
    (3, 4, 3, 1, 2, 1, 1, "reflect", True),
    (3, 4, 3, 2, 1, 1, 1, "circular", True),
    (3, 4, 3, 1, 1, 1, 1, "replicate", True),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("cin,cout,k,s,p,d,g,mode,bias", CONVS)
def test_conv_channel_and_position_reproduce_pytorch(cin, cout, k, s, p, d, g, mode, bias):
    torch.manual_seed(0)
    layer = nn.Conv2d(cin, cout, k, s, p, d, g, bias, mode)
    x = torch.randn(2, cin, 9, 8)
    rec = traced(layer, x)
    out = rec.output
    for c in range(cout):
        ch = D.conv_channel(rec, c, batch=1)
        torch.testing.assert_close(ch.output, out[1, c], rtol=0, atol=ATOL)
        torch.testing.assert_close(ch.sum, ch.intermediate.sum(0), rtol=0, atol=0)
        assert len(ch.input_channels) == cin // g and ch.input_channels[0] == (c // (cout // g)) * (cin // g)
        # independent: the same layer with every weight but kernel slice (c, i) zeroed, no bias
        for i in range(cin // g):
            solo = nn.Conv2d(cin, cout, k, s, p, d, g, False, mode)
            with torch.no_grad():
                solo.weight.zero_()
                solo.weight[c, i] = layer.weight[c, i]
                expected = solo(x)[1, c]
            torch.testing.assert_close(ch.intermediate[i], expected, rtol=0, atol=ATOL)
    h_out, w_out = out.shape[-2:]
    for c, y, xx in [(0, 0, 0), (cout - 1, h_out - 1, w_out - 1), (cout // 2, h_out // 2, 0), (1, 0, w_out - 1)]:
        pos = D.conv_position(rec, c, y, xx, batch=1)
        assert pos.output == pytest.approx(float(out[1, c, y, xx]), abs=ATOL)
        torch.testing.assert_close(pos.products, pos.patches * pos.kernels, rtol=0, atol=0)
        inp = x[1, pos.input_channels[0] : pos.input_channels[-1] + 1]
        for u, v in [(u, v) for u in range(len(pos.rows)) for v in range(len(pos.cols))]:
            r, col = int(pos.rows[u]), int(pos.cols[v])
            if pos.inside[u, v]:
                torch.testing.assert_close(pos.patches[:, u, v], inp[:, r, col], rtol=0, atol=0)
            elif mode == "zeros":
                assert (pos.patches[:, u, v] == 0).all()


def test_conv_behind_an_asymmetric_pad_layer_and_functional_same_padding():
    torch.manual_seed(1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.pad = nn.ZeroPad2d((0, 1, 0, 1))
            self.conv = nn.Conv2d(3, 4, 3, stride=2)
            self.w = nn.Parameter(torch.randn(2, 4, 2, 2))

        def forward(self, x):
            y = self.conv(self.pad(x))
            return F.conv2d(y, self.w, None, 1, "same")

    net = Net()
    t = trace(net, torch.randn(1, 3, 10, 10))
    conv = t["conv"]
    assert conv.inputs == ["pad"] and conv.input.shape[-2:] == (11, 11)
    assert t["pad"].params["pad"] == (0, 1, 0, 1)
    same = t.layers[-1]
    assert same.kind == "conv" and same.op == "F.conv2d" and same.params["pad"] == (0, 1, 0, 1)
    for rec in (conv, same):
        for c in range(rec.output.shape[1]):
            torch.testing.assert_close(D.conv_channel(rec, c).output, rec.output[0, c], rtol=0, atol=ATOL)
        pos = D.conv_position(rec, 1, -1, -1)
        assert pos.output == pytest.approx(float(rec.output[0, 1, -1, -1]), abs=ATOL)


def test_conv_details_on_efficientnet_depthwise_layer(efficientnet_trace):
    rec = efficientnet_trace["_blocks.1._depthwise_conv"]
    ch = D.conv_channel(rec, 17)
    assert ch.input_channels == [17] and ch.intermediate.shape[0] == 1
    torch.testing.assert_close(ch.output, rec.output[0, 17], rtol=0, atol=ATOL)
    pos = D.conv_position(rec, 95, 55, 55)
    assert pos.output == pytest.approx(float(rec.output[0, 95, 55, 55]), abs=ATOL)


# -- pooling --------------------------------------------------------------------------------
MAXPOOLS = [  # kernel, stride, padding, dilation, ceil_mode
    (2, 2, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 2, 1, 2, True),
    (3, 1, 1, 1, True),
    (2, 3, 1, 1, True),
    ((3, 2), (2, 1), (1, 0), 1, False),
]


@pytest.mark.parametrize("k,s,p,d,ceil", MAXPOOLS)
def test_maxpool_windows_values_and_argmax_match_pytorch(k, s, p, d, ceil):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 8)
    rec = traced(nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), x)
    _, idx = F.max_pool2d(x, k, s, p, d, ceil_mode=ceil, return_indices=True)
    w = D.pool_windows(rec, batch=1)
    torch.testing.assert_close(w.values, rec.output[1], rtol=0, atol=0)
    assert torch.equal(w.argmax, idx[1])
    oh, ow = rec.output.shape[-2:]
    for c, y, xx in [(0, 0, 0), (2, oh - 1, ow - 1), (1, oh // 2, ow // 2)]:
        win = D.pool_window(rec, c, y, xx, batch=1)
        assert win.value == float(rec.output[1, c, y, xx])
        r, col = win.argmax
        assert r * 8 + col == int(idx[1, c, y, xx]) and float(x[1, c, r, col]) == win.value
        assert (win.values[~win.inside] == float("-inf")).all()


AVGPOOLS = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    (2, 2, 0, False, True, None),
    (3, 2, 1, True, True, None),
    (3, 2, 1, True, False, None),
    (3, 2, 1, False, True, 5),
    (2, 3, 1, True, True, None),
    ((3, 2), (1, 2), (1, 1), True, False, None),
]


@pytest.mark.parametrize("k,s,p,ceil,include,div", AVGPOOLS)
def test_avgpool_windows_and_divisors_match_pytorch(k, s, p, ceil, include, div):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 8)
    rec = traced(nn.AvgPool2d(k, s, p, ceil, include, div), x)
    w = D.pool_windows(rec, batch=0)
    torch.testing.assert_close(w.values, rec.output[0], rtol=0, atol=ATOL)
    oh, ow = rec.output.shape[-2:]
    for c, y, xx in [(0, 0, 0), (2, oh - 1, ow - 1), (1, oh // 2, 1)]:
        win = D.pool_window(rec, c, y, xx)
        assert win.value == pytest.approx(float(rec.output[0, c, y, xx]), abs=ATOL)
        assert win.value == pytest.approx(float(win.values.sum()) / win.divisor, abs=1e-6)


@pytest.mark.parametrize(
    "layer",
    [
        nn.AdaptiveAvgPool2d((3, 2)),
        nn.AdaptiveAvgPool2d(1),
        nn.AdaptiveAvgPool2d((7, 5)),
        nn.AdaptiveMaxPool2d((3, 4)),
        nn.AdaptiveAvgPool2d((4, 3)),
    ],
)
def test_adaptive_pool_windows_match_pytorch(layer):
    torch.manual_seed(0)
    x = torch.randn(1, 2, 7, 5)
    rec = traced(layer, x)
    w = D.pool_windows(rec)
    torch.testing.assert_close(w.values, rec.output[0], rtol=0, atol=ATOL)
    if isinstance(layer, nn.AdaptiveMaxPool2d):
        _, idx = F.adaptive_max_pool2d(x, layer.output_size, return_indices=True)
        assert torch.equal(w.argmax, idx[0])
    win = D.pool_window(rec, 1, -1, -1)
    assert win.value == pytest.approx(float(rec.output[0, 1, -1, -1]), abs=ATOL)
    assert D.pool.adaptive_bounds(7, 3) == [(0, 3), (2, 5), (4, 7)]


# -- element-wise, batch-norm, flatten, linear, softmax -------------------------------------
@pytest.mark.parametrize(
    "layer,kind",
    [
        (nn.ReLU(), "relu"),
        (nn.ReLU6(), "relu6"),
        (nn.SiLU(), "silu"),
        (nn.Sigmoid(), "sigmoid"),
        (nn.Tanh(), "tanh"),
        (nn.LeakyReLU(0.2), "activation"),
        (nn.ReLU(inplace=True), "relu"),
    ],
)
def test_activations_recompute_their_outputs(layer, kind):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 5) * 5
    reference = x.clone()
    rec = traced(layer, x)
    assert rec.kind == kind
    e = D.activation(rec, batch=1)
    torch.testing.assert_close(e.input, reference[1], rtol=0, atol=0)  # even after an in-place ReLU
    torch.testing.assert_close(e.recomputed, e.output, rtol=0, atol=1e-6)
    torch.testing.assert_close(e.output, rec.output[1], rtol=0, atol=0)


def test_functional_activations_have_formulas():
    class Net(nn.Module):
        def forward(self, x):
            return torch.tanh(torch.sigmoid(F.silu(F.relu6(x * 4))))

    t = trace(Net(), torch.randn(1, 2, 3, 3))
    kinds = [r.kind for r in t.layers]
    assert kinds == ["input", "mul", "relu6", "silu", "sigmoid", "tanh"]
    for rec in t.layers[2:]:
        e = D.activation(rec)
        assert e.formula and torch.allclose(e.recomputed, e.output, atol=1e-6)


@pytest.mark.parametrize("train", [False, True])
def test_batchnorm_affine_form(train):
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4, eps=1e-3)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2)
        bn.weight.normal_()
        bn.bias.normal_()
    x = torch.randn(3, 4, 5, 5) * 2 + 1
    rec = traced(bn, x, train=train)
    a = D.batchnorm(rec)
    assert a.batch_statistics is train
    torch.testing.assert_close(a.apply(rec.input), rec.output, rtol=0, atol=ATOL)
    torch.testing.assert_close(a.apply(rec.input[0]), rec.output[0], rtol=0, atol=ATOL)
    mean = x.mean((0, 2, 3)) if train else bn.running_mean
    var = x.var((0, 2, 3), unbiased=False) if train else bn.running_var
    torch.testing.assert_close(a.scale, bn.weight / torch.sqrt(var + 1e-3))
    torch.testing.assert_close(a.shift, bn.bias - mean * a.scale)


def test_flatten_index_maps_both_ways():
    x = torch.randn(2, 3, 4, 5)
    rec = traced(nn.Flatten(), x)
    for i in range(60):
        c, h, w = D.flatten_index(rec, i)
        assert rec.output[1, i] == x[1, c, h, w]
        assert D.flatten_position(rec, (c, h, w)) == i
    assert D.flatten_index(rec, 59) == (2, 3, 4)
    with pytest.raises(ConvscopeError):
        D.flatten_index(rec, 60)


def test_linear_contributions_sum_to_logits():
    torch.manual_seed(0)
    layer = nn.Linear(7, 3)
    x = torch.randn(2, 7)
    rec = traced(layer, x)
    d = D.linear(rec, batch=1)
    torch.testing.assert_close(d.output, rec.output[1], rtol=0, atol=ATOL)
    torch.testing.assert_close(d.contributions[2, 5], layer.weight[2, 5] * x[1, 5])
    torch.testing.assert_close(d.sums + d.bias, d.output)


def test_softmax_detail_from_record_trace_and_tensor():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.Softmax(dim=1))
    t = trace(net, torch.randn(2, 4))
    s = D.softmax(t["1"], batch=1)
    torch.testing.assert_close(s.probs.float(), t["1"].output[1], rtol=0, atol=1e-6)
    logits = t["0"].output[1]
    assert s.exp[3].item() == pytest.approx(math.exp(float(logits[3])), rel=1e-6)
    assert s.sum == pytest.approx(sum(math.exp(float(v)) for v in logits), rel=1e-6)
    torch.testing.assert_close(D.softmax(t, batch=1).probs, s.probs)
    big = D.softmax(torch.tensor([1000.0, 999.0, 0.0]))
    assert big.shift == 1000.0 and torch.isfinite(big.probs).all()
    torch.testing.assert_close(big.probs.float(), torch.softmax(torch.tensor([1000.0, 999.0, 0.0]), 0))


def test_describe_dispatch_errors_and_json():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 2))
    t = trace(net, torch.randn(1, 1, 6, 6))
    assert isinstance(D.describe(t["0"]), D.ConvChannel)
    assert isinstance(D.describe(t["0"], 1, 2, 3), D.ConvPosition)
    assert isinstance(D.describe(t["1"]), D.Elementwise)
    assert isinstance(D.describe(t["2"], 1, 1, 0), D.PoolWindow)
    assert isinstance(D.describe(t["4"]), D.LinearDetail)
    assert D.describe(t["3"]) == D.FlattenMap((2, 2, 2), 8)
    with pytest.raises(ConvscopeError, match="no arithmetic detail"):
        D.describe(t["input"])
    with pytest.raises(ConvscopeError, match="out of range"):
        D.conv_channel(t["0"], 2)
    with pytest.raises(ConvscopeError, match="not a convolution"):
        D.conv_channel(t["1"], 0)
    with pytest.raises(ConvscopeError, match="batch index"):
        D.conv_position(t["0"], 0, 0, 0, batch=1)
    pos = json.loads(json.dumps(D.conv_position(t["0"], 1, 3, 3).to_dict()))
    assert len(pos["patches"][0]) == 3 and pos["output"] == pytest.approx(float(t["0"].output[0, 1, 3, 3]), abs=ATOL)
    win = json.loads(json.dumps(D.pool_window(t["2"], 0, 0, 0).to_dict()))
    assert win["op"] == "max" and win["argmax"] is not None


def test_merge_details_of_residual_add_and_concat():
    from convscope.models.reference_nets import FunctionalCNN

    torch.manual_seed(0)
    t = trace(FunctionalCNN(), torch.randn(2, 3, 32, 32))
    add = D.merge(t["add"], batch=1)
    assert add.inputs == ["relu_1", "max_pool2d"] and add.ranges is None
    torch.testing.assert_close(add.recomputed, add.output, rtol=0, atol=0)
    torch.testing.assert_close(add.operands[1], t["max_pool2d"].output[1], rtol=0, atol=0)
    cat = D.describe(t["cat"], batch=1)
    assert isinstance(cat, D.Merge) and cat.ranges == [(0, 8), (8, 12)]
    torch.testing.assert_close(cat.output[8:12], t["branch"].output[1], rtol=0, atol=0)
    torch.testing.assert_close(cat.recomputed, cat.output, rtol=0, atol=0)
    json.dumps(cat.to_dict())
