"""A net that ends in nn.Softmax / nn.LogSoftmax is read as it is: its confidence changes,
deletion curves and Score-CAM weights equal those of the same net without the final layer."""

from __future__ import annotations

import pytest
import torch
from nets import seeded, small_classifier
from torch import nn

import convscope as cs
from convscope.explain import confidence_change, deletion

TAILS = {"probabilities": lambda: nn.Softmax(dim=1), "log-probabilities": lambda: nn.LogSoftmax(dim=1)}


def _pair(kind: str):
    bare = seeded(small_classifier)
    ended = nn.Sequential(*bare, TAILS[kind]()).eval()  # the same modules, with the softmax after
    return bare, ended


@pytest.mark.parametrize("kind", list(TAILS))
def test_confidence_change_and_deletion_match_the_bare_net(kind):
    bare, ended = _pair(kind)
    torch.manual_seed(1)
    x = torch.rand(2, 3, 8, 8)
    maps = torch.rand(2, 8, 8)
    target = [1, 3]
    c_bare, c_end = confidence_change(bare, x, maps, target), confidence_change(ended, x, maps, target)
    # independently: the class probability is the softmax of the bare net's logits
    with torch.no_grad():
        y = bare(x).softmax(1)[[0, 1], target]
    torch.testing.assert_close(c_end.original, y)
    torch.testing.assert_close(c_end.explained, c_bare.explained)
    assert (c_bare.output, c_end.output) == ("logits", kind)
    d_bare, d_end = deletion(bare, x, maps, target, steps=6), deletion(ended, x, maps, target, steps=6)
    torch.testing.assert_close(d_end.scores, d_bare.scores)
    assert d_end.to_dict()["output"] == kind


@pytest.mark.parametrize("kind", list(TAILS))
def test_scorecam_weights_match_the_bare_net(kind):
    bare, ended = _pair(kind)
    x = torch.rand(1, 3, 8, 8)
    a, b = cs.ScoreCAM(bare, "3")(x, 2), cs.ScoreCAM(ended, "3")(x, 2)
    torch.testing.assert_close(b.raw, a.raw)
    assert (a.output, b.output, b.layer) == ("logits", kind, "3")


@pytest.mark.parametrize("kind", list(TAILS))
def test_predict_reads_the_models_own_probabilities(kind):
    bare, ended = _pair(kind)
    x = torch.rand(3, 3, 8, 8)
    want = [[(name, pytest.approx(p, rel=1e-5)) for name, p in row] for row in cs.Model(bare).predict(x, top=4)]
    assert cs.Model(ended).predict(x, top=4) == want
