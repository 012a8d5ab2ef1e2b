"""The training, dataset, Why?, look-for, compare and playground views in Simplified Chinese
(issue 12), in headless Chromium on a real server with a real run folder and a dataset.

A browser asking for Chinese opens each view with everything it can show drawn (a run's curves
and snapshots; the dataset's pass, a confusion cell and the embedding; Grad-CAM with its metrics
and the sanity check; a channel's activation maximisation, kernels and top examples; both
compare sides' strips and attributions; the playground's grids), and every visible text node,
title, aria-label, alt and shown option of the page is walked: none may hold a word of the
English catalogue (test_browser_i18n's scan), so a string left out of the catalogue fails.
Words that are data are allowed: layer, class, model, run, dataset and sample names, the
runs folder's path and commands, and a dataset's own description, as the API sends them.

A language switch redraws the open views from the answers they hold: no API request is made
(the training view's own 1.5 s poll of /api/runs aside). Screenshots of the Why? panel and the
training view in Chinese go to the ``shots`` folder ($CONVSCOPE_SCREENSHOTS, else
a temp dir); docs/img has copies.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
import torch
from test_browser_i18n import CATALOGUES, _english_on, _values, _words
from test_routes_runs import write_run

from server_helpers import LiveServer

pytestmark = pytest.mark.browser
STEPS = 24  # activation maximisation steps on this server: quick
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from convscope.models.zoo import TinyVGG
    from convscope.server import create_app

    runs = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    write_run(runs / "small", 2, TinyVGG(in_channels=1, num_classes=10, input_size=(16, 16)))
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    app = create_app(["default"], data="digits", runs=runs)
    app.state.explain.cache_dir = tmp_path_factory.mktemp("features")
    app.state.explain.steps = STEPS
    try:
        with LiveServer(app) as server:
            yield server
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def english(live) -> set[str]:
    """The English catalogue's words that must not show on a Chinese page (data words aside)."""
    get = lambda path, **params: httpx.get(live.url + path, params=params, timeout=60).json()  # noqa: E731
    info = get("/api/models/default")
    image = info["samples"][0]["id"]
    trace = get("/api/models/default/trace", image=image)
    options = get("/api/models/default/explain/options", image=image)
    runs = get("/api/runs")
    data = [
        info["name"],
        *info["classes"],
        *options["classes"],
        *(s[k] for s in info["samples"] for k in ("id", "label", "source")),
    ]
    data += [n for layer in trace["layers"] for n in (layer["name"], layer.get("op") or "", layer["kind"])]
    data += [runs["root"], *(r.get(k) or "" for r in runs["runs"] for k in ("name", "model", "data", "command"))]
    data += [get("/api/models/default/dataset")["dataset"]]
    en, zh = (json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8")) for lang in ("en", "zh-CN"))
    words = _words(_values(en)) - _words(_values(zh)) - _words(data)
    # the check has teeth: words of each of these views' sections are in it
    assert {
        "training",
        "accuracy",
        "filters",
        "confusion",
        "embedding",
        "deletion",
        "sanity",
        "kernels",
        "optimise",
    } <= words
    assert {"attributions", "differences", "playground", "blur"} <= words
    return words


def wait(page, key: str, states=("ready",), timeout: float = 120_000, el: str = "body") -> None:
    done = [*states, "error", "empty"]
    page.wait_for_function(
        "([k, sel, done]) => done.includes(document.querySelector(sel).dataset[k])",
        arg=[key, el, done],
        timeout=timeout,
    )
    state = page.evaluate("([k, sel]) => document.querySelector(sel).dataset[k]", [key, el])
    assert state in states, (key, state, page.locator(".why-error, .compare-error, .message").all_inner_texts())


def chinese_page(browser, live, path: str):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live.url + path)
    return context, page, errors


def open_training(page) -> None:
    wait(page, "training")
    wait(page, "snapshot", ("2",))
    page.wait_for_function("() => document.querySelectorAll('svg.chart-loss circle').length === 4")


def open_dataset(page) -> None:
    wait(page, "dataset")
    wait(page, "embedding")
    page.locator('table.confusion td.diag[data-true="3"]').click()
    wait(page, "cell", ("3,3",))


def open_explorer_panels(page, shots) -> None:
    """Why? (map, metrics, sanity), look-for on a conv channel, compare with attributions, the playground."""
    wait(page, "overview")
    page.click("#btn-why")
    wait(page, "why")
    wait(page, "whymetrics")
    page.click("#why-sanity")
    wait(page, "sanity")
    page.locator("#why").screenshot(path=str(shots / "i18n-zh-why.png"))  # before a detail opens beside it
    page.locator('canvas.neuron[data-layer="conv_2_2"][data-channel="3"]').click()
    wait(page, "detail")
    page.click(".lookfor-offer")
    wait(page, "lookfor")
    wait(page, "featvis")
    wait(page, "examples")
    page.click("#btn-compare")
    wait(page, "compare")
    page.click(".compare-explain")
    wait(page, "comparewhy")
    page.click("#btn-playground")
    page.wait_for_function("() => document.getElementById('playground').dataset.valid === '1'")


def test_training_and_dataset_views_are_chinese_and_redraw_in_english_without_refetching(live, browser, english, shots):
    context, page, errors = chinese_page(browser, live, "/?view=training")
    open_training(page)
    assert page.locator(".runs-side h3").inner_text() == "训练记录"
    assert page.locator(".epoch-label").inner_text() == "第 2 轮"
    assert page.locator(".run-row .run-status").inner_text() in ("已完成", "已停止", "训练中")
    assert _english_on(page, english) == ""
    page.screenshot(path=str(shots / "i18n-zh-training.png"))
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.select_option("#language-select", "en")
    page.wait_for_function("() => document.querySelector('.runs-side h3').textContent === 'training runs'")
    assert page.locator(".epoch-label").inner_text() == "epoch 2"
    assert page.locator("svg.chart-loss .chart-title").text_content() == "loss (cross-entropy)"
    assert page.locator("canvas.kernel").count() == 10 and page.locator("canvas.act").count() == 10
    assert not CJK.search(page.locator("#training-view").inner_text())
    # only the view's own poll of the run list; the curves and the snapshot come from what it holds
    assert [u for u in asked if "/api/" in u and not u.endswith("/api/runs")] == [], asked

    page.select_option("#language-select", "zh-CN")
    page.goto(live.url + "/?view=dataset")
    open_dataset(page)
    assert page.locator(".confusion-box .ds-title").inner_text().startswith("混淆矩阵")
    # the dataset's own description ("scikit-learn's 8x8 digits (1,797 images, bundled)") is data from its loader
    note = httpx.get(live.url + "/api/models/default/dataset").json()["note"]
    assert _english_on(page, english - _words([note])) == ""
    page.screenshot(path=str(shots / "i18n-zh-dataset.png"), full_page=True)
    asked.clear()
    page.select_option("#language-select", "en")
    page.wait_for_function(
        "() => document.querySelector('.confusion-box .ds-title').textContent.startsWith('confusion matrix')"
    )
    assert page.locator(".cell-box .ds-title").inner_text().startswith("true 3, predicted 3: ")
    assert page.evaluate("document.querySelector('canvas.scatter').dataset.points") == str(
        len(httpx.get(live.url + "/api/models/default/dataset/test/embedding", params={"method": "pca"}).json()["x"])
    )
    assert not CJK.search(page.locator("#dataset-view").inner_text())
    assert [u for u in asked if "/api/" in u] == [], asked
    assert errors == []
    context.close()


def test_why_lookfor_compare_and_playground_are_chinese_and_redraw_in_english_without_refetching(
    live, browser, english, shots
):
    context, page, errors = chinese_page(browser, live, "/?model=default&image=sample-3")
    open_explorer_panels(page, shots)
    assert page.locator("#why h2").inner_text() == "为什么？"
    assert page.locator("#why .why-table th").first.inner_text() == "类别概率"
    assert page.locator(".sanity-verdicts li").count() >= 1
    assert page.locator("#lookfor .lookfor-kernels h3").inner_text() == "卷积核"
    assert page.locator("#playground h2").inner_text() == "超参数试验场"
    # the dataset's own description under the top examples (the examples job's ``note``, whole in the
    # title) is data from its loader
    note = page.get_attribute(".lookfor-data-note", "title")
    assert note.startswith("scikit-learn's 8x8 digits")
    assert _english_on(page, english - _words([note])) == ""
    for panel in ("lookfor", "compare", "playground"):
        page.locator(f"#{panel}").screenshot(path=str(shots / f"i18n-zh-{panel}.png"))
    overlay = page.get_attribute("#why .why-overlay", "src")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.select_option("#language-select", "en")
    page.wait_for_function("() => document.querySelector('#why h2').textContent === 'Why?'")
    assert page.locator("#why .why-table th").first.inner_text() == "class probability"
    assert page.locator("#why-sanity").inner_text() == "sanity check"
    assert page.locator(".sanity-table tbody tr").count() >= 2
    assert page.get_attribute("#why .why-overlay", "src") == overlay
    assert page.locator("#lookfor h2").inner_text() == "What does conv_2_2 channel 3 look for?"
    assert page.get_attribute("#lookfor .lookfor-image", "data-cached") is not None
    assert page.locator(".lookfor-offer").inner_text() == "What does it look for?"
    assert page.locator("#compare h2").inner_text() == "compare"
    assert page.locator(".compare-why img").count() == 3 and page.locator(".compare-strip").count() > 0
    assert page.locator("#playground h2").inner_text() == "Hyper-parameter playground"
    n, k = 7, 3  # the playground's first settings: crop 7, kernel 3, no padding, stride 1
    assert page.locator('#playground [data-k="output-size"]').inner_text() == f"{n - k + 1} × {n - k + 1}"
    for panel in ("#why", "#lookfor", "#compare", "#playground"):
        assert not CJK.search(page.locator(panel).inner_text()), panel
    assert [u for u in asked if "/api/" in u] == [], asked
    assert errors == []
    context.close()
