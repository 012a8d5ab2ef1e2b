"""EfficientNet-Lite0 (162 layers, 1000 classes) in headless Chromium, served by a real uvicorn
server on 127.0.0.1: folding its blocks leaves no blank scroll area behind the columns."""

from __future__ import annotations

import pytest

import server_helpers
from server_helpers import LiveServer

pytestmark = pytest.mark.browser

WINDOW = {"width": 1400, "height": 900}
SIZES = """() => {
  const o = document.getElementById('overview'), cols = o.querySelector('.columns') || o;
  const last = [...o.querySelectorAll('.column')].filter(c => c.offsetParent).pop();
  return {page: document.documentElement.scrollWidth, overview: o.scrollWidth, overviewH: o.scrollHeight,
          columnsEnd: last.getBoundingClientRect().right - o.getBoundingClientRect().left + o.scrollLeft,
          svg: Number(o.querySelector('svg.edges').getAttribute('width'))};
}"""


@pytest.fixture(scope="module")
def page(browser, efficientnet):
    from convscope.server import create_app

    with LiveServer(create_app(["efficientnet-lite0"])) as live:
        p = browser.new_page(viewport=WINDOW)
        errors: list[str] = []
        p.on("pageerror", lambda e: errors.append(str(e)))
        p.goto(f"{live.url}/?model=efficientnet-lite0")
        p.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=120_000)
        assert p.evaluate("() => document.body.dataset.overview") == "ready", errors
        yield p
        assert errors == []
        p.close()


def fold_all(page, folded: bool) -> None:
    """server_helpers.fold_all, then two animation frames, so that the sizes read next are laid out."""
    server_helpers.fold_all(page, folded)
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def test_folding_leaves_no_blank_scroll_area(page):
    fold_all(page, False)
    unfolded = page.evaluate(SIZES)
    fold_all(page, True)
    folded = page.evaluate(SIZES)
    print("unfolded", unfolded, "folded", folded)
    blank = folded["overview"] - folded["columnsEnd"]
    assert folded["overview"] < unfolded["overview"]
    assert blank < WINDOW["width"] / 2, (blank, folded)
    assert folded["page"] <= WINDOW["width"] + 20, folded


def test_search_jumps_to_a_layer_and_filters_the_class_menu(page, efficientnet):
    fold_all(page, True)
    page.focus("#search")
    page.keyboard.type("_blocks.15._depthwise_conv")
    page.keyboard.press("Enter")
    hit = page.locator(".column.search-hit")
    page.wait_for_function("() => document.querySelector('.column.search-hit') !== null")
    assert hit.count() == 1 and hit.get_attribute("data-layer") == "_blocks.15._depthwise_conv"
    assert hit.evaluate("c => c.closest('.group').classList.contains('folded')") is False  # its block opened
    box = page.locator("#overview").bounding_box()
    col = hit.bounding_box()
    assert box["x"] <= col["x"] and col["x"] + col["width"] <= box["x"] + box["width"]  # scrolled into view
    page.keyboard.press("Escape")
    assert page.input_value("#search") == ""
    page.click("#btn-why")
    page.wait_for_function("() => document.querySelectorAll('#why-class option').length === 1000", timeout=120_000)
    page.focus("#search")
    page.keyboard.type("espresso")
    shown = page.evaluate(
        "() => [...document.querySelectorAll('#why-class option')].filter(o => !o.hidden).map(o => Number(o.value))"
    )
    want = [i for i in range(1000) if "espresso" in efficientnet.class_name(i).lower()]
    assert shown and shown == want, (shown, want)
    page.keyboard.press("Escape")
    assert page.evaluate("() => [...document.querySelectorAll('#why-class option')].every(o => !o.hidden)")


def test_search_names_the_whole_layer_it_jumped_to(page, shots):
    """The box shows the whole of a 41-character name typed into it, and under it the layer
    jumped to is named whole with its place among the matches (a column inside a block shows
    only the end of its name); Enter walks the matches in the network's order."""
    names = page.evaluate("() => [...document.querySelectorAll('.column[data-layer]')].map(c => c.dataset.layer)")
    longest = max(names, key=len)
    assert len(longest) == 41  # _blocks.N._depthwise_conv.static_padding
    page.fill("#search", "")
    page.focus("#search")
    page.keyboard.type(longest)
    box = page.locator("#search")
    assert box.evaluate("i => i.scrollWidth <= i.clientWidth"), box.evaluate("i => [i.scrollWidth, i.clientWidth]")
    page.keyboard.press("Enter")
    hit = page.locator(".search-hit-name")
    page.wait_for_function("(n) => document.querySelector('.search-hit-name')?.dataset.layer === n", arg=longest)
    assert hit.inner_text() == f"{longest} · 1 of 1" and hit.get_attribute("title") == longest
    assert hit.evaluate("h => h.scrollWidth <= h.clientWidth")  # nothing of it cut off
    inside = hit.bounding_box()
    assert 0 <= inside["x"] and inside["x"] + inside["width"] <= WINDOW["width"]
    page.screenshot(
        path=str(shots / "bigmodel-search-long-name.png"), clip={"x": 0, "y": 0, "width": 1400, "height": 260}
    )
    # a word of many names: each Enter names the next one whole
    depthwise = [n for n in names if "_depthwise_conv" in n]  # the convs and their padding layers
    page.fill("#search", "_depthwise_conv")
    assert hit.is_hidden()  # typing forgets the last jump
    for i, name in enumerate(depthwise[:3]):
        page.keyboard.press("Enter")
        page.wait_for_function("(n) => document.querySelector('.search-hit-name')?.dataset.layer === n", arg=name)
        assert hit.inner_text() == f"{name} · {i + 1} of {len(depthwise)}"
        assert page.locator(".column.search-hit").get_attribute("data-layer") == name
    page.keyboard.press("Escape")
    assert hit.is_hidden() and page.input_value("#search") == ""
