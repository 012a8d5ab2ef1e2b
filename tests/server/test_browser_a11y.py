"""Keyboard and accessibility of the explorer page in headless Chromium (issue 12).

A keyboard user reaches a neuron map with Tab, opens its detail with Enter and closes it
with Escape, and reaches the upload control; axe-core (the npm devDependency, never a CDN)
finds no critical or serious violation on the network, training, dataset, Why? and
playground views. axe runs through ``page.evaluate`` (the DevTools protocol), which the
page's CSP (script-src 'self') does not govern. Focus screenshots go to /tmp/h23-*.png.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_routes_runs import write_run

from server_helpers import LiveServer

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture(scope="module")
def live(tmp_path_factory, monkeypatch_module):
    from convscope.models.zoo import TinyVGG
    from convscope.server import create_app

    runs = tmp_path_factory.mktemp("runs")
    torch.manual_seed(0)
    write_run(runs / "small", 2, TinyVGG(in_channels=1, num_classes=10, input_size=(16, 16)))
    monkeypatch_module.setenv("CONVSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    with LiveServer(create_app(["default"], data="digits", runs=runs)) as server:
        yield server


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture()
def page(live, browser):
    pg = browser.new_page(viewport={"width": 1300, "height": 900})
    yield pg
    pg.close()


def wait(page, key: str, timeout: float = 120_000) -> None:
    page.wait_for_function(
        "(k) => ['ready', 'error', 'empty'].includes(document.body.dataset[k])", arg=key, timeout=timeout
    )
    assert page.evaluate("(k) => document.body.dataset[k]", key) == "ready", key


def focused(page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement;
        return { tag: e.tagName.toLowerCase(), cls: e.className, id: e.id, label: e.getAttribute('aria-label') || '',
                 outline: getComputedStyle(e).outlineStyle, layer: e.dataset.layer || '', channel: e.dataset.channel || '' }; }"""
    )


def tab_until(page, test, limit: int = 200) -> dict:
    """Press Tab until the focused element passes ``test``; fail past ``limit`` presses."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        f = focused(page)
        if test(f):
            return f
    raise AssertionError(f"Tab never reached it in {limit} presses (last: {f})")


def test_keyboard_reaches_a_neuron_map_opens_and_closes_its_detail_and_the_upload(page, live):
    page.goto(live.url + "/?model=default")
    wait(page, "overview")
    neuron = tab_until(page, lambda f: f["tag"] == "canvas" and "neuron" in f["cls"] and f["channel"] != "")
    assert neuron["label"] == f"{neuron['layer']} channel {neuron['channel']}"
    assert neuron["outline"] != "none", "a focused neuron map shows no focus ring"
    page.screenshot(path="/tmp/h23-neuron-focus.png")
    page.keyboard.press("Enter")
    wait(page, "detail")
    assert page.evaluate("() => document.body.dataset.detail") == "ready"
    assert page.locator("#detail").is_visible()
    page.screenshot(path="/tmp/h23-detail-open.png")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.getElementById('detail').hidden")
    # the upload control: back to the top, then Tab to the file input, which shows its focus
    page.evaluate("() => document.activeElement.blur()")
    page.locator("#btn-why").focus()
    upload = tab_until(page, lambda f: f["id"] == "upload")
    page.screenshot(path="/tmp/h23-upload-focus.png")
    ring = page.evaluate("() => getComputedStyle(document.querySelector('label.upload')).outlineStyle")
    assert ring != "none", upload
    # the focused element is the native file input itself (enabled, rendered, not display:none),
    # which the browser opens on Enter or Space; waiting for the chooser event that a key press
    # starts was flaky under load (1 run in ~10 timed out here), so the test checks what the page
    # controls: that the keyboard lands on a working file input
    native = page.evaluate(
        "() => { const e = document.activeElement; const s = getComputedStyle(e);"
        " return [e.id, e.type, e.disabled, s.display, s.visibility, e.tabIndex]; }"
    )
    assert native == ["upload", "file", False, native[3], "visible", 0] and native[3] != "none", native


def axe(page, name: str, within: str | None = None) -> None:
    """Run axe-core on the page (or only the element matching ``within``); fail on critical or
    serious violations, print the rest."""
    page.evaluate(AXE.read_text())
    found = page.evaluate(
        "async (sel) => (await axe.run(sel ? document.querySelector(sel) : document)).violations", within
    )
    for v in found:
        print(f"{name}: [{v['impact']}] {v['id']}: {v['help']} ({len(v['nodes'])} nodes)")
    bad = [
        f"[{v['impact']}] {v['id']}: {v['help']} at {[(n['target'], n['failureSummary'][-160:]) for n in v['nodes'][:4]]}"
        for v in found
        if v["impact"] in ("critical", "serious")
    ]
    assert not bad, f"{name}: " + "; ".join(bad)


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is an npm devDependency: run `npm ci` first")
def test_axe_finds_no_serious_violation_on_any_view(page, live):
    page.goto(live.url + "/?model=default")
    wait(page, "overview")
    assert page.locator("h1").count() == 1
    axe(page, "network")
    page.locator("canvas.neuron").first.click()
    wait(page, "detail")
    page.click("#btn-playground")
    page.wait_for_function("() => !document.getElementById('playground').hidden")
    axe(page, "playground")
    page.keyboard.press("Escape")  # with the focus on no panel, every open panel closes
    page.wait_for_function(
        "() => document.getElementById('playground').hidden && document.getElementById('detail').hidden"
    )
    page.click("#btn-why")
    wait(page, "why")
    axe(page, "why")
    page.goto(live.url + "/?view=training")
    wait(page, "training")
    axe(page, "training")
    page.goto(live.url + "/?view=dataset")
    wait(page, "dataset")
    axe(page, "dataset")


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is an npm devDependency: run `npm ci` first")
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_axe_finds_no_serious_violation_in_an_open_conv_detail(live, browser, locale):
    """The conv detail's scrolling list of input channels (.elastic-rows) is a focusable, named
    region and its input-channel chooser (.in-channel) has a name from the catalogue."""
    context = browser.new_context(locale=locale, viewport={"width": 1300, "height": 900})
    pg = context.new_page()
    pg.goto(live.url + "/?model=default")
    wait(pg, "overview")
    pg.locator('canvas.neuron[data-layer="conv_2_2"]').first.click()
    wait(pg, "detail")
    pg.wait_for_selector("#detail .elastic-rows")
    pg.wait_for_selector("#detail select.in-channel")
    assert pg.get_attribute("#detail .elastic-rows", "tabindex") == "0"
    assert pg.get_attribute("#detail select.in-channel", "aria-label")
    axe(pg, f"conv detail ({locale})", within="#detail")
    context.close()
