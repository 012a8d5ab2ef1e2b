"""Covered copies of an image reuse the image's own forward outside the covered box
(explain.regions, used by occlusion): equal to the plain forward, on real nets, and only
where that is safe."""

from __future__ import annotations

import threading

import torch
from torch import nn

from convscope import explain as ex
from convscope.explain.regions import ChangedBoxes


def _covered(x, rows, boxes):
    xs = x[rows].clone()
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        xs[i, :, y0:y1, x0:x1] = 0.0
    return xs


def _check(net, x, boxes, rows):
    rows = torch.tensor(rows)
    xs = _covered(x, rows, boxes)
    regions = ChangedBoxes(net)
    with regions.session(), torch.no_grad():
        regions.base(x)
        got = regions.run(xs, rows, boxes)
    with torch.no_grad():
        want = net(xs)
    return regions.reused, float((got - want).abs().max() / want.abs().max())


def test_resnet_covered_copies_equal_the_plain_forward(resnet, resnet_x):
    # boxes inside, at each border and in a corner: the crops' zero padding is the conv's own
    boxes = [(4, 12, 4, 12), (40, 50, 30, 64), (0, 5, 60, 64), (58, 64, 0, 64), (0, 16, 0, 16)]
    reused, err = _check(resnet, resnet_x, boxes, [0, 1, 0, 1, 1])
    assert reused >= 2  # the stem convolution and max-pool at least ran on crops
    assert err < 1e-5


def test_efficientnet_covered_copies_equal_the_plain_forward(efficientnet, effnet_x):
    net = efficientnet.net
    reused, err = _check(net, effnet_x, [(0, 28, 0, 28), (100, 128, 190, 224)], [0, 0])
    assert reused >= 3  # stem, depthwise (groups) and pointwise convolutions
    assert err < 1e-5


class _InPlaceMix(nn.Module):
    """An in-place addition by plain code of a map that differs far from the box."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 2, 3)

    def forward(self, x):
        y = self.a(x)
        y += self.b(x.flip(-1))  # the mirrored box changes y far from the box
        return self.c(y).flatten(1)


def test_an_in_place_change_by_plain_code_ends_the_reuse():
    net = _InPlaceMix().eval()
    x = torch.randn(1, 3, 20, 20, generator=torch.Generator().manual_seed(2))
    reused, err = _check(net, x, [(2, 6, 2, 6)], [0])
    assert reused == 1  # only `a`: `c` sees y after the in-place addition and runs in full
    assert err < 1e-6


def test_another_thread_meanwhile_runs_the_plain_net_and_forward_is_put_back(small_resnet, resnet_x):
    regions = ChangedBoxes(small_resnet)
    with torch.no_grad():
        want = small_resnet(resnet_x)
    got = []
    with regions.session(), torch.no_grad():
        regions.base(resnet_x)
        t = threading.Thread(target=lambda: got.append(small_resnet(resnet_x)))
        t.start()
        t.join()
        assert "forward" in vars(small_resnet.conv1)
    assert torch.equal(got[0], want)
    assert all("forward" not in vars(m) for m in small_resnet.modules())


def test_occlusion_with_and_without_reuse_agree(resnet, resnet_x):
    kw = {"window": 24, "stride": 20, "batch_size": 7}
    on = ex.Occlusion(resnet, **kw)(resnet_x, [3, 7]).raw
    off = ex.Occlusion(resnet, reuse=False, **kw)(resnet_x, [3, 7]).raw
    assert on.abs().max() > 0
    assert float((on - off).abs().max() / off.abs().max()) < 1e-5


def test_reuse_continues_past_residual_additions(resnet, resnet_x):
    """A small box: the stem, layer1.0's two convolutions, then (past the block's `out + identity`)
    layer1.1's and on until the box covers most of a map; the plain forward's numbers throughout."""
    reused, err = _check(resnet, resnet_x, [(20, 26, 30, 36), (0, 6, 0, 6)], [0, 1])
    before_first_addition = 4  # conv1, maxpool, layer1.0.conv1, layer1.0.conv2
    assert reused > before_first_addition + 2  # layer1.1.conv1 and conv2 at least
    assert err < 1e-5


def test_efficientnet_reuse_continues_past_its_skip_additions(efficientnet, effnet_x):
    net = efficientnet.net
    regions = ChangedBoxes(net)
    with regions.session(), torch.no_grad():
        regions.base(effnet_x)
        xs = _covered(effnet_x, torch.tensor([0]), [(100, 128, 100, 128)])
        got = regions.run(xs, torch.tensor([0]), [(100, 128, 100, 128)])
    with torch.no_grad():
        want = net(xs)
    assert float((got - want).abs().max() / want.abs().max()) < 1e-5
    # blocks 0-1 have no skip (6 convolutions with the stem); reuse goes on into block 2 and past its addition
    assert regions.reused > 9
