"""The sentences of the detail views (what a layer does, its formula in words) come as
{key, params, text} beside their English fields, so the page can show them in the reader's
language (catalogue section detail.server): on every layer of three real models, each such
sentence's English text is the plain field the API always sent (and tests, the CLI, the
report read), and its Chinese text is Chinese with the same numbers."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from convscope import i18n

HAN = re.compile(r"[\u4e00-\u9fff]")


def _sentences(d: dict) -> list[tuple[dict, str]]:
    """(message, the English field it stands for) for every message in a detail's JSON."""
    out = []
    if isinstance(d.get("what"), dict):
        out.append((d["what"], d["subtitle"].split(" · reads ")[0]))
    if d.get("formula_i18n"):
        out.append((d["formula_i18n"], d["formula"]))
    if isinstance(d.get("position"), dict) and d["position"].get("formula_i18n"):
        out.append((d["position"]["formula_i18n"], d["position"]["formula"]))
    return out


@pytest.mark.parametrize("model", ["default", "functional", "resnet"])
def test_every_layer_sends_its_sentences_in_english_and_chinese(client, model):
    image = client.get(f"/api/models/{model}").json()["samples"][0]["id"]
    layers = client.get(f"/api/models/{model}/trace", params={"image": image}).json()["layers"]
    keys = set()
    for layer in layers:
        r = client.get(f"/api/models/{model}/layers/{quote(layer['name'], safe='')}/detail", params={"image": image})
        assert r.status_code == 200, (layer["name"], r.text)
        d = r.json()
        assert d["reads"] == layer["inputs"]
        for msg, english in _sentences(d):
            assert msg["text"] == english == i18n.text(msg["key"], **msg["params"])
            zh = i18n.text(msg["key"], "zh-CN", **msg["params"])
            assert HAN.search(zh) and zh != english, (msg["key"], zh)
            for v in msg["params"].values():  # the same numbers and names, as the English
                assert str(v) in zh, (msg["key"], v, zh)
            keys.add(msg["key"])
    # the views these models have: pooling, flatten, linear, batch norm, the input, residual add
    expected = {
        "default": {"max_pool", "max_pool_formula", "elementwise_what", "flatten", "linear", "input"},
        "functional": {"add", "concat", "input"},
        "resnet": {"batchnorm", "add"},
    }[model]
    assert {f"detail.server.{k}" for k in expected} <= keys, sorted(keys)


def test_the_english_sentences_read_as_before(client):
    """The English words the API sent before the catalogue (test_api and the CLI read these)."""
    image = "sample-0"
    pool = client.get("/api/models/default/layers/max_pool_1/detail", params={"image": image}).json()
    assert pool["subtitle"] == "max pooling 2×2, stride 2×2, padding [0, 0] · reads relu_1_2"
    assert pool["formula"] == "output[c, y, x] = max(input window at (y·s − p, x·s − p), 2×2)"
    assert pool["position"]["formula"] == "max over the 4 window values"
    out = client.get("/api/models/default/layers/output/detail", params={"image": image, "channel": 7}).json()
    assert out["subtitle"] == "fully connected: 160 inputs → 10 outputs · reads flatten"
    assert out["title"] == "output · unit 7 (class 7)" and out["class_name"] == "7"
