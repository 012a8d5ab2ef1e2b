"""The page in Chromium: a dead channel is painted neutral grey, and a mismatched input is
flagged beside the prediction with a one-click fix."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from live_server import serving

pytestmark = pytest.mark.browser

CONSTANT_MAP = """([layer, channel]) => {
  const cv = document.querySelector(`canvas.neuron[data-layer="${layer}"][data-channel="${channel}"]`);
  if (!cv) return null;
  const d = cv.getContext("2d").getImageData(0, 0, cv.width, cv.height).data;
  const px = [];
  for (let i = 0; i < d.length; i += 4) px.push([d[i], d[i + 1], d[i + 2]]);
  return { constant: cv.classList.contains("constant"), px };
}"""


@pytest.fixture(scope="module")
def live():
    with serving() as server:
        yield server


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
    return page, errors


def test_a_dead_channel_is_neutral_grey_in_unit_mode(live, browser):
    reg = live.app.state.registry
    act = reg.trace("default", "sample-0").trace["relu_2_2"].output[0]  # (C, H, W)
    flat = act.flatten(1)
    dead = int(np.flatnonzero((flat.amax(1) == flat.amin(1)).numpy())[0])
    live_c = int(np.flatnonzero((flat.amax(1) > flat.amin(1)).numpy())[0])
    page, errors = _open(browser, live.url + "/?model=default&image=sample-0")
    page.locator(f'canvas.neuron[data-layer="relu_2_2"][data-channel="{dead}"]').scroll_into_view_if_needed()
    page.wait_for_function(
        CONSTANT_MAP.replace("return { constant", "return cv.width > 0 && { constant"),
        arg=["relu_2_2", dead],
        timeout=30_000,
    )
    got = page.evaluate(CONSTANT_MAP, ["relu_2_2", dead])
    assert got["constant"] and {tuple(p) for p in got["px"]} == {(128, 128, 128)}  # neutral grey, not blue
    other = page.evaluate(CONSTANT_MAP, ["relu_2_2", live_c])
    assert not other["constant"] and len({tuple(p) for p in other["px"]}) > 1
    assert not errors
    page.close()


def test_a_dark_digit_is_flagged_and_one_click_inverts_it(live, browser, tmp_path):
    from convscope.server.images import mnist_digits

    seven = dict(mnist_digits())["7"]
    path = tmp_path / "dark7.png"
    buffer = io.BytesIO()
    Image.fromarray(255 - seven).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    page, errors = _open(browser, live.url + "/?model=default&image=sample-0")
    assert page.evaluate("() => document.body.dataset.warnings") == ""
    page.set_input_files("#upload", str(path))
    page.wait_for_function("() => document.body.dataset.warnings === 'polarity'", timeout=60_000)
    warning = page.locator('.pred-warning[data-kind="polarity"]')
    assert "white digits on black" in warning.inner_text()
    assert page.evaluate("() => document.body.dataset.prediction") != "7"
    first = page.evaluate("() => new URLSearchParams(location.search).get('image')")
    warning.locator('button[data-fix="invert"]').click()
    page.wait_for_function(
        "(first) => new URLSearchParams(location.search).get('image') !== first && "
        "document.body.dataset.overview === 'ready' && document.body.dataset.warnings === ''",
        arg=first,
        timeout=60_000,
    )
    assert page.evaluate("() => document.body.dataset.prediction") == "7"
    assert not errors
    page.close()
