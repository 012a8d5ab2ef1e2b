"""Score-CAM's speed paths at equal output: one forward per distinct mask, the pytorch-grad-cam
convention, the folded channels-last copy (issue 16).

pytorch-grad-cam needs torchvision, which this environment must not have, so its definition
(pytorch_grad_cam/score_cam.py and base_cam.py, 1.5.7) is written here as the plain loop it
runs: every channel, ``torch.nn.UpsamplingBilinear2d`` (corners aligned), ``(u - min) / (max
- min + 1e-8)``, one masked forward each, the class logit, a softmax over the channels, the
weighted sum of the activations, ReLU. The net's target layer has dead (all-zero) channels
and channels that are positive multiples of others, so the shared-mask path really runs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope import explain as ex
from convscope.models.reference_nets import ResNet18Shaped


class Repeats(nn.Module):
    """layer4's 64 channels, then 3 of them scaled by 2 and 4 all-zero maps (71 channels)."""

    def forward(self, a):
        return torch.cat([a, 2.0 * a[:, :3], torch.zeros_like(a[:, :4])], 1)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        body = ResNet18Shaped(num_classes=10, width=8).eval()
        self.body = nn.Sequential(
            body.conv1, body.bn1, body.relu, body.maxpool, *(getattr(body, f"layer{i}") for i in (1, 2, 3, 4))
        )
        self.feat = Repeats()
        self.fc = nn.Linear(71, 10)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.feat(self.body(x)), 1).flatten(1))


@pytest.fixture(scope="module")
def net():
    return Net().eval()


def _activations(net, x):
    with torch.no_grad():
        return net.feat(net.body(x))


def _lib_scorecam(net, x, classes):
    """pytorch-grad-cam 1.5.7's ScoreCAM as plain PyTorch: every channel, no channel shared."""
    a = _activations(net, x)
    cams = []
    for b, c in enumerate(classes):
        up = nn.UpsamplingBilinear2d(size=x.shape[-2:])(a[b : b + 1])[0]
        lo = up.flatten(1).amin(1).view(-1, 1, 1)
        hi = up.flatten(1).amax(1).view(-1, 1, 1)
        masks = (up - lo) / (hi - lo + 1e-8)
        with torch.no_grad():
            logits = torch.cat(
                [net(x[b : b + 1] * masks[i : i + 16].unsqueeze(1))[:, c] for i in range(0, len(masks), 16)]
            )
        w = logits.softmax(0)
        cams.append((w.view(-1, 1, 1) * a[b]).sum(0).clamp(min=0))
    return torch.stack(cams)


def _paper_scorecam(net, x, classes):
    """Wang et al.'s Score-CAM as plain loops: constant maps skipped, class probabilities."""
    a = _activations(net, x)
    cams = []
    for b, c in enumerate(classes):
        cam = torch.zeros(a.shape[-2:])
        for k in range(a.shape[1]):
            m = a[b, k]
            if float(m.max()) == float(m.min()):
                continue
            up = F.interpolate(m[None, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
            mask = (up - up.min()) / (up.max() - up.min())
            with torch.no_grad():
                p = net(x[b : b + 1] * mask).softmax(-1)[0, c]
            cam += p * m
        cams.append(cam.clamp(min=0))
    return torch.stack(cams)


def _forwarded_rows(method, x, classes):
    """The result, and how many masked images the method ran (rows reaching the net's first conv)."""
    rows = []
    runner = method.runner(x, keep=frozenset({"feat"}))
    h = runner.body[0].register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    try:
        result = method(x, classes)
    finally:
        h.remove()
    return result, sum(rows) - len(x)  # less the unmasked forward


@pytest.mark.parametrize("batch_size", [7, 64])
def test_pytorch_grad_cam_convention_equals_its_definition(net, resnet_x, batch_size):
    classes = [1, 2]
    want = _lib_scorecam(net, resnet_x, classes)
    method = ex.ScoreCAM(net, "feat", convention="pytorch-grad-cam", batch_size=batch_size)
    assert method.runner(resnet_x, keep=frozenset({"feat"})) is not net  # the folded channels-last copy runs
    got, forwards = _forwarded_rows(method, resnet_x, classes)
    a = _activations(net, resnet_x)
    flat = a.flatten(2)
    dead = flat.amax(-1) == flat.amin(-1)
    assert int(dead.sum(1).min()) > 4  # the 4 zero maps and layer4's own dead ones
    # one forward per distinct mask: every constant map gives the zero mask, a doubled channel its original's
    assert forwards == _distinct_count(a) < 2 * 71 - 2 * 4
    assert torch.allclose(got.raw, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


def _distinct_count(a, constant_too=True):
    """Distinct min-max normalised maps per sample, summed (a constant map normalises to zeros;
    ``constant_too=False`` leaves constant maps out)."""
    n = 0
    for b in range(len(a)):
        flat = a[b].flatten(1)
        lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
        norm = torch.where(hi > lo, (flat - lo) / (hi - lo).clamp_min(1e-30), torch.zeros_like(flat))
        live = (hi > lo).view(-1)
        n += len({tuple(row.tolist()) for row, keep in zip(norm, live) if constant_too or keep})
    return n


def test_paper_convention_shares_masks_of_proportional_channels_at_equal_output(net, resnet_x):
    classes = [3, 0]
    want = _paper_scorecam(net, resnet_x, classes)
    got, forwards = _forwarded_rows(ex.ScoreCAM(net, "feat", batch_size=16), resnet_x, classes)
    a = _activations(net, resnet_x)
    flat = a.flatten(2)
    live = flat.amax(-1) != flat.amin(-1)
    assert int(live[:, :3].sum()) > 0
    # the doubled channels (and layer4's channels with one and the same hot pixel) run no forward of their own
    assert forwards == _distinct_count(a, constant_too=False) <= int(live.sum()) - int(live[:, :3].sum())
    assert torch.allclose(got.raw, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


def test_conventions_are_checked(net):
    with pytest.raises(Exception, match="convention"):
        ex.ScoreCAM(net, "feat", convention="grad-cam")
    with pytest.raises(Exception, match="top_n"):
        ex.ScoreCAM(net, "feat", convention="pytorch-grad-cam", top_n=3)
