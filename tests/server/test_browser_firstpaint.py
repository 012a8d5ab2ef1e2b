"""EfficientNet-Lite0's first paint in headless Chromium, served by a real uvicorn server on
127.0.0.1: maps drawn in fewer pixels than they have arrive as float16 block means (a quarter
of the bytes of float32 at full size), their colours are those of PyTorch's float32 values,
and the tooltip still prints the exact float32 value at the hovered position."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from server_helpers import LiveServer

pytestmark = pytest.mark.browser

WINDOW = {"width": 1400, "height": 900}
MODEL = "efficientnet-lite0"
LAYER = "_blocks.0._bn1"  # a 32x112x112 batchnorm output, drawn in 60 px: sent as 56x56 block means

# the overview's bytes: every activation response of the first paint (resource timing, body as sent)
ACTIVATION_BYTES = """() => performance.getEntriesByType('resource')
  .filter((e) => e.name.includes('/activations?')).reduce((n, e) => n + e.encodedBodySize, 0)"""

# the page's own painting (colors.js) of the given values in a fresh canvas: what the overview
# would show had it been sent PyTorch's float32 block means
PAINT = """async ([values, h, w, lo, hi]) => {
  const { paint } = await import('/static/js/colors.js');
  const cv = document.createElement('canvas');
  paint(cv, Float32Array.from(values), h, w, 'diverging', lo, hi, 0);
  return Array.from(cv.getContext('2d').getImageData(0, 0, w, h).data);
}"""
PIXELS = """(cv) => Array.from(cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data)"""


@pytest.fixture(scope="module")
def served(browser, efficientnet):
    from convscope.server import create_app

    app = create_app([MODEL])
    with LiveServer(app) as live:
        p = browser.new_page(viewport=WINDOW)
        errors: list[str] = []
        p.on("pageerror", lambda e: errors.append(str(e)))
        p.goto(f"{live.url}/?model={MODEL}&image=sample-0")
        p.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=120_000)
        assert p.evaluate("() => document.body.dataset.overview") == "ready", errors
        yield p, app.state.registry.trace(MODEL, "sample-0")
        assert errors == []
        p.close()


def block_means(maps: np.ndarray, step: int) -> np.ndarray:
    """(C, H, W) -> (C, ceil(H/step), ceil(W/step)) means of step x step blocks, in float64
    with plain numpy (the last, partial blocks average what they hold)."""
    c, h, w = maps.shape
    out = np.zeros((c, -(-h // step), -(-w // step)))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = maps[:, i * step : (i + 1) * step, j * step : (j + 1) * step].astype(np.float64).mean((1, 2))
    return out


def test_first_paint_sends_block_means_of_the_maps(served):
    page, _ = served
    sent = page.evaluate(ACTIVATION_BYTES)
    # 15 columns x 9 channels of 112x112 float32 maps were 7.1 MB; 56x56 float16 means are ~0.9 MB
    print(f"activation bytes of the first paint: {sent / 1e6:.2f} MB")
    assert 0 < sent < 1.5e6
    sizes = page.evaluate(
        f"() => [...document.querySelectorAll('canvas.neuron[data-layer=\"{LAYER}\"]')]"
        ".map(cv => [cv.width, cv.height, cv.dataset.step])"
    )
    assert sizes and all(s == [56, 56, "2"] for s in sizes), sizes


def test_colours_are_those_of_the_float32_values(served):
    page, te = served
    full = te.array(LAYER)  # (32, 112, 112) float32 from the PyTorch forward pass
    c = 4
    means = block_means(full[c : c + 1], 2)[0]
    cv = page.locator(f'canvas.neuron[data-layer="{LAYER}"][data-channel="{c}"]')
    shown = np.array(cv.evaluate(PIXELS)).reshape(56, 56, 4)
    # unit colour mode: the channel's own exact range, as the server's header gives it
    lo, hi = float(full[c].min()), float(full[c].max())
    want = np.array(page.evaluate(PAINT, [means.ravel().tolist(), 56, 56, lo, hi])).reshape(56, 56, 4)
    # float16 moves a value by at most 2^-11 of itself: one of the 256 colour steps at most
    differ = np.abs(shown.astype(int) - want.astype(int)).max(-1)
    print(f"pixels off the float32 colour: {(differ > 0).mean():.2%}, by at most {differ.max()}")
    assert (differ > 0).mean() < 0.02
    ramp = np.array(page.evaluate(PAINT, [list(range(256)), 1, 256, 0, 255])).reshape(256, 4)
    lut_step = np.abs(np.diff(ramp.astype(int), axis=0)).max()  # the scale's largest change per step
    assert differ.max() <= lut_step
    # and the decoded page itself is the float32 block means to float16 precision
    decoded = page.evaluate(
        """async ([layer]) => {
          const { getMany, q } = await import('/static/js/api.js');
          const [p] = await getMany('/api/models/efficientnet-lite0/activations?' +
            q({ image: 'sample-0', pages: `${layer}:0:9:float32:60` }));
          return { header: p.header, data: Array.from(p.data) };
        }""",
        [LAYER],
    )
    assert decoded["header"]["dtype"] == "float16" and decoded["header"]["step"] == 2
    assert decoded["header"]["full_shape"] == [112, 112]
    got = np.array(decoded["data"]).reshape(9, 56, 56)
    assert np.allclose(got, block_means(full[:9], 2), rtol=2**-11, atol=2**-24)
    assert decoded["header"]["ch_min"] == pytest.approx(full[:9].reshape(9, -1).min(1).tolist(), abs=0)


def test_the_tooltip_prints_the_exact_value(served):
    page, te = served
    full = te.array(LAYER)
    c = 4
    cv = page.locator(f'canvas.neuron[data-layer="{LAYER}"][data-channel="{c}"]')
    box = cv.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.37, box["y"] + box["height"] * 0.61)
    tip = page.locator("#tooltip")
    # the value comes from the full float32 page, fetched on the first hover ('–' until then)
    page.wait_for_function("() => /value -?[0-9]/.test(document.getElementById('tooltip').innerText)")
    text = tip.inner_text()
    y, x = (int(v) for v in re.search(r"\((\d+), (\d+)\)", text).groups())
    shown = float(text.split("value")[-1].replace("−", "-"))
    exact = float(full[c, y, x])
    assert 0 <= y < 112 and 0 <= x < 112
    printed = f"{exact:.2e}" if exact and not 1e-3 <= abs(exact) < 1e4 else f"{exact:.4g}"  # colors.js fmt(v, 4)
    assert shown == float(printed), (text, exact)
    assert "≈" not in text
    page.mouse.move(0, 0)


def test_block_means_match_torch_avg_pool(served):
    """shrink_maps against plain numpy on a map side not divisible by the step (225, step 4)."""
    from convscope.server.encoding import shrink_maps

    _, te = served
    padded = te.array("_conv_stem.static_padding")  # (3, 225, 225)
    shrunk, step = shrink_maps(padded, 60)
    assert step == 4 and shrunk.shape == (3, 57, 57)
    assert np.allclose(shrunk, block_means(padded, 4), rtol=1e-6, atol=1e-7)
    small, one = shrink_maps(padded[:, :40, :40], 60)
    assert (
        one == 1 and small is not None and torch.equal(torch.from_numpy(small), torch.from_numpy(padded[:, :40, :40]))
    )
