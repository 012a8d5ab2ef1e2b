"""The page in English and Simplified Chinese (issue 12), in headless Chromium on a real server.

A reader whose browser asks for Chinese gets the whole network view, an opened convolution
detail and the model summary in Chinese: every visible text node (and every visible title,
aria-label, placeholder and alt) is walked and none may hold an English word of the English
catalogue, so a string someone forgot to put in the catalogue fails here. The English words
are those of en.json's values, minus the words the Chinese catalogue keeps as they are
(ReLU, Softmax, torch.fx) and minus the words that are data: layer names, class names, the
model's and the samples' names, which the page shows as the server sends them.

The switch redraws in the other language from what the page holds (no new trace, no new
activations); a browser in en-US or fr-FR gets English; the choice is remembered; ?lang=
chooses too. Screenshots of the network view in both languages go to the ``shots`` folder
($CONVSCOPE_SCREENSHOTS, else a temp dir); docs/img has copies (python docs/screenshots.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from live_server import LiveServer, serving

pytestmark = pytest.mark.browser

CATALOGUES = Path(__file__).resolve().parents[2] / "src" / "convscope" / "server" / "static" / "i18n"
WORD = re.compile(r"[A-Za-z]{4,}")

# every visible text node and the visible elements' own words (titles, labels, placeholders,
# alt texts, a select's shown option), skipping the brand (the product's name) and closed panels
VISIBLE_TEXT = """() => {
  const seen = (e) => e && e.checkVisibility && e.checkVisibility({ visibilityProperty: true });
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest("script, style, .brand") || !n.textContent.trim()) continue;
    if (p.tagName === "OPTION" ? seen(p.closest("select")) && p.selected : seen(p)) out.push(n.textContent.trim());
  }
  for (const e of document.body.querySelectorAll("[title], [aria-label], [placeholder], img[alt]")) {
    if (!seen(e) || e.closest(".brand")) continue;
    for (const a of ["title", "aria-label", "placeholder", "alt"]) if (e.getAttribute(a)) out.push(e.getAttribute(a));
  }
  out.push(document.title);
  return out;
}"""


def _values(node) -> list[str]:
    """Every text of a catalogue, its {placeholders} left out (they are filled with data)."""
    if isinstance(node, str):
        return [re.sub(r"\{\w+\}", " ", node)]
    return [v for child in node.values() for v in _values(child)]


def _words(texts) -> set[str]:
    return {w.lower() for text in texts for w in WORD.findall(text)}


@pytest.fixture(scope="module")
def live():
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def english(live) -> set[str]:
    """The English catalogue's words that must not show on a Chinese page."""
    import httpx

    en = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((CATALOGUES / "zh-CN.json").read_text(encoding="utf-8"))
    info = httpx.get(f"{live.url}/api/models/default").json()
    trace = httpx.get(f"{live.url}/api/models/default/trace", params={"image": info["samples"][0]["id"]}).json()
    data = [info["name"], *info["classes"], *(s[k] for s in info["samples"] for k in ("label", "source"))]
    data += [n for layer in trace["layers"] for n in (layer["name"], layer["op"])]
    words = _words(_values(en)) - _words(_values(zh)) - _words(data)
    assert {"prediction", "summary", "elastic", "channel", "parameters", "kernel"} <= words  # the check has teeth
    return words


def _open(context, url: str):
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
    return page, errors


def _open_conv_detail_and_summary(page) -> None:
    page.locator('canvas.neuron[data-layer="conv_1_1"][data-channel="0"]').click()
    page.wait_for_function("() => document.body.dataset.detail === 'ready'", timeout=30_000)
    assert page.locator("#detail").get_attribute("data-view") == "conv"
    page.click("#btn-summary")
    page.wait_for_function("() => !document.getElementById('summary').hidden", timeout=30_000)


def _english_on(page, english: set[str]) -> str:
    """The English words on the page, each with the text it is in ("" when none)."""
    found: dict[str, str] = {}
    for text in page.evaluate(VISIBLE_TEXT):
        for w in WORD.findall(text):
            if w.lower() in english:
                found.setdefault(w.lower(), text)
    return "\n".join(f"{w}: {text!r}" for w, text in sorted(found.items()))


def test_a_chinese_browser_gets_every_word_of_the_network_view_in_chinese(live, browser, english, shots):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1600, "height": 1000})
    page, errors = _open(context, live.url + "/")
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("#btn-summary").inner_text() == "模型概要"
    assert page.locator(".tabs [data-view=network]").inner_text() == "网络"
    assert page.locator("#language-select").input_value() == "zh-CN"
    assert page.locator('.column[data-layer="conv_1_1"] .col-kind').inner_text() == "卷积 3×3"
    assert page.locator(".column.scores .col-name").inner_text() == "类别得分"
    assert page.locator("#model-note").inner_text() == "输入 1×28×28 · 10 个类别 · 4,440 个参数"
    assert page.locator(".sample").first.get_attribute("title") == "数字 0 (MNIST 测试集)"  # the server's words too
    page.screenshot(path=str(shots / "i18n-zh-network.png"))
    assert _english_on(page, english) == ""
    _open_conv_detail_and_summary(page)
    assert page.locator("#detail h3").first.inner_text().startswith("弹性视图")
    assert page.locator("#summary h2").inner_text() == "模型概要"
    assert _english_on(page, english) == ""
    # the other kinds of detail: pooling (the server's sentences), the flat vector, a class unit, softmax
    for target, view in [
        ('canvas.neuron[data-layer="max_pool_1"][data-channel="1"]', "pool"),
        ('canvas.neuron[data-layer="flatten"]', "flatten"),
        ('canvas.neuron[data-layer="output"]', "linear"),
        (".column.scores .score.best", "softmax"),
    ]:
        page.evaluate("() => { document.body.dataset.detail = 'closed'; }")
        page.locator(target).click()
        page.wait_for_function("() => document.body.dataset.detail === 'ready'", timeout=30_000)
        assert page.locator("#detail").get_attribute("data-view") == view
        assert _english_on(page, english) == "", view
    assert page.locator("#detail h2").inner_text() == "类别得分：Softmax"
    assert errors == []
    context.close()


def test_the_switch_redraws_in_english_without_new_data_and_is_remembered(live, browser, english, shots):
    context = browser.new_context(locale="zh-CN", viewport={"width": 1600, "height": 1000})
    page, errors = _open(context, live.url + "/")
    _open_conv_detail_and_summary(page)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.select_option("#language-select", "en")
    page.wait_for_function("() => document.documentElement.lang === 'en'", timeout=10_000)
    page.wait_for_function(
        "() => document.querySelector('.column.scores .col-name').textContent === 'class scores'", timeout=10_000
    )
    assert page.locator("#btn-summary").inner_text() == "model summary"
    assert page.locator('.column[data-layer="conv_1_1"] .col-kind').inner_text() == "conv 3×3"
    assert page.locator("#detail h3").first.inner_text().startswith("Elastic view")
    assert page.locator("#summary h2").inner_text() == "Model summary"
    assert page.locator("#model-note").inner_text() == "1×28×28 input · 10 classes · 4,440 parameters"
    # drawn again from what the page holds: only the English catalogue (already loaded) may be asked for
    assert not [u for u in asked if "/trace" in u or "/activations" in u or "/detail" in u or "/summary" in u], asked
    # the choice outlives a reload
    # the Chinese words are gone from the top bar (but the switch, where each language keeps its own name)
    bar = page.evaluate(
        "() => [...document.querySelectorAll('header.topbar :not(#language-select, option)')]"
        ".filter(e => !e.children.length).map(e => e.textContent).join(' ')"
    )
    assert "model summary" in bar and not re.search(r"[\u4e00-\u9fff]", bar), bar
    page.reload()
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#btn-summary").inner_text() == "model summary"
    page.screenshot(path=str(shots / "i18n-en-network.png"))
    page.select_option("#language-select", "zh-CN")
    page.wait_for_function("() => document.getElementById('btn-summary').textContent === '模型概要'", timeout=10_000)
    page.reload()
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert _english_on(page, english) == ""
    assert errors == []
    context.close()


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
def test_other_browsers_get_english_and_lang_in_the_address_chooses(live, browser, locale):
    context = browser.new_context(locale=locale, viewport={"width": 1400, "height": 900})
    page, errors = _open(context, live.url + "/")
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.locator("#btn-summary").inner_text() == "model summary"
    assert page.locator(".column.scores .col-name").inner_text() == "class scores"
    page.goto(live.url + "/?lang=zh-CN")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("#btn-summary").inner_text() == "模型概要"
    assert errors == []
    context.close()


def test_the_page_s_own_messages_follow_the_switch(browser):
    """A model that failed to load: its picker entry and the page's message are the page's own
    sentences (the reason is the server's error text, as logged) and are redrawn in English."""
    from convscope.models import load_model
    from convscope.server import Registry, create_app

    def loader(spec: str):
        if spec == "broken":
            raise RuntimeError("this factory is broken")
        return load_model(spec)

    registry = Registry(["default", "broken"], loader=loader)
    registry.load_all()
    with LiveServer(create_app(registry=registry)) as server:
        context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
        page, errors = _open(context, server.url + "/")
        assert page.locator('#model-select option[value="broken"]').inner_text() == "broken（加载失败）"
        page.wait_for_function("() => !document.getElementById('message').hidden", timeout=10_000)
        assert page.locator("#message").inner_text() == "模型 broken 加载失败：RuntimeError: this factory is broken"
        page.select_option("#language-select", "en")
        page.wait_for_function("() => document.documentElement.lang === 'en'", timeout=10_000)
        assert (
            page.locator("#message").inner_text() == "model broken failed to load: RuntimeError: this factory is broken"
        )
        assert page.locator('#model-select option[value="broken"]').inner_text() == "broken (failed to load)"
        assert page.locator("#model-select").input_value() == "default" and errors == []
        context.close()
