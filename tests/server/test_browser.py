"""The explorer in headless Chromium against a real uvicorn server on 127.0.0.1.

Screenshots of each view go to ``$CONVSCOPE_SCREENSHOTS`` when set (else a temp dir),
to look at::

    CONVSCOPE_SCREENSHOTS=/tmp/shots python -m pytest -q tests/server/test_browser.py

The README's pictures (``docs/img/explorer-*.png``) are made by ``python docs/screenshots.py``.
"""

from __future__ import annotations

import numpy as np
import pytest

from server_helpers import LiveServer, png, seq_outputs

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live():
    from convscope.server import create_app

    app = create_app(["default", "efficientnet-lite0"])
    app.state.registry.warm()
    with LiveServer(app) as server:
        yield server


class Page:
    """A page plus every console error and uncaught exception it produced."""

    def __init__(self, browser, url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.wait("overview")

    def wait(self, key: str, timeout: float = 60_000) -> None:
        self.page.wait_for_function(f"() => ['ready', 'error'].includes(document.body.dataset.{key})", timeout=timeout)
        assert self.page.evaluate(f"document.body.dataset.{key}") == "ready", self.message()

    def wait_for_image(self, prefix: str, timeout: float = 60_000) -> str:
        self.page.wait_for_function(
            f"() => new URLSearchParams(location.search).get('image').startsWith('{prefix}') && "
            "document.body.dataset.overview === 'ready'",
            timeout=timeout,
        )
        return self.page.evaluate("new URLSearchParams(location.search).get('image')")

    def message(self) -> str:
        m = self.page.locator("#message")
        return m.inner_text() if m.is_visible() else ""

    def value(self, selector: str) -> float:
        return float(self.page.locator(selector).first.get_attribute("data-value"))


def test_default_model_overview_and_conv_detail(live, browser, shots):
    p = Page(browser, live.url + "/")
    page = p.page
    reg = live.app.state.registry
    trace = reg.trace("default", "sample-0").trace
    layers = [r for r in trace.layers if r.output is not None and r.output.dim() >= 2]
    assert page.locator(".column").count() == len(layers) + 1  # + the class scores
    page.screenshot(path=str(shots / "overview.png"))
    # colour-range modes: 'global' gives every non-input layer the same legend, from the server's range
    page.click('[data-mode="global"]')
    page.wait_for_function(
        "() => [...document.querySelectorAll('.col-legend .legend')].every(l => l.dataset.mode === 'global')"
    )
    ends = page.evaluate(
        "[...document.querySelectorAll('.column:not(.kind-input) .col-legend .ends')].map(e => e.innerText)"
    )
    assert len(set(ends)) == 1
    g = max(abs(float(r.output.min())) for r in layers[1:] if r.output.dim() == 4)
    g = max(g, max(abs(float(r.output.max())) for r in layers[1:] if r.output.dim() == 4))
    assert ends[0].split()[-1] == f"{float(f'{g:.3g}'):g}"
    page.click('[data-mode="unit"]')
    # hovering a neuron shows its value and draws its connections
    conv = next(r for r in trace.layers if r.kind == "conv" and r.weight.shape[1] > 1)
    c = int(conv.weight.detach().flatten(1).norm(dim=1).argmax())  # a lively filter (some may be dead)
    neuron = page.locator(f'canvas.neuron[data-layer="{conv.name}"][data-channel="{c}"]')
    neuron.hover()
    assert page.locator("#tooltip").is_visible() and "value" in page.locator("#tooltip").inner_text()
    assert page.locator("svg.edges path.hl").count() >= 1
    # clicking it opens the elastic and step-by-step views with the trace's numbers
    neuron.click()
    p.wait("detail")
    # every input channel's row, the first 8 at once and the rest as the list scrolls to its end
    page.evaluate("() => { const r = document.querySelector('.elastic-rows'); r.scrollTop = r.scrollHeight; }")
    page.wait_for_function("(n) => document.querySelectorAll('.elastic-row').length === n", arg=conv.weight.shape[1])
    sec = page.locator(".conv-formula")
    y, x = int(sec.get_attribute("data-y")), int(sec.get_attribute("data-x"))
    model = reg.entry("default").model
    ref = seq_outputs(model.net, reg.input_batch("default", "sample-0"))
    expected = float(ref[conv.name][0, c, y, x])
    assert p.value('[data-k="value"]') == pytest.approx(expected, abs=1e-5)
    assert p.value('[data-k="trace-value"]') == pytest.approx(expected, abs=1e-6)
    shown = float(page.locator('[data-k="value"]').inner_text())  # written with 5 significant digits
    assert shown == pytest.approx(expected, rel=1e-4, abs=1e-9)
    page.locator(".detail").screenshot(path=str(shots / "conv-detail.png"))
    # hovering the output map moves the kernel (a server round trip per position)
    out = sec.locator(".formula-stage canvas").nth(1)
    box = out.bounding_box()
    out.hover(position={"x": 2, "y": 2})
    page.wait_for_function(
        "() => document.querySelector('.conv-formula').dataset.y === '0' && "
        "document.querySelector('.conv-formula').dataset.x === '0'"
    )
    assert p.value('[data-k="value"]') == pytest.approx(float(ref[conv.name][0, c, 0, 0]), abs=1e-5)
    assert box["width"] > 50
    # play slides the kernel along the row; pause stops it
    page.mouse.move(0, 0)
    sec.locator(".play").click()
    page.wait_for_function("() => Number(document.querySelector('.conv-formula').dataset.x) >= 2", timeout=20_000)
    sec.locator(".play").click()
    page.wait_for_timeout(700)  # a position asked for just before the pause
    yy, xx = int(sec.get_attribute("data-y")), int(sec.get_attribute("data-x"))
    assert p.value('[data-k="value"]') == pytest.approx(float(ref[conv.name][0, c, yy, xx]), abs=1e-5)
    # pooling, ReLU and softmax views
    pool = next(r for r in trace.layers if r.kind == "maxpool")
    page.locator(f'canvas.neuron[data-layer="{pool.name}"][data-channel="0"]').click()
    p.wait("detail")
    assert page.locator("#detail").get_attribute("data-view") == "pool"
    assert p.value('[data-k="value"]') == p.value('[data-k="trace-value"]')
    page.locator(".detail").screenshot(path=str(shots / "pool-detail.png"))
    relu = next(r for r in trace.layers if r.kind == "relu")
    page.locator(f'canvas.neuron[data-layer="{relu.name}"][data-channel="1"]').click()
    p.wait("detail")
    assert page.locator("#detail").get_attribute("data-view") == "activation"
    page.locator(".score").first.click()
    p.wait("detail")
    probs = ref[trace.layers[-1].name][0].double().softmax(-1)
    shown = [float(e.get_attribute("data-value")) for e in page.locator('[data-k="prob"]').all()]
    assert shown[0] == pytest.approx(float(probs.max()), abs=1e-6)
    np.testing.assert_allclose(sorted(shown, reverse=True), probs.sort(descending=True).values.numpy(), atol=1e-6)
    page.locator(".detail").screenshot(path=str(shots / "softmax.png"))
    # the summary panel
    page.click("#btn-summary")
    page.wait_for_selector("#summary .summary-table")
    total = int(page.locator('[data-k="total-params"]').inner_text().replace(",", ""))
    assert total == sum(q.numel() for q in model.net.parameters())
    assert p.errors == []


def test_upload_and_drawing_change_the_prediction(live, browser, shots, tmp_path):
    from convscope.server.images import mnist_digits

    p = Page(browser, live.url + "/?model=default&image=sample-0")
    page = p.page
    model = live.app.state.registry.entry("default").model
    before = page.locator("#prediction").inner_text()
    seven = dict(mnist_digits())["7"]
    file = tmp_path / "seven.png"
    file.write_bytes(png(seven))
    page.set_input_files("#upload", str(file))
    image = p.wait_for_image("upload-")
    expected = model.predict(file.read_bytes(), top=1)[0][0]
    assert page.evaluate("document.body.dataset.prediction") == expected[0] == "7"
    assert page.locator("#prediction").inner_text() != before
    # draw a vertical stroke: the page uploads the canvas and the prediction follows
    shown = page.locator("#prediction").inner_text()
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * (0.15 + 0.07 * i))
    page.mouse.up()
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('image') !== '{image}'")
    page.wait_for_timeout(800)  # the last stroke's upload
    drawn = p.wait_for_image("upload-")
    reg = live.app.state.registry
    top = model.predict(reg.uploads.get(drawn), top=1)[0][0]
    page.wait_for_function(f"() => document.body.dataset.prediction === {top[0]!r}")
    assert page.locator("#prediction").inner_text() != shown
    page.screenshot(path=str(shots / "drawn.png"))
    assert p.errors == []


def test_model_picker_keeps_an_uploaded_image(live, browser, tmp_path):
    pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite0 comes with the zoo extra")
    p = Page(browser, live.url + "/?model=default&image=sample-0")
    file = tmp_path / "cat.png"
    file.write_bytes(png(__import__("skimage.data", fromlist=["chelsea"]).chelsea()))
    p.page.set_input_files("#upload", str(file))
    image = p.wait_for_image("upload-")
    p.page.select_option("#model-select", "efficientnet-lite0")
    p.page.wait_for_function(
        "() => new URLSearchParams(location.search).get('model') === 'efficientnet-lite0' && "
        "document.body.dataset.overview === 'ready'",
        timeout=60_000,
    )
    assert p.page.evaluate("new URLSearchParams(location.search).get('image')") == image
    model = live.app.state.registry.entry("efficientnet-lite0").model
    assert p.page.evaluate("document.body.dataset.prediction") == model.predict(file.read_bytes(), top=1)[0][0][0]
    assert p.errors == []


def test_playground_rejects_invalid_stride(live, browser, shots):
    p = Page(browser, live.url + "/?model=default&image=sample-2")
    page = p.page
    page.click("#btn-playground")
    page.wait_for_selector(".pg-form")
    page.wait_for_function("() => document.getElementById('playground').dataset.valid === '1'")
    page.fill('input[name="crop"]', "6")
    page.fill('input[name="stride"]', "2")
    problems = page.locator('[data-k="problems"]')
    problems.wait_for()
    text = problems.inner_text()
    assert "stride 2 does not fit" in text and "Strides that fit: 1, 3" in text
    page.fill('input[name="stride"]', "3")
    page.wait_for_function("() => document.getElementById('playground').dataset.valid === '1'")
    assert page.locator('[data-k="output-size"]').inner_text() == "2 × 2"
    page.locator("#playground").screenshot(path=str(shots / "playground.png"))
    assert p.errors == []


def test_bad_upload_shows_a_clear_message(live, browser, tmp_path):
    p = Page(browser, live.url + "/?model=default")
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image at all")
    p.page.set_input_files("#upload", str(bad))
    p.page.locator("#message").wait_for()
    assert "not an image" in p.message()
    assert p.page.evaluate("document.body.dataset.overview") == "ready"  # the page still works


def test_efficientnet_overview_is_navigable(live, browser, shots):
    pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite0 comes with the zoo extra")
    p = Page(
        browser,
        live.url + "/?model=efficientnet-lite0",
    )
    page = p.page
    t = live.app.state.registry.trace("efficientnet-lite0", "sample-0").trace
    assert page.locator(".column").count() == sum(1 for r in t.layers if r.output.dim() >= 2) + 1
    assert page.locator(".group").count() >= 16  # the MBConv blocks
    assert page.locator("svg.edges path.arc").count() >= 9  # residual additions
    assert page.locator("#draw-box").is_hidden()
    page.screenshot(path=str(shots / "efficientnet.png"))
    # folding blocks: each MBConv block shows only its output column, edges follow
    page.click("#btn-fold")
    shown = page.evaluate("[...document.querySelectorAll('.column')].filter(c => c.offsetParent).length")
    assert shown == page.locator(".column").count() - sum(
        page.locator(".group").nth(i).locator(".column").count() - 1 for i in range(page.locator(".group").count())
    )
    page.wait_for_function("() => document.body.dataset.overview === 'ready'")
    page.screenshot(path=str(shots / "efficientnet-folded.png"))
    page.click("#btn-fold")
    # channel paging, and lazy loading further right
    col = page.locator('.column[data-layer="_conv_stem"]')
    first = col.locator("canvas.neuron").first.get_attribute("data-channel")
    col.locator(".pager .next").click()
    page.wait_for_function("() => document.querySelector('.column[data-layer=\"_conv_stem\"]').dataset.drawn === '1'")
    assert col.locator("canvas.neuron").first.get_attribute("data-channel") != first
    page.evaluate("document.getElementById('overview').scrollLeft = 6000")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.column')].filter(c => c.dataset.drawn === '1').length > 20"
    )
    name = next(r.name for r in t.layers if r.kind == "conv" and r.params.get("groups", 1) > 1)
    page.evaluate(f"document.querySelector('.column[data-layer=\"{name}\"]').scrollIntoView()")
    page.locator(f'canvas.neuron[data-layer="{name}"]').first.click()
    p.wait("detail")
    assert page.locator(".elastic-row").count() == 1  # depthwise: one input channel per output
    assert p.value('[data-k="value"]') == pytest.approx(p.value('[data-k="trace-value"]'), abs=1e-4)
    assert p.errors == []
