"""Reference architectures that are not plain stacks, for tests, benchmarks and demos.

torchvision is not a dependency, so the ResNet-18 shape is written out here: BatchNorm,
residual additions, strided downsampling and adaptive pooling, the things that break
tools that only understand ``nn.Sequential``. :class:`FunctionalCNN` uses functional
ops (``F.relu``, ``torch.flatten``, ``x + y``, ``torch.cat``) instead of modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    """ResNet's basic block: conv-bn-relu-conv-bn plus the (possibly projected) input."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18Shaped(nn.Module):
    """torchvision's ResNet-18 layout (same module names: ``layer4.1.conv2`` ...)."""

    def __init__(self, num_classes: int = 1000, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        planes = [width, width * 2, width * 4, width * 8]
        blocks, in_planes = [], width
        for i, p in enumerate(planes):
            stride = 1 if i == 0 else 2
            blocks.append(nn.Sequential(BasicBlock(in_planes, p, stride), BasicBlock(p, p)))
            in_planes = p
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet18_shaped(num_classes: int = 1000, in_channels: int = 3) -> ResNet18Shaped:
    """A randomly initialised ResNet-18-shaped net (11.7 M parameters at 1000 classes)."""
    return ResNet18Shaped(num_classes=num_classes, in_channels=in_channels)


class FunctionalCNN(nn.Module):
    """A small net written with functional ops, including a residual add and a concat."""

    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.branch = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(12 * 8 * 8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(x, 2)
        y = F.relu(self.conv2(x)) + x
        z = torch.cat([y, self.branch(y)], dim=1)
        z = F.avg_pool2d(z, 2)
        return self.fc(torch.flatten(z, 1))
