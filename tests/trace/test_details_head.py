"""The classifier head's summaries (top linear contributions, the softmax rest) against plain PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convscope.errors import ConvscopeError
from convscope.trace import details as D
from convscope.trace import trace


def test_top_contributions_are_the_largest_products_and_the_signed_sums_cover_all_inputs():
    torch.manual_seed(0)
    layer = nn.Linear(50, 4)
    x = torch.randn(2, 50)
    t = trace(nn.Sequential(layer), x)
    lin = D.linear(t["0"], batch=1)
    top = D.top_contributions(lin, 2, 7)
    products = (layer.weight[2] * x[1]).detach()
    expected = products.abs().topk(7).indices
    assert top.indices.tolist() == expected.tolist() and top.count == 50 and top.unit == 2
    torch.testing.assert_close(top.products, products[expected])
    torch.testing.assert_close(top.weights, layer.weight[2, expected].detach())
    torch.testing.assert_close(top.inputs, x[1, expected])
    assert top.positive == pytest.approx(float(products.clamp_min(0).sum()), rel=1e-6)
    assert top.negative == pytest.approx(float(products.clamp_max(0).sum()), rel=1e-6)
    logit = float(layer(x)[1, 2])
    assert top.positive + top.negative + float(layer.bias[2]) == pytest.approx(logit, abs=1e-5)
    assert D.top_contributions(lin, 0, 500).indices.numel() == 50  # k past the inputs: all of them
    with pytest.raises(ConvscopeError, match="out of range"):
        D.top_contributions(lin, 4, 3)


def test_softmax_rest_is_what_the_shown_classes_leave_out():
    torch.manual_seed(0)
    logits = torch.randn(13) * 3
    sm = D.softmax(logits)
    probs = torch.softmax(logits.double(), 0)
    shown = probs.argsort(descending=True)[:10].tolist() + [int(probs.argmin())]
    rest = D.softmax_rest(sm, shown)
    left = [i for i in range(13) if i not in shown]
    assert rest.count == len(left) == 2
    assert rest.prob == pytest.approx(float(probs[left].sum()), rel=1e-9)
    assert rest.prob == pytest.approx(1 - float(probs[shown].sum()), abs=1e-12)
    assert rest.exp == pytest.approx(float(torch.exp(logits.double())[left].sum()), rel=1e-9)
    assert D.softmax_rest(sm, range(13)) is None
    big = D.softmax(torch.tensor([1000.0, 999.0, 0.0]))  # shifted: the rest's exp is on the same scale as sum
    r = D.softmax_rest(big, [0])
    assert r.count == 2 and r.exp == pytest.approx(big.sum - 1.0) and r.prob == pytest.approx(1 - float(big.probs[0]))
