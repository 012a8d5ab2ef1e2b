"""Every sentence the server composes for the page comes from the catalogues, in both languages.

The messages are collected by calling the real functions on real inputs: the Why? reading of
deletion/insertion curves (a collapse, a flat random-like pair, one in between, one that raises
the class), the sanity check of the default model on its MNIST 7 (saliency fails, Grad-CAM at
conv_2_1 passes, Grad-CAM at its default layer becomes constant), the input warnings (a
dark-on-light 7 and a colour photo, into the digit net and into the same net with other class
names), the dead channel 0 of the default model's relu_2_2 over the embedded MNIST (the
look-for panel's JSON and ``convscope examples``), the playground's reasons for settings that
do not fit a real activation map, and the layers a comparison with a narrower net cannot pair.
Each key must exist in English and Chinese with the same placeholders, and the English text must
be the sentence the code printed before the catalogue (captured from commit 5aa0cd4 on these same
inputs), so the CLI output is unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import convscope as cs
from convscope import explain
from convscope.cli.main import main
from convscope.data import load_splits
from convscope.explain.interpret import reading_message, sanity_message
from convscope.i18n import catalogue, text
from convscope.models import Model, TinyVGG, load_model
from convscope.models.checks import input_warnings
from convscope.server import playground
from convscope.server.feature_views import Examples, data_choice
from convscope.server.images import mnist_digits, samples_for

PLACEHOLDER = re.compile(r"\{(\w+)\}")
CJK = re.compile(r"[\u4e00-\u9fff]")
F = np.linspace(0, 1, 11).tolist()
CURVES = {  # (deletion, insertion) over F
    "evidence": ([0.9, 0.05] + [0.01] * 9, [0.02, 0.6] + [0.9] * 9),
    "none": ([0.9 - 0.8 * v for v in F], [0.9 - 0.8 * v for v in F][::-1]),
    "partly": (
        [0.9, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1],
        [0.1, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9],
    ),
    "raised": ([0.4, 0.6] + [0.5] * 9, [0.02, 0.6] + [0.9] * 9),
}
# What the code said before the catalogue, for the inputs above (5aa0cd4, printed by the old functions).
OLD_READINGS = {
    "evidence": "deleting the highlighted 10% drops confidence by 94% (deletion AUC 0.059 vs insertion AUC 0.826): "
    "the map points at evidence the model uses",
    "none": "deleting the highlighted 10% drops confidence by 9% (deletion AUC 0.500 vs insertion AUC 0.500): "
    "no better than a random order, the map does not point at evidence the model uses",
    "partly": "deleting the highlighted 10% drops confidence by 33% (deletion AUC 0.290 vs insertion AUC 0.700): "
    "the map partly points at evidence the model uses",
    "raised": "deleting the highlighted 10% raises confidence by 50% (deletion AUC 0.505 vs insertion AUC 0.826): "
    "no better than a random order, the map does not point at evidence the model uses",
}
OLD_SANITY = {
    "saliency": (
        False,
        "fail: Spearman of |map| stays at 0.60 (>= 0.5) once randomised down to conv_1_1: "
        "the map shows the input more than what the model learned",
    ),
    "gradcam@conv_2_1": (
        True,
        "pass: Spearman of |map| falls to -0.16 (< 0.5) once randomised down to conv_1_1: "
        "the map depends on the learned weights",
    ),
    "gradcam": (True, "pass: the map became constant once randomised down to conv_1_1, so it depends on the weights"),
    "no steps": (
        False,
        "fail: Spearman of |map| stays at 1.00 (>= 0.5) once randomised down to (original): "
        "the map shows the input more than what the model learned",
    ),
}
OLD_WARNINGS = {
    ("default", "dark 7"): [
        "default expects white digits on black; this image looks dark-on-light (mean brightness 0.89)"
    ],
    ("default", "coffee"): ["this is a colour photo, but default is a digit model that sees one grey channel"],
    ("shapes", "dark 7"): [
        "shapes expects light strokes on a dark background; this image looks dark-on-light (mean brightness 0.89)"
    ],
    ("shapes", "coffee"): ["this is a colour photo, but shapes is a 1-channel model that sees one grey channel"],
}
PLAYGROUND = {  # settings on conv_1_1's 26 x 26 map of the 7
    "out_of_range": playground.Settings(crop=40, kernel=3, padding=0, stride=0, dilation=1),
    "all_out_of_range": playground.Settings(crop=0, kernel=10, padding=7, stride=9, dilation=5),
    "kernel_type": playground.Settings(crop=6, kernel=3, padding=0, stride=1, dilation=1, kernel_type="sobel"),
    "no_position": playground.Settings(crop=4, kernel=5, padding=0, stride=1, dilation=2),
    "stride": playground.Settings(crop=6, kernel=3, padding=0, stride=2, dilation=1),
    "padding": playground.Settings(crop=6, kernel=3, padding=3, stride=1, dilation=1),
}
OLD_PROBLEMS = {
    "out_of_range": [
        "crop must be between 1 and 32 in this playground (got 40)",
        "stride must be between 1 and 8 in this playground (got 0)",
        "the crop (40) is larger than the activation map (26 x 26)",
    ],
    "all_out_of_range": [
        "crop must be between 1 and 32 in this playground (got 0)",
        "kernel must be between 1 and 9 in this playground (got 10)",
        "padding must be between 0 and 6 in this playground (got 7)",
        "stride must be between 1 and 8 in this playground (got 9)",
        "dilation must be between 1 and 4 in this playground (got 5)",
    ],
    "kernel_type": ["kernel type must be one of mean, edge"],
    "no_position": [
        "the kernel spans 9 pixels (dilation 2 x (kernel 5 - 1) + 1) but the padded input is only 4 wide "
        "(4 + 2 x 0): not one position fits"
    ],
    "stride": [
        "stride 2 does not fit: (n + 2p - d(k-1) - 1) / s = (6 + 0 - 2 - 1) / 2 = 1.5 is not a whole number, "
        "so the last 1 row(s) and column(s) would be skipped (PyTorch floors silently). Strides that fit: 1, 3"
    ],
    "padding": ["padding 3 is at least the kernel span 3: the outer output ring would see only zeros"],
}
OLD_FITTING = {
    "out_of_range": [],
    "all_out_of_range": [],
    "kernel_type": [1, 3],
    "no_position": [],
    "stride": [1, 3],
    "padding": [1, 3],
}


def _nested(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """A message and every message among its params, depth first."""
    inner = [v for v in msg["params"].values() if isinstance(v, dict) and "key" in v]
    return [msg] + [m for v in inner for m in _nested(v)]


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def seven() -> np.ndarray:
    return dict(mnist_digits())["7"]


@pytest.fixture(scope="module")
def readings() -> dict[str, dict]:
    return {name: reading_message(F, d, i) for name, (d, i) in CURVES.items()}


@pytest.fixture(scope="module")
def verdicts(model, seven) -> dict[str, tuple[bool, dict]]:
    x = model.batch(model.preprocess(Image.fromarray(seven)))
    both = explain.sanity_check(model, x, methods=("saliency", "gradcam"), progress=False)
    deeper = explain.sanity_check(model, x, methods=("gradcam",), layer="conv_2_1", progress=False)
    # nothing randomised (a report of the original model only): the layer is "(original)"
    stepless = explain.sanity.SanityReport(
        steps=[], methods=["saliency"], targets=None, spearman={"saliency": torch.ones(1, 1)}
    )
    return {
        "saliency": sanity_message(both, "saliency"),
        "gradcam": sanity_message(both, "gradcam"),
        "gradcam@conv_2_1": sanity_message(deeper, "gradcam"),
        "no steps": sanity_message(stepless, "saliency"),
    }


@pytest.fixture(scope="module")
def warnings(model, seven, photo_coffee) -> dict[tuple[str, str], list[dict]]:
    shapes = load_model("default")  # the same 1-channel net, its classes not digits: the other wording
    shapes.name, shapes.classes = "shapes", ["ring", "bar"] + [f"c{i}" for i in range(8)]
    images = {"dark 7": Image.fromarray(255 - seven), "coffee": Image.fromarray(photo_coffee)}
    return {(m.name, what): input_warnings(m, image) for m in (model, shapes) for what, image in images.items()}


@pytest.fixture(scope="module")
def dead_note(model) -> dict:
    mnist = load_splits("mnist", download=False, progress=False)["test"]  # the embedded subset offline
    one = Examples().channel_json(model, "relu_2_2", 0, 4, data_choice(model, mnist))
    assert one["constant"] is True, "channel 0 of relu_2_2 is dead on MNIST (issue 12's example)"
    return one["constant_note"]


@pytest.fixture(scope="module")
def problems(model, seven) -> dict[str, dict]:
    """The playground's answers for each setting on a real activation map."""
    x = model.batch(model.preprocess(Image.fromarray(seven)))
    act = cs.trace(model, x)["conv_1_1"].output[0, 0].numpy()
    return {name: playground.run(act, st) for name, st in PLAYGROUND.items()}


@pytest.fixture(scope="module")
def mismatched(model, seven) -> list:
    """The layers a comparison of the default net with a narrower one (and back) cannot pair."""
    torch.manual_seed(0)
    narrow = Model(TinyVGG(in_channels=1, input_size=(28, 28), filters=8, dropout=0.5).eval(), name="narrow")
    narrow.preprocessing = model.preprocessing
    x = model.batch(model.preprocess(Image.fromarray(seven)))
    return cs.compare_models(model, narrow, x).mismatched + cs.compare_models(narrow, model, x).mismatched


@pytest.fixture(scope="module")
def collected(readings, verdicts, warnings, dead_note, problems, mismatched) -> list[dict]:
    """Every message the server produced above, nested clauses included."""
    top = [*readings.values(), *(m for _, m in verdicts.values()), dead_note]
    top += [w["message_i18n"] for ws in warnings.values() for w in ws]
    top += [m for r in problems.values() for m in r["problems_i18n"]]
    top += [m.to_json()["reason_i18n"] for m in mismatched]
    digits = samples_for(1, None)[:1]  # a sample digit's label and source, as /api/models/{m} describes them
    top += [d[k] for d in (s.describe() for s in digits) for k in ("label_i18n", "source_i18n")]
    return [m for msg in top for m in _nested(msg)]


def _value(lang: str, key: str) -> Any:
    value: Any = catalogue(lang)
    for part in key.split("."):
        value = value[part]
    return value


def _leaves(tree: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in tree.items():
        out.update(_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def test_every_message_exists_in_both_catalogues_with_the_same_placeholders(collected):
    for m in collected:
        en, zh = _value("en", m["key"]), _value("zh-CN", m["key"])
        assert isinstance(en, str) and isinstance(zh, str) and en and zh, m["key"]
        assert set(PLACEHOLDER.findall(en)) == set(PLACEHOLDER.findall(zh)) == set(m["params"]), m["key"]
        said = text(m["key"], "zh-CN", **m["params"])
        assert CJK.search(said) and not PLACEHOLDER.search(said), said  # Chinese, every blank filled
        assert m["text"] == text(m["key"], "en", **m["params"])


def test_the_server_section_has_no_key_the_server_never_says(collected):
    """The collection above reaches every server.* key but the CLI's own line (its test is below),
    so every key is checked; and the two catalogues' sections hold the same keys and placeholders."""
    en, zh = _leaves(catalogue("en")["server"]), _leaves(catalogue("zh-CN")["server"])
    assert {f"server.{k}" for k in en} - {m["key"] for m in collected} == {"server.examples.constant"}
    assert set(zh) == set(en)
    for k in en:
        assert set(PLACEHOLDER.findall(en[k])) == set(PLACEHOLDER.findall(zh[k])) and CJK.search(zh[k]), k


def test_english_is_the_old_sentence_on_the_same_inputs(readings, verdicts, warnings, dead_note, model):
    assert {name: m["text"] for name, m in readings.items()} == OLD_READINGS
    assert {name: (ok, m["text"]) for name, (ok, m) in verdicts.items()} == OLD_SANITY
    assert {k: [w["message"] for w in ws] for k, ws in warnings.items()} == OLD_WARNINGS
    assert all(w["message"] == w["message_i18n"]["text"] for ws in warnings.values() for w in ws)
    # the page's old wording of the dead channel (lookfor.js, 5aa0cd4), for the embedded MNIST
    seen = dead_note["params"]["seen"]
    assert (
        dead_note["text"]
        == f"this channel is constant (0) on all {seen} mnist images: a dead channel, with no top examples"
    )


def test_playground_problems_and_compare_reasons_are_the_old_english(problems, mismatched):
    assert {name: r["problems"] for name, r in problems.items()} == OLD_PROBLEMS
    assert {name: r["fitting_strides"] for name, r in problems.items()} == OLD_FITTING
    assert all([m["text"] for m in r["problems_i18n"]] == r["problems"] for r in problems.values())
    reasons = {(m.name, m.reason) for m in mismatched}
    # 5aa0cd4's Mismatch.reason: "only in a|b", "shape AxB vs CxD"
    assert {
        ("dropout", "only in b"),
        ("dropout", "only in a"),
        ("conv_1_1", "shape 1x10x26x26 vs 1x8x26x26"),
    } <= reasons
    assert all(m.to_json()["reason"] == m.reason for m in mismatched)


def test_nested_clauses_are_said_in_the_readers_language(readings, verdicts, problems):
    evidence = readings["evidence"]
    assert text(evidence["key"], "zh-CN", **evidence["params"]) == (
        "删除热力图中最突出的 10% 像素后，置信度下降了 94%（删除 AUC 0.059，插入 AUC 0.826）：热力图指向了模型实际使用的证据"
    )
    ok, fail = verdicts["saliency"]
    assert not ok and text(fail["key"], "zh-CN", **fail["params"]).startswith("未通过：")
    crop = problems["out_of_range"]["problems_i18n"][0]  # the setting's name is a clause too
    assert text(crop["key"], "zh-CN", **crop["params"]) == "在这个演示里，输入尺寸 必须在 1 到 32 之间（当前为 40）"
    _, original = verdicts["no steps"]
    assert "随机化到 （原始模型） 后" in text(original["key"], "zh-CN", **original["params"])


def test_convscope_examples_prints_the_dead_channel_as_before(tmp_path, capsys):
    args = ["examples", "--data", "mnist", "--layer", "relu_2_2", "--channels", "0", "--k", "2"]
    assert main([*args, "--out", str(tmp_path), "--no-progress"]) == 0
    line = next(s for s in capsys.readouterr().out.splitlines() if s.startswith("channel 0 "))
    # 5aa0cd4 printed this line with an f-string in cli/commands/examples.py
    assert (
        line
        == "channel 0 is constant (0) on all 500 images: a dead channel; its 'top' examples are an arbitrary pick of equals"
    )


def test_sample_digits_keep_their_english_label_and_name_themselves_in_chinese():
    digit = samples_for(1, None)[0].describe()
    assert digit["label"] == digit["label_i18n"]["text"] and digit["label"].startswith("digit ")
    assert digit["source"] == "MNIST test split" == digit["source_i18n"]["text"]
    assert text(digit["label_i18n"]["key"], "zh-CN", **digit["label_i18n"]["params"]).startswith("数字 ")
    photo = samples_for(3, None)[0].describe()
    assert "label_i18n" not in photo and photo["source"] == "scikit-image"  # a photo's name is a name
