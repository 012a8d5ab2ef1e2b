"""convscope compare, both forms, through the real command line: the files are written and
compare.json is what cs.compare computes."""

from __future__ import annotations

import json

import convscope as cs
from convscope.cli.main import main
from convscope.models import load_model


def run(args, capsys) -> tuple[int, str, str]:
    code = main(["compare", *map(str, args), "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_two_images_one_model(tmp_path, digit_files, model, capsys):
    three, eight = digit_files
    out = tmp_path / "images"
    code, text, err = run([three, eight, "--model", "default", "--out", out, "--method", "gradcam"], capsys)
    assert code == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert written == [
        "attribution.png",
        "compare.json",
        "distance.png",
        "layer-conv_1_1.png",
        "layer-conv_1_2.png",
        "layer-conv_2_1.png",
        "layer-conv_2_2.png",
        "layer-output.png",
    ]
    want = cs.compare_images(model, str(three), str(eight), labels=("three.png", "eight.png"), method="gradcam")
    assert json.loads((out / "compare.json").read_text()) == json.loads(json.dumps(want.to_json()))
    assert f"to {out}" in text and "conv_2_2" in text


def test_one_image_two_models(tmp_path, digit_files, model, perturbed_checkpoint, capsys):
    out = tmp_path / "models"
    code, text, err = run(
        [digit_files[0], "--model", "default", "--model", perturbed_checkpoint, "--out", out, "--layers", "all"], capsys
    )
    assert code == 0, err
    other = load_model(str(perturbed_checkpoint))
    want = cs.compare_models(model, other, str(digit_files[0]), labels=("default", "perturbed"))
    got = json.loads((out / "compare.json").read_text())
    assert got == json.loads(json.dumps(want.to_json()))
    assert {f"layer-{n}.png" for n in want.names} <= {p.name for p in out.iterdir()}
    assert "they part at conv_2_1" in text


def test_two_images_and_two_models_is_one_line_error(digit_files, perturbed_checkpoint, capsys, tmp_path):
    code, _, err = run([*digit_files, "-m", "default", "-m", perturbed_checkpoint, "--out", tmp_path], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0 and "give two images and one --model" in err


def test_classes_names_both_predictions(tmp_path, digit_files, capsys):
    """--classes, as explain and attribute take it: each side's prediction is printed in those names."""
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"digit-{w}" for w in "zero one two three four five six seven eight nine".split()))
    code, text, err = run([*digit_files, "--classes", names, "--out", tmp_path / "out", "--layers", "conv_1_1"], capsys)
    assert code == 0, err
    assert "three.png -> digit-three (" in text and "eight.png -> digit-eight (" in text
