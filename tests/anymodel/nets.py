"""torchvision-shaped nets written out here (torchvision is not installed): the layouts of
VGG/AlexNet (a pooling layer after the last conv that keeps its size), SqueezeNet (a 1x1
classifier conv, then global pooling), ConvNeXt (channels-last blocks) and nets that end in
their own softmax / log-softmax."""

from __future__ import annotations

import torch
from torch import nn


def vggish(classes: int = 5) -> nn.Module:
    """VGG-11-BN's shape: conv-bn-relu blocks, ``avgpool`` to 4x4 after a 4x4 map, a classifier."""

    class VGGish(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 8, 3, padding=1),
                nn.BatchNorm2d(8),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(8, 16, 3, padding=1),
                nn.BatchNorm2d(16),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.avgpool = nn.AdaptiveAvgPool2d((4, 4))
            self.classifier = nn.Sequential(nn.Linear(16 * 16, 32), nn.ReLU(), nn.Dropout(), nn.Linear(32, classes))

        def forward(self, x):
            return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

    return VGGish()


def squeezeish(classes: int = 6) -> nn.Module:
    """SqueezeNet's shape: features, then Dropout, a 1x1 conv to the classes, ReLU, global pooling."""

    class Fire(nn.Module):
        def __init__(self, cin: int, squeeze: int, expand: int) -> None:
            super().__init__()
            self.squeeze, self.squeeze_activation = nn.Conv2d(cin, squeeze, 1), nn.ReLU()
            self.expand1x1, self.expand1x1_activation = nn.Conv2d(squeeze, expand, 1), nn.ReLU()
            self.expand3x3, self.expand3x3_activation = nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU()

        def forward(self, x):
            x = self.squeeze_activation(self.squeeze(x))
            return torch.cat(
                [self.expand1x1_activation(self.expand1x1(x)), self.expand3x3_activation(self.expand3x3(x))], 1
            )

    class Squeezeish(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(16, 4, 8)
            )
            self.classifier = nn.Sequential(
                nn.Dropout(0.5), nn.Conv2d(16, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1))
            )

        def forward(self, x):
            return torch.flatten(self.classifier(self.features(x)), 1)

    return Squeezeish()


def small_classifier(classes: int = 4, tail: nn.Module | None = None) -> nn.Module:
    """conv-relu-conv-relu-pool-linear, optionally followed by ``tail`` (nn.Softmax, nn.LogSoftmax)."""
    layers = [
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, classes),
    ]
    return nn.Sequential(*layers, *([tail] if tail is not None else [])).eval()


def seeded(make, *args, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return make(*args, **kwargs).eval()


class Permute(nn.Module):
    """torchvision.ops.misc.Permute."""

    def __init__(self, dims: list[int]) -> None:
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class CNBlock(nn.Module):
    """torchvision's ConvNeXt block: dwconv, permute to (B, H, W, C), LayerNorm, Linear-GELU-Linear,
    permute back, times ``layer_scale`` (an nn.Parameter of the block), plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim, eps=1e-6),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 0.5) + 0.1 * torch.randn(dim, 1, 1))

    def forward(self, x):
        return self.layer_scale * self.block(x) + x


class SqueezeExcite(nn.Module):
    """A channel gate: the spatial mean, a 1x1 conv, a sigmoid, broadcast-multiplied into the map."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(dim, dim, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))


def convnextish(classes: int = 5) -> nn.Module:
    """A stem, one ConvNeXt block, a squeeze-excitation gate, global pooling and a head."""
    return nn.Sequential(
        nn.Conv2d(3, 12, 4, stride=4),
        CNBlock(12),
        SqueezeExcite(12),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.LayerNorm(12),
        nn.Linear(12, classes),
    )
