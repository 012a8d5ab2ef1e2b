"""Training history beside a checkpoint, and the hook-based layer table and activation maps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from tiny_vgg_names import TINY_VGG_CHILDREN

from convscope.analysis import activation_maps, curves, layer_table, read_metrics, report_layers, run_history
from convscope.errors import ConvscopeError


def test_history_of_the_trained_run(digits_run):
    path, model, _ = digits_run
    history = run_history(path, model.meta)
    lines = [json.loads(line) for line in (path.parent / "metrics.jsonl").read_text().splitlines()]
    assert history == lines and [r["epoch"] for r in history] == [1, 2, 3]
    cols = curves(history)
    assert cols["epoch"] == [1.0, 2.0, 3.0] and cols["val_acc"] == [r["val_acc"] for r in lines]


def test_read_metrics_skips_noise_and_keeps_last_record(tmp_path):
    f = tmp_path / "metrics.jsonl"
    f.write_text(
        '{"epoch": 1, "train_loss": 2.0}\n{"event": "start"}\n\n{"epoch": 2, "train_loss": 1.5}\n'
        '{"epoch": 2, "train_loss": 1.0, "val_acc": 0.5}\n{"epoch": 3, "train_lo'
    )  # resumed, then mid-write
    history = read_metrics(f)
    assert [r["epoch"] for r in history] == [1, 2] and history[1]["train_loss"] == 1.0
    cols = curves(history)
    assert cols["train_loss"] == [2.0, 1.0] and math.isnan(cols["val_acc"][0]) and cols["val_acc"][1] == 0.5
    f.write_text('{"epoch": 1}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(ConvscopeError, match=":2 is not JSON"):
        read_metrics(f)
    with pytest.raises(ConvscopeError):
        read_metrics(tmp_path / "missing.jsonl")


def test_history_from_meta_or_none(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")  # no metrics.jsonl beside it
    meta = {"metrics": [{"epoch": 2, "val_acc": 0.9}, {"epoch": 1, "val_acc": 0.8}]}
    assert [r["epoch"] for r in run_history(ckpt, meta)] == [1, 2]
    assert run_history(ckpt, {}) == [] and run_history(None, None) == []


def test_layer_table_matches_the_layers(digits_run):
    _, model, _ = digits_run
    rows = layer_table(model)
    names = [n for n, _ in model.net.named_children()]
    assert [r["name"] for r in rows] == names
    x = torch.zeros(1, *model.input_shape)
    for row, layer in zip(rows, model.net.children()):  # an independent forward, layer by layer
        x = layer(x)
        assert row["output_shape"] == list(x.shape[1:])
        assert row["parameters"] == sum(p.numel() for p in layer.parameters())
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in model.net.parameters())


def test_activation_maps_are_the_layer_outputs(digits_run):
    _, model, test = digits_run
    layers = report_layers(model)
    assert layers == TINY_VGG_CHILDREN[: TINY_VGG_CHILDREN.index("max_pool_2")]  # max_pool_2 is 1x1: no map to show
    assert report_layers(model, limit=3) == ["conv_1_1", "conv_2_1", "conv_2_2"]  # convs, first to last
    x = model.preprocessing.normalize(test.images[:2])
    maps = activation_maps(model, x, ["conv_1_1", "relu_1_2"])
    with torch.no_grad():
        expected = model.net.conv_1_1(x[:1])[0].numpy()
    np.testing.assert_allclose(maps["conv_1_1"], expected, atol=1e-6)
    assert maps["relu_1_2"].shape == (10, 12, 12) and (maps["relu_1_2"] >= 0).all()
    assert all(not m._forward_hooks for m in model.net.modules())
