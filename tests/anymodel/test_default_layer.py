"""The one default layer: the last convolution block's output, never a pooling layer after it."""

from __future__ import annotations

import torch
from nets import seeded, small_classifier, squeezeish, vggish

import convscope as cs
from convscope.explain.layers import resolve_layer


def test_vgg_shape_defaults_to_the_last_conv_block_not_avgpool():
    net = seeded(vggish)
    x = torch.rand(1, 3, 16, 16)
    ref = resolve_layer(net, None, x)
    # the conv block's output (features: conv-bn-relu-maxpool, 4x4), not avgpool (also 4x4, adaptive)
    assert str(ref) == "features"
    assert ref.shape == (1, 16, 4, 4)
    assert cs.GradCAM(net)(x).layer == "features"


def test_squeezenet_shape_skips_the_classifier_conv():
    net = seeded(squeezeish)
    x = torch.rand(1, 3, 32, 32)
    ref = resolve_layer(net, None, x)
    # the features' output (the Fire module's concatenation), not classifier.2 (the ReLU of the 1x1 class conv)
    assert str(ref) == "features"
    assert ref.shape[1] == 16


def test_plain_net_keeps_the_last_relu():
    net = seeded(small_classifier)
    assert str(resolve_layer(net, None, torch.rand(1, 3, 8, 8))) == "3"


def test_convnext_shape_defaults_to_the_last_map_block_past_its_channels_last_layers():
    from nets import convnextish

    net = seeded(convnextish)
    ref = resolve_layer(net, None, torch.rand(1, 3, 32, 32))
    # the squeeze-excitation block's output (B, 12, 8, 8): not a (B, 8, 8, 48) Linear, not the avgpool
    assert str(ref) == "2" and ref.shape == (1, 12, 8, 8)


class FunctionalPool(torch.nn.Module):
    """Convolution by F.conv2d with the net's own parameters, then a max-pool written as an amax
    over unfolded windows (12x6 -> 5x2): the layers are fx nodes, not modules."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(4, 3, 3, 3))
        self.head = torch.nn.Linear(4 * 5 * 2, 3)

    def forward(self, x):
        y = torch.relu(torch.nn.functional.conv2d(x, self.w))
        pooled = y.unfold(2, 3, 2).unfold(3, 3, 2).amax((-1, -2))
        return self.head(pooled.flatten(1))


def test_a_functional_net_defaults_to_its_conv_map_not_the_amax():
    torch.manual_seed(0)
    ref = resolve_layer(FunctionalPool().eval(), None, torch.rand(1, 3, 14, 8))
    assert ref.shape == (1, 4, 12, 6) and str(ref) == "relu"


def test_the_pages_why_panel_offers_the_same_default():
    from convscope.server import Registry
    from convscope.server.explain_views import options_json

    model = cs.Model(seeded(vggish), classes=list("abcde"), preprocessing=cs.Preprocessing(size=(16, 16)), name="v")
    te = Registry(["v"], loader=lambda spec: model).trace("v", "sample-0")
    options = options_json(te)
    assert options["default_layer"] == "features" == str(resolve_layer(model.net, None, te.x))
    assert "avgpool" in [layer["name"] for layer in options["layers"]]  # offered, just not the default
