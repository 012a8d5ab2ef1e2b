"""CNN Explainer's views in the explorer, in Chromium against a real server on 127.0.0.1.

The overview draws its edges without a hover, hides or shows its details and sizes its maps
to the window; the step-by-step view plays at a chosen speed and seeks; the pool formula
writes the real window values; softmax terms highlight on hover; the flatten view maps
index and position both ways; a URL upload of a loopback address is refused.
Screenshots go to ``$CONVSCOPE_SCREENSHOTS`` when set (else a temp dir).
"""

from __future__ import annotations

import faulthandler
import time

import pytest
import torch
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from live_server import LiveServer, serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live():
    with serving() as server:
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
    """(maps of ``layer`` wholly inside the overview's box and the window, or -1 if its legend is
    cut off; all its maps; the width from the first column's left to the last one's right)."""
    return page.evaluate(
        """(layer) => {
          const o = document.getElementById('overview').getBoundingClientRect();  // its part in the window
          const box = { top: Math.max(0, o.top), bottom: Math.min(innerHeight, o.bottom), left: o.left, right: o.right };
          const maps = [...document.querySelectorAll(`canvas.neuron[data-layer="${layer}"]`)];
          const inside = maps.filter((c) => { const r = c.getBoundingClientRect();
            return r.top >= box.top && r.bottom <= box.bottom && r.left >= box.left && r.right <= box.right; });
          const legend = document.querySelector(`.column[data-layer="${layer}"] .col-legend .legend`).getBoundingClientRect();
          if (legend.bottom > box.bottom) return [-1, maps.length, 0];  // the legend is cut off
          const cols = [...document.querySelectorAll('.columns .column')].map((c) => c.getBoundingClientRect());
          return [inside.length, maps.length, Math.max(...cols.map((c) => c.right)) - Math.min(...cols.map((c) => c.left))];
        }""",
        layer,
    )


def test_column_size_follows_the_window(live, browser, shots):
    conv = trace_of(live).layers[1]
    assert conv.output.shape[1] == 10
    seen = {}
    for width, height in ((1280, 800), (1400, 900), (2560, 1440)):
        page, errors = open_page(browser, live.url + "/", width, height)
        page.wait_for_function("() => document.querySelectorAll('canvas.neuron').length > 10")
        inside, total, used = visible_maps(page, conv.name)
        assert (inside, total) == (10, 10), (width, inside, total)
        seen[width] = used
        page.screenshot(path=str(shots / f"h22-width-{width}.png"))
        assert errors == []
        page.close()
    assert seen[2560] > 1.4 * seen[1280], seen


def get_json(live, path: str, **params) -> dict:
    import json
    import urllib.parse
    import urllib.request

    with urllib.request.urlopen(f"{live.url}{path}?{urllib.parse.urlencode(params)}", timeout=30) as r:
        return json.loads(r.read())


def open_conv(page, layer: str, channel: int = 0):
    page.locator(f'canvas.neuron[data-layer="{layer}"][data-channel="{channel}"]').click()
    wait_detail(page)
    return page.locator(".conv-formula")


def position(sec) -> tuple[int, int]:
    return int(sec.get_attribute("data-y")), int(sec.get_attribute("data-x"))


def set_range(page, selector: str, value: int) -> None:
    page.evaluate(
        """([selector, value]) => { const r = document.querySelector(selector);
          r.value = String(value); r.dispatchEvent(new Event('input')); }""",
        [selector, value],
    )


def test_step_play_speed_and_seek(live, browser):
    page, errors = open_page(browser, live.url + "/")
    conv = next(r for r in trace_of(live).layers if r.kind == "conv" and r.weight.shape[1] > 1)
    oh, ow = conv.output.shape[-2:]
    sec = open_conv(page, conv.name)
    page.mouse.move(0, 0)
    played = {}
    for label, index in (("fast", 4), ("slow", 0)):
        set_range(page, ".conv-formula .speed", index)
        delay = int(sec.get_attribute("data-delay"))
        y0, x0 = position(sec)
        sec.locator(".play").click()
        page.wait_for_timeout(1500)
        sec.locator(".play").click()
        page.wait_for_timeout(delay + 300)  # the last step asked for lands
        y1, x1 = position(sec)
        played[label] = (delay, (y1 * ow + x1 - (y0 * ow + x0)) % (oh * ow))
    assert played["fast"][0] == 10 and played["slow"][0] == 1000
    assert played["fast"][1] >= 8, played  # 450 ms a step (the old fixed pace) makes 3
    assert 1 <= played["slow"][1] <= 2, played
    # the seek slider jumps to a position; its numbers are the server's for that position
    y, x = oh - 3, ow // 2 + 1
    set_range(page, ".conv-formula .seek", y * ow + x)
    page.wait_for_function(
        "([y, x]) => { const s = document.querySelector('.conv-formula'); return s.dataset.y === String(y) && s.dataset.x === String(x); }",
        arg=[y, x],
    )
    ref = get_json(live, f"/api/models/default/layers/{conv.name}/detail", image="sample-0", channel=0, y=y, x=x)
    pos = ref["position"]
    value = float(page.locator('#detail [data-k="value"]').get_attribute("data-value"))
    assert value == pytest.approx(pos["value"], abs=1e-6)
    assert value == pytest.approx(float(conv.output[0, 0, y, x]), abs=1e-5)
    shown = float(page.locator('#detail [data-k="channel-sum"]').get_attribute("data-value"))
    assert shown == pytest.approx(pos["channels"][0]["sum"], abs=1e-6)
    assert page.locator(".conv-formula .seek-text").inner_text().startswith(f"({y}, {x})")
    assert errors == []
    page.close()


def test_pool_formula_writes_the_window_values(live, browser, shots):
    page, errors = open_page(browser, live.url + "/")
    pool = next(r for r in trace_of(live).layers if r.kind == "maxpool")
    c, y, x = 1, 2, 3
    page.locator(f'canvas.neuron[data-layer="{pool.name}"][data-channel="{c}"]').click()
    wait_detail(page)
    out = page.locator("#detail .inout canvas").nth(1)
    box = out.bounding_box()
    h, w = pool.output.shape[-2:]
    out.click(position={"x": (x + 0.5) * box["width"] / w, "y": (y + 0.5) * box["height"] / h})
    page.wait_for_function(
        "(v) => document.querySelector('#detail [data-k=\"value\"]')?.dataset.value === v",
        arg=str(float(pool.output[0, c, y, x])),
    )
    k, s = pool.params["kernel_size"], pool.params["stride"]
    window = pool.input[0, c, y * s[0] : y * s[0] + k[0], x * s[1] : x * s[1] + k[1]].flatten()
    expected = float(torch.nn.functional.max_pool2d(pool.input[:, c : c + 1], k, s)[0, 0, y, x])
    formula = page.locator("#detail .formula-numbers .formula")
    terms = [float(t.get_attribute("data-value")) for t in formula.locator(".term").all()]
    assert terms == pytest.approx(window.tolist(), abs=1e-6)
    best = formula.locator(".term.argmax")
    assert best.count() == 1 and float(best.get_attribute("data-value")) == pytest.approx(expected, abs=1e-6)
    text = formula.inner_text()
    assert text.startswith("max(") and f") = {float(f'{expected:.5g}'):g}" in text, text
    page.locator("#detail").screenshot(path=str(shots / "h22-pool.png"))
    assert errors == []
    page.close()


def test_softmax_hover_highlights_the_term(live, browser, shots):
    page, errors = open_page(browser, live.url + "/")
    page.locator(".score").first.click()
    wait_detail(page)
    logits = trace_of(live).layers[-1].output[0].double()
    probs = logits.softmax(-1)
    shift = get_json(live, "/api/models/default/softmax", image="sample-0")["shift"]  # 0 unless exp would overflow
    row = page.locator("#detail .softmax-table tr[data-index]").nth(2)
    index = int(row.get_attribute("data-index"))
    row.hover()
    page.wait_for_function(
        "(i) => document.querySelector('#detail .softmax-one')?.dataset.index === String(i)", arg=index
    )
    assert "hovered" in row.get_attribute("class")
    assert page.locator("#detail .softmax-table tr.hovered").count() == 1
    term = page.locator(f'#detail .softmax-sum .term[data-index="{index}"]')
    assert "hovered" in term.get_attribute("class")
    assert page.locator("#detail .softmax-sum .term.hovered").count() == 1
    assert float(term.get_attribute("data-value")) == pytest.approx(float((logits[index] - shift).exp()), rel=1e-6)
    shown = float(page.locator('#detail [data-k="hover-prob"]').get_attribute("data-value"))
    assert shown == pytest.approx(float(probs[index]), abs=1e-7)
    bar = row.locator(".pbar span")
    assert bar.evaluate("(b) => getComputedStyle(b).backgroundColor") != page.locator(
        "#detail .softmax-table tr:not(.hovered) .pbar span"
    ).first.evaluate("(b) => getComputedStyle(b).backgroundColor")
    # hovering a term of the sum focuses its class as well
    other = page.locator("#detail .softmax-sum .term[data-index]").nth(4)
    other.hover()
    page.wait_for_function(
        "(i) => document.querySelector('#detail .softmax-one')?.dataset.index === String(i)",
        arg=int(other.get_attribute("data-index")),
    )
    assert "hovered" in page.locator("#detail .softmax-table tr[data-index]").nth(4).get_attribute("class")
    page.locator("#detail").screenshot(path=str(shots / "h22-softmax.png"))
    assert errors == []
    page.close()


def hover_cell(canvas, y: int, x: int, h: int, w: int) -> None:
    box = canvas.bounding_box()
    canvas.hover(position={"x": (x + 0.5) * box["width"] / w, "y": (y + 0.5) * box["height"] / h})


def test_flatten_view_maps_index_and_position_both_ways(live, browser, shots):
    page, errors = open_page(browser, live.url + "/")
    flat = next(r for r in trace_of(live).layers if r.kind == "flatten")
    inp = flat.input[0]
    nc, h, w = inp.shape
    order = torch.arange(inp.numel()).reshape(inp.shape)  # torch.flatten's order, index by index
    unit = int(order[2, 1, 3])
    strip = page.locator(f'canvas.neuron.strip[data-layer="{flat.name}"]')
    hover_cell(strip, unit, 0, inp.numel(), 1)
    strip.click(position={"x": 8, "y": (unit + 0.5) * strip.bounding_box()["height"] / inp.numel()})
    wait_detail(page)
    read = page.locator("#detail .flatten-readout")
    page.wait_for_function("() => document.querySelector('#detail .flatten-readout')?.dataset.index !== undefined")
    assert [int(read.get_attribute(f"data-{k}")) for k in "cyx"] == [2, 1, 3]
    assert int(read.get_attribute("data-index")) == unit
    views = page.locator("#detail .flatten-elastic canvas.map")
    # position -> index: hover the input map at (y, x)
    for y, x in ((0, 0), (h - 1, 2), (3, w - 1)):
        hover_cell(views.nth(0), y, x, h, w)
        index = int(read.get_attribute("data-index"))
        assert index == int(order[2, y, x]), (y, x)
        value = float(read.locator('[data-k="flat-value"]').get_attribute("data-value"))
        assert value == pytest.approx(float(torch.flatten(flat.input, 1)[0, index]), abs=1e-6)
        assert value == pytest.approx(float(flat.output[0, index]), abs=1e-6)
    # index -> position: hover the flat strip at one of the channel's indices
    for i in (0, 5, h * w - 1):
        hover_cell(views.nth(1), i, 0, h * w, 1)
        index = int(read.get_attribute("data-index"))
        where = [int(read.get_attribute(f"data-{k}")) for k in "cyx"]
        assert index == int(order[2].flatten()[i]) and (order == index).nonzero()[0].tolist() == where
    page.locator("#detail .flatten-view button", has_text="next channel").click()
    page.wait_for_function("() => document.querySelector('#detail .flatten-readout')?.dataset.c === '3'")
    assert int(read.get_attribute("data-index")) == int(order[3, 0, 0])
    hover_cell(views.nth(0), 2, 1, h, w)
    page.locator("#detail").screenshot(path=str(shots / "h22-flatten.png"))
    assert errors == []
    page.close()


def test_url_upload_of_a_loopback_address_is_refused(live, browser):
    page, errors = open_page(browser, live.url + "/")
    before = page.evaluate("() => new URLSearchParams(location.search).get('image')")
    page.fill("#upload-url", f"{live.url}/api/models/default/images/sample-3.png")  # this very server
    page.click("#url-form button")
    page.wait_for_function("() => !document.getElementById('message').hidden")
    text = page.locator("#message").inner_text()
    assert text.startswith("refused: 127.0.0.1 is 127.0.0.1, a loopback address"), text
    assert "\n" not in text.strip()
    assert page.evaluate("() => new URLSearchParams(location.search).get('image')") == before
    assert page.evaluate("() => document.body.dataset.overview") == "ready"
    assert errors == []
    page.close()


def wide_one_by_one():
    """A net whose 1x1 conv reads 300 input channels (a bottleneck's shape)."""
    from convscope.models import Model, Preprocessing

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 300, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(300, 4, 1),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 10 * 10, 3),
    )
    return Model(
        net.eval(), classes=["a", "b", "c"], preprocessing=Preprocessing(size=(12, 12), channels=1), name="wide"
    )


@pytest.fixture(scope="module")
def wide():
    from convscope.server import Registry, create_app

    with LiveServer(create_app(registry=Registry(["wide"], loader=lambda spec: wide_one_by_one()))) as server:
        yield server


def test_elastic_view_shows_every_input_channel_of_a_wide_1x1_conv(wide, browser, shots):
    page, errors = open_page(browser, wide.url + "/?model=wide")
    fetches: list[str] = []  # what each list fetch did, for the failure message
    page.on("request", lambda r: "start=" in r.url and fetches.append(f"sent {r.url.split('start=')[1][:12]}"))
    page.on("requestfinished", lambda r: "start=" in r.url and fetches.append(f"done {r.url.split('start=')[1][:12]}"))
    page.on("requestfailed", lambda r: "start=" in r.url and fetches.append(f"FAILED {r.failure}"))
    rec = wide.app.state.registry.trace("wide", "sample-0").trace.layers[3]  # the 1x1 conv (after input, conv, relu)
    assert rec.kind == "conv" and rec.weight.shape[1] == 300
    page.locator(f'canvas.neuron[data-layer="{rec.name}"][data-channel="2"]').click()
    wait_detail(page)
    # the list scrolls; each scroll to its end fetches the next input channels, up to all 300
    # (waiting for each fetch's rows, not a fixed time: a loaded CI machine took > 300 ms a fetch)
    deadline = time.monotonic() + 60
    while (shown := page.locator(".elastic-row").count()) < 300 and time.monotonic() < deadline:
        page.evaluate("() => { const r = document.querySelector('.elastic-rows'); r.scrollTop = r.scrollHeight; }")
        try:
            page.wait_for_function(f"() => document.querySelectorAll('.elastic-row').length > {shown}", timeout=5_000)
        except PlaywrightTimeout:
            pass  # this scroll fired while a fetch was running: scroll again
    rows = page.locator(".elastic-row")
    if rows.count() < 300:
        faulthandler.dump_traceback(all_threads=True)  # where a server thread waits, if one does
    assert rows.count() == 300, (fetches, errors, page.locator(".elastic-more").all_inner_texts())
    assert [int(i) for i in rows.evaluate_all("(rs) => rs.map((r) => r.dataset.index)")] == list(range(300))
    assert page.locator(".elastic-count").inner_text() == "all 300 input channels (scroll the list)"
    # the formula writes all 300 channel sums; they add up, with the bias, to PyTorch's value
    sec = page.locator(".conv-formula")
    y, x = position(sec)
    terms = [
        float(v) for v in sec.locator(".channel-terms .term").evaluate_all("(ts) => ts.map((t) => t.dataset.value)")
    ]
    inp = rec.input[0, :, y, x].double()
    expected = (rec.weight.detach()[2, :, 0, 0].double() * inp).tolist()
    assert terms == pytest.approx(expected, abs=1e-6)
    value = float(page.locator('#detail [data-k="value"]').get_attribute("data-value"))
    assert sum(terms) + float(rec.bias.detach()[2]) == pytest.approx(value, abs=1e-5)
    assert value == pytest.approx(float(rec.output[0, 2, y, x]), abs=1e-5)
    # a channel fetched later is choosable in the step-by-step view
    page.select_option(".conv-formula .in-channel", "250")
    page.wait_for_function("() => document.querySelector('.conv-formula').dataset.index === '250'")
    assert float(sec.locator('[data-k="channel-sum"]').get_attribute("data-value")) == pytest.approx(
        expected[250], abs=1e-6
    )
    page.locator("#detail").screenshot(path=str(shots / "h22-wide-conv.png"))
    assert errors == []
    page.close()


def test_a_failed_list_fetch_says_so_and_the_next_scroll_tries_again(wide, browser):
    """A list fetch that fails leaves a message at the end of the list, not a list that waits
    forever (the old code kept its 'loading' flag set after a rejected fetch)."""
    page, errors = open_page(browser, wide.url + "/?model=wide")
    failed: list[str] = []

    def fail_first(route):
        if "start=" in route.request.url and not failed:
            failed.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/detail?*", fail_first)
    rec = wide.app.state.registry.trace("wide", "sample-0").trace.layers[3]
    page.locator(f'canvas.neuron[data-layer="{rec.name}"][data-channel="2"]').click()
    wait_detail(page)
    page.wait_for_function(
        "() => document.querySelector('.elastic-more')?.textContent.startsWith('could not load more')", timeout=30_000
    )
    assert len(failed) == 1 and page.locator(".elastic-row").count() == 8  # the first page only
    page.evaluate("() => { const r = document.querySelector('.elastic-rows'); r.scrollTop = 0; }")
    page.evaluate("() => { const r = document.querySelector('.elastic-rows'); r.scrollTop = r.scrollHeight; }")
    page.wait_for_function("() => document.querySelectorAll('.elastic-row').length > 8", timeout=30_000)
    rows = page.locator(".elastic-row")
    assert [int(i) for i in rows.evaluate_all("(rs) => rs.map((r) => r.dataset.index)")] == list(range(rows.count()))
    assert errors == []
    page.close()


def test_detail_opens_beside_the_overview(live, browser, shots):
    page, errors = open_page(browser, live.url + "/", 1600, 1000)
    conv = next(r for r in trace_of(live).layers if r.kind == "conv" and r.weight.shape[1] > 1)
    neuron = page.locator(f'canvas.neuron[data-layer="{conv.name}"][data-channel="3"]')
    open_conv(page, conv.name, 3)
    page.wait_for_timeout(300)  # the overview's columns spread anew in the narrower box
    overview, detail = page.locator("#overview").bounding_box(), page.locator("#detail").bounding_box()
    assert detail["x"] >= overview["x"] + overview["width"] - 1  # to the right of the overview
    assert detail["y"] < overview["y"] + overview["height"]  # beside it, not below it
    cell = neuron.bounding_box()
    assert overview["x"] <= cell["x"] and cell["x"] + cell["width"] <= overview["x"] + overview["width"]
    assert 0 <= cell["y"] and cell["y"] + cell["height"] <= 1000  # the neuron stays in view
    assert "selected" in neuron.get_attribute("class")
    assert page.locator("svg.edges path.edge").count() > 0
    page.screenshot(path=str(shots / "h22-side-panel.png"))
    page.locator("#detail .close").click()
    page.wait_for_function("() => document.body.dataset.detail === 'closed'")
    assert page.locator("#overview").bounding_box()["width"] > overview["width"] + 300
    assert errors == []
    page.close()
