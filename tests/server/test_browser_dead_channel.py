"""A dead channel's detail view says what it is (issue 12's leftovers), in headless Chromium on
a real server with the default model.

Channel 0 of the default model's conv_2_2 has decayed to nothing: its weights are about 1e-24 and
its output is its bias (-2.007e-7) at every position, so relu_2_2's channel 0 is 0 everywhere.
The overview already paints such a map grey and says "constant"; the detail view painted it as a
normal map on its own (empty) range, and wrote and coloured the 1e-24 kernels on their own range,
where float noise looks like as much structure as a live filter. Here: the constant maps are
grey and labelled with their value, the ~0 maps are labelled as drawn as 0, the kernels read 0 and
say so, in the look-for panel too, and a live channel (3) keeps its colours and its numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from live_server import serving

pytestmark = pytest.mark.browser

CATALOGUES = Path(__file__).resolve().parents[2] / "src" / "convscope" / "server" / "static" / "i18n"
EN = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))
ZH = json.loads((CATALOGUES / "zh-CN.json").read_text(encoding="utf-8"))
IMAGE = "sample-3"

# the colours a canvas holds, as distinct (r, g, b) triples
COLOURS = """(cv) => {
  const px = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
  const seen = new Set();
  for (let i = 0; i < px.length; i += 4) seen.add(`${px[i]},${px[i + 1]},${px[i + 2]}`);
  return [...seen];
}"""

# the colours an <img> shows once decoded
IMG_COLOURS = """(img) => {
  const c = document.createElement("canvas");
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  const seen = new Set();
  for (let i = 0; i < px.length; i += 4) seen.add(`${px[i]},${px[i + 1]},${px[i + 2]}`);
  return [...seen];
}"""


@pytest.fixture(scope="module")
def live():
    with serving() as server:
        yield server


def detail_json(live, layer: str, channel: int) -> dict:
    r = httpx.get(f"{live.url}/api/models/default/layers/{layer}/detail", params={"image": IMAGE, "channel": channel})
    r.raise_for_status()
    return r.json()


def open_detail(page, layer: str, channel: int) -> None:
    page.locator(f'canvas.neuron[data-layer="{layer}"][data-channel="{channel}"]').click()
    page.wait_for_function(
        f"() => document.body.dataset.detail === 'ready' && document.querySelector('#detail h2')?.innerText.includes('{layer}')"
    )


def js_exp(page, v: float) -> str:
    """v as the page writes a small number (colors.fmt: toExponential(2) under 1e-3)."""
    return page.evaluate("(v) => v.toExponential(2)", v)


def test_dead_channel_detail_says_constant_and_zero_kernels(live, browser, shots):
    dead = detail_json(live, "conv_2_2", 0)
    assert dead["output"]["min"] == dead["output"]["max"] != 0  # the premise: one value, its bias
    assert max(abs(v) for c in dead["channels"] for row in c["kernel"] for v in row) < 1e-12
    page = browser.new_page(viewport={"width": 1600, "height": 1000}, locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/?model=default&image={IMAGE}")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=90_000)

    open_detail(page, "conv_2_2", 0)
    out = page.locator("#detail .elastic-sum .mapview").nth(1)
    assert out.get_attribute("data-flat") == "constant"
    value = js_exp(page, dead["output"]["min"])
    assert EN["widgets"]["map_constant"].replace("{value}", value) in out.inner_text()
    grey = page.locator("#detail .elastic-sum .mapview canvas").nth(1).evaluate(COLOURS)
    assert len(grey) == 1 and len(set(grey[0].split(","))) == 1, grey  # one neutral grey
    total = page.locator("#detail .elastic-sum .mapview").first
    assert total.get_attribute("data-flat") == "zero"  # the sum of ~1e-24 products
    assert EN["widgets"]["map_zero"] in total.inner_text()
    kernels = page.locator("#detail .elastic-row table.kernel")
    assert kernels.count() == len(dead["channels"]) > 0
    assert page.locator("#detail .elastic-row table.kernel:not([data-flat='zero'])").count() == 0
    assert set(page.locator("#detail .elastic-row table.kernel td").all_inner_texts()) == {"0"}
    assert page.locator("#detail .elastic-row .flat-note").first.inner_text() == EN["widgets"]["grid_zero_short"]
    # the step-by-step formula's kernel says so in words under its title
    assert page.locator("#detail .formula-grids .flat-note").first.inner_text() == EN["widgets"]["grid_zero"]
    page.locator("#detail").screenshot(path=str(shots / "dead-channel-detail.png"))

    # its look-for panel: the kernel picture is drawn as zeros and says so
    page.click(".lookfor-offer")
    page.wait_for_function("() => document.querySelector('#lookfor .lookfor-kernels-img')?.complete")
    assert page.locator("#lookfor .lookfor-kernel-zero").inner_text() == EN["lookfor"]["kernel_zero"]
    assert len(page.locator("#lookfor .lookfor-kernels-img").evaluate(IMG_COLOURS)) <= 2  # zero's colour and the gaps
    page.locator("#lookfor .lookfor-kernels").screenshot(path=str(shots / "dead-channel-kernels.png"))

    # in Chinese after a switch
    page.select_option("#language-select", "zh-CN")
    zh = ZH["widgets"]["map_constant"].replace("{value}", value)
    page.wait_for_function("(t) => document.querySelector('#detail .elastic-sum')?.innerText.includes(t)", arg=zh)
    page.wait_for_function(
        "(t) => document.querySelector('#lookfor .lookfor-kernel-zero')?.innerText === t",
        arg=ZH["lookfor"]["kernel_zero"],
    )
    page.select_option("#language-select", "en")

    # relu_2_2's channel 0: 0 in, 0 out: both constant
    open_detail(page, "relu_2_2", 0)
    maps = page.locator("#detail .mapview")
    assert [maps.nth(i).get_attribute("data-flat") for i in range(maps.count())] == ["constant", "constant"]

    # a live channel keeps its colours, its kernels' numbers and the look-for picture's colours
    live_one = detail_json(live, "conv_2_2", 3)
    open_detail(page, "conv_2_2", 3)
    assert page.locator("#detail .elastic-sum [data-flat]").count() == 0
    # only an input map that is constant itself (a dead channel of relu_2_1) is marked
    flat_inputs = [str(c["index"]) for c in live_one["channels"] if c["input"]["min"] == c["input"]["max"]]
    marked = page.locator("#detail .elastic-row:has(.mapview[data-flat])")
    assert [marked.nth(i).get_attribute("data-index") for i in range(marked.count())] == flat_inputs
    assert page.locator("#detail .elastic-row .mapview:nth-child(5)[data-flat]").count() == 0  # no intermediate
    assert page.locator("#detail table[data-flat]").count() == 0
    assert len(page.locator("#detail .elastic-sum .mapview canvas").nth(1).evaluate(COLOURS)) > 4
    assert len(set(page.locator("#detail .elastic-row table.kernel td").all_inner_texts())) > 4
    page.wait_for_function("() => document.querySelector('#lookfor h2')?.innerText.includes('3')")
    page.wait_for_function("() => document.querySelector('#lookfor .lookfor-kernels-img')?.complete")
    assert page.locator("#lookfor .lookfor-kernel-zero").count() == 0
    assert len(page.locator("#lookfor .lookfor-kernels-img").evaluate(IMG_COLOURS)) > 8
    assert errors == []
