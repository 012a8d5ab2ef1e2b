"""A ConvNeXt-block-shaped net in the explorer: channels-last layers are marked and sent as maps,
and the details of LayerNorm, permute, mean, Linear per position and broadcast products redo
PyTorch's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch.nn.functional as F
from nets import convnextish, seeded

from convscope import Model, Preprocessing
from convscope.server import Registry, views
from convscope.server.detail_views import detail


@pytest.fixture(scope="module")
def te():
    net = seeded(convnextish)
    model = Model(net, classes=[str(i) for i in range(5)], preprocessing=Preprocessing(size=(32, 32)), name="cnx")
    reg = Registry(["cnx"], loader=lambda spec: model)
    return reg.trace("cnx", "sample-0")


def test_trace_json_marks_channels_last_layers_and_sends_them_as_maps(te):
    layers = {layer["name"]: layer for layer in views.trace_json(te)["layers"]}
    assert [n for n, layer in layers.items() if layer["layout"] == "BHWC"] == [
        "permute",
        "1.block.2",
        "1.block.3",
        "1.block.4",
        "1.block.5",
    ]
    ln = layers["1.block.2"]
    assert ln["shape"] == [12, 8, 8] and ln["stored_shape"] == [8, 8, 12]
    assert layers["1.block.3"]["shape"] == [48, 8, 8]
    assert layers["permute"].get("relayout") and layers["permute_1"].get("relayout")
    assert layers["permute_1"]["layout"] == "BCHW" and not layers["add"].get("relayout")
    # the activation page of a channels-last layer is its (C, H, W) map
    out = te.trace["1.block.3"].output[0]
    np.testing.assert_array_equal(te.array("1.block.3")[5], out[:, :, 5].numpy())


def test_layer_norm_detail_recomputes_pytorch(te):
    d = detail(te, "1.block.2", channel=3, y=2, x=5)
    rec = te.trace["1.block.2"]
    v = rec.input[0, 2, 5]
    want = F.layer_norm(v, (12,), rec.module.weight, rec.module.bias, rec.module.eps)
    np.testing.assert_allclose(d["detail"]["recomputed"], want.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d["detail"]["output"], rec.output[0, 2, 5].numpy(), rtol=1e-5, atol=1e-6)
    assert d["detail"]["mean"] == pytest.approx(float(v.mean()), rel=1e-5)
    assert d["position"] == {"y": 2, "x": 5} and d["output"]["shape"] == [8, 8]


def test_permute_detail_finds_the_axes(te):
    d = detail(te, "permute", channel=0)
    assert d["detail"]["dims"] == [0, 2, 3, 1]
    assert d["detail"]["input_shape"] == [12, 8, 8] and d["detail"]["output_shape"] == [8, 8, 12]
    assert detail(te, "permute_1")["detail"]["dims"] == [0, 3, 1, 2]


def test_mean_detail_finds_the_axes_and_redoes_it(te):
    d = detail(te, "mean", channel=4)
    assert d["detail"]["dims"] == [1, 2] and d["detail"]["count"] == 64 and d["detail"]["keepdim"]
    assert d["detail"]["max_difference"] < 1e-6


def test_linear_on_channels_last_input_is_shown_per_position(te):
    d = detail(te, "1.block.3", channel=7, y=3, x=1)
    rec = te.trace["1.block.3"]
    want = rec.module.weight[7] @ rec.input[0, 3, 1] + rec.module.bias[7]
    assert d["view"] == "linear" and d["position"] == {"y": 3, "x": 1}
    assert d["value"] == pytest.approx(float(want), rel=1e-5, abs=1e-6)
    assert d["trace_value"] == pytest.approx(float(rec.output[0, 3, 1, 7]), rel=1e-6)


def test_broadcast_products_are_recomputed(te):
    gate = detail(te, "mul_1", channel=2)  # squeeze-excitation: map × (C, 1, 1) gate
    assert gate["detail"]["operands"] == ["add", "sigmoid"] and gate["detail"]["repeated"] == [[], [1, 2]]
    assert gate["detail"]["max_difference"] < 1e-6
    scale = detail(te, "mul", channel=2)  # layer scale: the block's own nn.Parameter
    assert scale["detail"]["operands"] == ["permute_1", "1.layer_scale"]
    assert scale["detail"]["shapes"][1] == [12, 1, 1] and scale["detail"]["max_difference"] < 1e-6


def test_gelu_on_channels_last_input_is_drawn_as_maps(te):
    d = detail(te, "1.block.4", channel=40, y=7, x=7)
    assert d["output"]["shape"] == [8, 8] and d["position"] == {"y": 7, "x": 7}
