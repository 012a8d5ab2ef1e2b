"""cs.compare against plain PyTorch: forward hooks on the (non-inplace) shipped net collect
every layer's output, and the distances are computed here with torch's own functions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_vgg_names import TINY_VGG_CHILDREN

import convscope as cs
from convscope.models import Model, load_model
from convscope.models.zoo import TinyVGG


def hooked_outputs(net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every child's output by forward hooks (the zoo nets are Sequentials without in-place ops)."""
    assert not any(getattr(m, "inplace", False) for m in net.modules())
    outs = {"input": x}
    handles = [
        m.register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o.detach().clone()))
        for n, m in net.named_children()
    ]
    try:
        with torch.no_grad():
            net.eval()(x)
    finally:
        for h in handles:
            h.remove()
    return outs


def reference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    a, b = a.double().flatten(), b.double().flatten()
    return (
        float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(a)),
        float(F.cosine_similarity(a, b, dim=0)),
        float((a - b).abs().max()),
    )


def check_against_hooks(c, net_a, net_b, xa, xb) -> None:
    ra, rb = hooked_outputs(net_a, xa), hooked_outputs(net_b, xb)
    assert c.names == list(ra)  # every layer, in the net's order
    for name in c.names:
        d = c[name]
        want = reference(ra[name], rb[name])
        assert (d.relative_l2, d.cosine, d.max_abs) == pytest.approx(want, rel=1e-6, abs=1e-9), name
        assert d.shape == tuple(ra[name].shape)
        np.testing.assert_allclose(c.diff(name), (ra[name] - rb[name]).numpy(), rtol=1e-6, atol=1e-6)


def test_two_mnist_digits_through_the_shipped_model(model, digit_batches):
    x3, x8 = digit_batches
    c = cs.compare(cs.trace(model, x3), cs.trace(model, x8), labels=("3", "8"))
    check_against_hooks(c, model.net, model.net, x3, x8)
    assert c.mismatched == []
    assert all(d.relative_l2 > 0.1 for d in c.layers)  # a 3 and an 8 differ everywhere
    # the convenience form is the same comparison
    same = cs.compare_images(model, x3, x8, labels=("3", "8"))
    assert same.to_json() == c.to_json()
    text = json.dumps(c.to_json(), allow_nan=False)  # strict JSON: no NaN or Infinity
    assert json.loads(text)["layers"][0]["name"] == "input"


def test_two_checkpoints_on_one_digit(model, digit_batches, perturbed_checkpoint, perturbed_layer):
    other = load_model(str(perturbed_checkpoint))
    x3 = digit_batches[0]
    c = cs.compare_models(model, other, x3)
    check_against_hooks(c, model.net, other.net, x3, x3)
    names = c.names
    before = names[: names.index(perturbed_layer)]
    assert all(c[n].relative_l2 == 0.0 and c[n].cosine == pytest.approx(1.0) for n in before)
    assert all(c[n].relative_l2 > 0 for n in names[names.index(perturbed_layer) :])
    assert c.parting().name == perturbed_layer


def test_layers_of_other_shapes_are_listed_not_failing(model, digit_batches):
    torch.manual_seed(0)
    narrow = Model(
        TinyVGG(in_channels=1, input_size=(28, 28), filters=8, dropout=0.5).eval(),
        preprocessing=model.preprocessing,
        name="narrow",
    )
    c = cs.compare_models(model, narrow, digit_batches[0])
    mismatched = {m.name: m for m in c.mismatched}
    # same names, other widths: every map layer and the flatten; dropout is in the narrow net only
    assert set(mismatched) == {*TINY_VGG_CHILDREN[:-1], "dropout"}  # all but the output layer
    assert mismatched["conv_1_1"].a == (1, 10, 26, 26) and mismatched["conv_1_1"].b == (1, 8, 26, 26)
    assert mismatched["dropout"].a is None and mismatched["dropout"].reason == "only in b"
    assert c.names == ["input", "output"]  # what has one shape on both sides is still compared
    assert c["input"].relative_l2 == 0.0
    json.dumps(c.to_json(), allow_nan=False)


def test_two_attributions_share_one_scale(model, digit_batches):
    x3, x8 = digit_batches
    c = cs.compare_images(model, x3, x8, method="gradcam")
    pair = c.attributions
    a = cs.attribute(model, x3, "gradcam").numpy()
    b = cs.attribute(model, x8, "gradcam").numpy()
    np.testing.assert_allclose(pair.a, a, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(pair.b, b, rtol=1e-6, atol=1e-7)
    assert pair.targets_a == [3] and pair.targets_b == [8]  # each explains its own prediction
    both = np.abs(np.concatenate([a.ravel(), b.ravel()]).astype(np.float64))
    assert pair.top == pytest.approx(float(np.percentile(both, 99.5)), rel=1e-6)
    from convscope.render.heatmap import heatmap_rgb

    # one scale: a and b drawn apart with the shared top are exactly the two halves of one joint map
    apart = np.concatenate([heatmap_rgb(pair.a[0], top=pair.top), heatmap_rgb(pair.b[0], top=pair.top)], axis=1)
    np.testing.assert_array_equal(apart, heatmap_rgb(np.concatenate([pair.a[0], pair.b[0]], axis=1)))
    assert c.to_json()["attributions"]["top"] == pytest.approx(pair.top)
