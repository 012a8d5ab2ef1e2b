"""The line a command ends with counts its files in the right number: '1 layer figure',
'1 heatmap', '2 heatmaps' (it said '1 layer figures, 1 kernel figures' and '1 heatmaps').
Real commands, in-process, on the untrained zoo net mnist-cnn and a drawn stroke."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convscope.cli.main import main


@pytest.fixture()
def digit(tmp_path):
    a = np.zeros((28, 28), np.uint8)
    a[5:23, 13:16] = 255
    Image.fromarray(a).save(tmp_path / "digit.png")
    return tmp_path / "digit.png"


def last_line(argv, capsys) -> str:
    assert main([*argv, "--model", "mnist-cnn", "--no-progress"]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_explain_one_layer(digit, tmp_path, capsys):
    line = last_line(["explain", str(digit), "--layers", "conv1", "--out", str(tmp_path / "e")], capsys)
    assert line.startswith("wrote 1 layer figure, 1 kernel figure, trace.json")
    assert (tmp_path / "e" / "kernels" / "conv1.png").is_file() and len(
        list((tmp_path / "e" / "layers").iterdir())
    ) == 1


@pytest.mark.parametrize(
    "methods, said", [("saliency", "wrote 1 heatmap and"), ("saliency,gradcam", "wrote 2 heatmaps and")]
)
def test_attribute(methods, said, digit, tmp_path, capsys):
    out = tmp_path / "a"
    assert last_line(["attribute", str(digit), "--method", methods, "--out", str(out)], capsys).startswith(said)
    assert len(list(out.glob("*_raw.npy"))) == methods.count(",") + 1
