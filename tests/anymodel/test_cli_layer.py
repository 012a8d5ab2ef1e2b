"""The CLI says which layer a CAM method explained: the one default rule, not a pooling layer."""

from __future__ import annotations

import numpy as np
from PIL import Image

from convscope.cli.main import main

VGGISH = """
import torch
from torch import nn


def vggish():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                         nn.AdaptiveAvgPool2d((56, 56)), nn.Flatten(), nn.Linear(4 * 56 * 56, 3))
"""


def test_attribute_prints_the_default_layer(tmp_path, capsys):
    (tmp_path / "user_vgg.py").write_text(VGGISH)
    image = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(image)
    rc = main(
        [
            "attribute",
            str(image),
            "--model",
            f"{tmp_path / 'user_vgg.py'}:vggish",
            "--method",
            "gradcam",
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "at layer 2\n" in out  # the max-pooled conv block (56x56), not the avgpool (3) after it
