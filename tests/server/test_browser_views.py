"""CNN Explainer's views in the explorer, in Chromium against a real server on 127.0.0.1.

The overview draws its edges without a hover, hides or shows its details and sizes its maps
to the window; the step-by-step view plays at a chosen speed and seeks; the pool formula
writes the real window values; softmax terms highlight on hover; the flatten view maps
index and position both ways; a URL upload of a loopback address is refused.
Screenshots go to ``$CONVSCOPE_SCREENSHOTS`` when set (else a temp dir).
"""

from __future__ import annotations

import pytest
import torch

from server_helpers import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live():
    from convscope.server import create_app

    app = create_app(["default"])
    app.state.registry.warm()
    with LiveServer(app) as server:
        yield server


def open_page(browser, url: str, width: int = 1400, height: int = 900):
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=60_000)
    assert page.evaluate("() => document.body.dataset.overview") == "ready"
    return page, errors


def wait_detail(page) -> None:
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.detail)", timeout=60_000)
    assert page.evaluate("() => document.body.dataset.detail") == "ready", page.locator("#message").inner_text()


def trace_of(live):
    return live.app.state.registry.trace("default", "sample-0").trace


def test_edges_drawn_without_hover_and_details_toggle(live, browser, shots):
    page, errors = open_page(browser, live.url + "/")
    trace = trace_of(live)
    first, second = trace.layers[0], trace.layers[1]  # the input and conv_1_1, all to all
    page.wait_for_function("() => document.querySelectorAll('svg.edges path.edge').length > 0")
    n = first.output.shape[1] * second.output.shape[1]
    assert page.locator("svg.edges path.hl").count() == 0  # nothing hovered
    assert page.locator("svg.edges path.edge").count() >= n
    names = page.locator(".col-name")
    assert names.first.is_visible()
    page.screenshot(path=str(shots / "h22-edges.png"))
    page.click("#btn-details")
    page.wait_for_function("() => document.body.dataset.details === 'hidden'")
    assert not names.first.is_visible() and not page.locator(".col-legend .legend").first.is_visible()
    assert page.locator("svg.edges path.edge").count() >= n
    page.click("#btn-details")
    page.wait_for_function("() => document.body.dataset.details === 'shown'")
    assert names.first.is_visible()
    assert errors == []
    page.close()


def visible_maps(page, layer: str) -> tuple[int, int, float]:
    """(maps of ``layer`` wholly inside the overview's box, all its maps, the width the columns use)."""
    return page.evaluate(
        """(layer) => {
          const box = document.getElementById('overview').getBoundingClientRect();
          const maps = [...document.querySelectorAll(`canvas.neuron[data-layer="${layer}"]`)];
          const inside = maps.filter((c) => { const r = c.getBoundingClientRect();
            return r.top >= box.top && r.bottom <= box.bottom && r.left >= box.left && r.right <= box.right; });
          return [inside.length, maps.length, document.querySelector('.columns').scrollWidth];
        }""",
        layer,
    )


def test_column_size_follows_the_window(live, browser, shots):
    conv = trace_of(live).layers[1]
    assert conv.output.shape[1] == 10
    seen = {}
    for width, height in ((1280, 800), (2560, 1440)):
        page, errors = open_page(browser, live.url + "/", width, height)
        page.wait_for_function("() => document.querySelectorAll('canvas.neuron').length > 10")
        inside, total, used = visible_maps(page, conv.name)
        assert (inside, total) == (10, 10), (width, inside, total)
        seen[width] = used
        page.screenshot(path=str(shots / f"h22-width-{width}.png"))
        assert errors == []
        page.close()
    assert seen[2560] > 1.4 * seen[1280], seen
