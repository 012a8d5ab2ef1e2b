"""``convscope summary SPEC``: the table and its JSON, checked against the model itself."""

from __future__ import annotations

import json

from convscope.cli.main import main
from convscope.models import build


def test_summary_prints_the_keras_style_table(capsys):
    assert main(["summary", "tiny-vgg"]) == 0
    out = capsys.readouterr().out
    assert out.startswith('Model: "tiny-vgg" (traced via fx)')
    lines = out.splitlines()
    conv = next(line for line in lines if line.lstrip().startswith("conv_1_1 (Conv2d)"))
    assert conv.split()[3:] == ["(1,", "10,", "62,", "62)", "280", "1,037,880"]
    assert "Total params: 19,920" in out


def test_summary_json_rows_match_the_network(capsys):
    assert main(["summary", "mnist-cnn", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    net = build("mnist-cnn")
    names = [n for n, m in net.named_modules() if n]
    assert [r["name"] for r in d["rows"]] == ["input", *names]
    assert d["total_params"] == sum(p.numel() for p in net.parameters()) == 93_322
    fc1 = next(r for r in d["rows"] if r["name"] == "fc1")
    assert fc1["output_shape"] == [1, 64] and fc1["params"] == 576 * 64 + 64 and fc1["macs"] == 576 * 64


def test_summary_size_and_errors(capsys):
    spec = "convscope.models.reference_nets:resnet18_shaped"
    assert main(["summary", spec, "--size", "32", "32", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in d["rows"]}
    assert rows["conv1"]["output_shape"] == [1, 64, 16, 16] and rows["layer4.1.conv2"]["output_shape"] == [1, 512, 1, 1]
    assert rows["add_7"]["inputs"] == ["layer4.1.bn2", "layer4.0.relu#2"]
    assert d["total_params"] == 11_689_512
    assert main(["summary", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert main(["summary", "tiny-vgg", "--size", "4", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "failed on input (1, 3, 4, 4)" in err
