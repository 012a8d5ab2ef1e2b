"""``convscope features`` and ``convscope examples`` end to end on the default model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from convscope.cli.commands.features import parse_units
from convscope.cli.main import main
from convscope.errors import ConvscopeError
from convscope.features import TopExamples, kernels, top_examples
from convscope.models import default_checkpoint_path, load_model

pytestmark = pytest.mark.skipif(not default_checkpoint_path().is_file(), reason="needs the shipped default model")


def _png(path) -> np.ndarray:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_parse_units():
    assert parse_units("0-3,7, 9-10") == [0, 1, 2, 3, 7, 9, 10]
    assert parse_units(None) is None
    for bad in ("a-b", "5-2", ","):
        with pytest.raises(ConvscopeError):
            parse_units(bad)


def test_features_writes_grid_channels_and_kernels(tmp_path, capsys):
    out = tmp_path / "f"
    assert (
        main(
            [
                "features",
                "--model",
                "default",
                "--layer",
                "conv_2_2",
                "--channels",
                "0-2",
                "--steps",
                "3",
                "--kernels",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "wrote" in printed.out and "step" in printed.err  # the tqdm bar goes to stderr
    singles = sorted(p.name for p in out.glob("channel_*.png"))
    assert singles == ["channel_0000.png", "channel_0001.png", "channel_0002.png"]
    assert _png(out / "channel_0001.png").shape == (140, 140, 3)  # 28 px upscaled x5
    assert _png(out / "grid.png").shape == (2 * (112 + 4) + 4, 2 * (112 + 4) + 4, 3)  # 3 pictures x4 in 2x2
    k = kernels(load_model("default"), "conv_2_2", [0, 1, 2])
    assert f"[-{k.scale:.3g}, {k.scale:.3g}]" in printed.out
    assert _png(out / "kernels.png").shape[:2] == (3 * 26 + 2, 10 * 26 + 2)


def test_features_marks_the_dead_channel_instead_of_drawing_it(tmp_path, capsys):
    """relu_2_2's channel 0 is 0 on every MNIST image (the default --data auto reads MNIST for
    a 1x28x28 model): it is printed and drawn as constant (dead), not optimised."""
    from convscope.data import load_splits

    out = tmp_path / "f"
    args = ["features", "--layer", "relu_2_2", "--channels", "0-1", "--steps", "2", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    seen = len(load_splits("mnist", progress=False).test)
    assert f"channel 0: constant (dead): 0 on all {seen} images of mnist test; not optimised" in printed
    assert "channel 1: objective" in printed and "channel 0: objective" not in printed
    from convscope.render.features import constant_card  # (after the printed check: new in this commit)

    card = _png(out / "channel_0000.png")
    assert np.array_equal(card, constant_card(140, 140, 0.0))  # the card, at a picture's size
    grid = _png(out / "grid.png")
    first, second = grid[4 : 4 + 112, 4 : 4 + 112], grid[4 : 4 + 112, 120 : 120 + 112]
    assert np.array_equal(first, constant_card(112, 112))
    assert not np.array_equal(second, constant_card(112, 112))
    # --data none: no data read, both channels optimised as before
    assert main([*args[:-1], str(tmp_path / "g"), "--data", "none"]) == 0
    assert "channel 0: objective" in capsys.readouterr().out


def test_features_logits_and_errors(tmp_path, capsys):
    assert main(["features", "--objective", "logit", "--channels", "3", "--steps", "2", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "class_0003.png").is_file()
    assert main(["features", "--layer", "nope", "--steps", "1", "--out", str(tmp_path)]) == 2
    assert "no layer named 'nope'" in capsys.readouterr().err


def test_examples_full_and_sharded_agree(tmp_path, capsys):
    args = [
        "examples",
        "--model",
        "default",
        "--data",
        "mnist",
        "--split",
        "val",
        "--layer",
        "relu_2_1",
        "--k",
        "4",
        "--channels",
        "0-3",
    ]
    assert main(args + ["--out", str(tmp_path / "full")]) == 0
    full = TopExamples.load(tmp_path / "full" / "examples.npz")
    for i in range(2):
        assert main(args + ["--shard", f"{i}/2", "--out", str(tmp_path / "parts")]) == 0
    parts = sorted(str(p) for p in (tmp_path / "parts").glob("partial-*.npz"))
    assert main(args + ["--merge", *parts, "--out", str(tmp_path / "merged")]) == 0
    merged = TopExamples.load(tmp_path / "merged" / "examples.npz")
    for key in ("values", "indices", "positions", "maps"):
        assert np.array_equal(getattr(full, key), getattr(merged, key)), key
    # independent: the library call on the same split
    from convscope.data import load_splits

    direct = top_examples(load_model("default"), load_splits("mnist").val, "relu_2_1", k=4, channels=range(4))
    assert np.array_equal(direct.indices, full.indices)
    grid = _png(tmp_path / "full" / "examples.png")
    assert grid.shape[:2] == (4 * (56 + 2) + 2, 4 * (56 + 2) + 2)
    assert _png(tmp_path / "full" / "channel_0002_crops.png").shape[0] > 10
    assert "receptive field 10x10 px" in capsys.readouterr().out
