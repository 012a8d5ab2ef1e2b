"""The padding/stride/dilation article on a convolution whose width has its own geometry.

The article's live part wrote the height's output size only ("and the same for the width"),
with the kernel, stride and dilation of the height, so a 3×5 kernel with stride (2, 1) and
dilation (1, 2) on a 16×20 input was explained with the height's numbers everywhere. Now each
axis that differs gets its own line and the sentences name both sizes. In headless Chromium on
a real server: the numbers the article writes are PyTorch's output size, per axis; a square
convolution (the default model) keeps its one line.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from server_helpers import LiveServer

pytestmark = pytest.mark.browser

SIZE = (16, 20)  # height, width


def oblong():
    from convscope.models import Model, Preprocessing

    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module("conv", nn.Conv2d(3, 4, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2)))
    net.add_module("relu", nn.ReLU())
    net.add_module("pool", nn.AdaptiveAvgPool2d(1))
    net.add_module("flat", nn.Flatten())
    net.add_module("fc", nn.Linear(4, 3))
    pre = Preprocessing(size=SIZE, resize="stretch")
    return Model(net.eval(), classes=["a", "b", "c"], preprocessing=pre, name="oblong")


@pytest.fixture(scope="module")
def live():
    from convscope.models import load_model
    from convscope.server import Registry, create_app

    registry = Registry(["oblong", "default"], loader=lambda spec: oblong() if spec == "oblong" else load_model(spec))
    with LiveServer(create_app(registry=registry)) as server:
        yield server


def geometry_article(browser, live, model: str, layer: str, lang: str = "en-US"):
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000}, locale=lang)
    ctx.add_init_script("localStorage.setItem('convscope.tour', 'done')")
    page = ctx.new_page()
    page.goto(f"{live.url}/?model={model}")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=90_000)
    page.locator(f'canvas.neuron[data-layer="{layer}"][data-channel="1"]').click()
    page.wait_for_function("() => document.body.dataset.detail === 'ready'")
    page.click("#detail .learn-link")
    page.wait_for_function("() => document.getElementById('learn')?.dataset.state === 'ready'")
    page.click('#learn .learn-toc button[data-article="geometry"]')
    page.wait_for_function(
        "() => { const p = document.getElementById('learn'); return p.dataset.state === 'ready' && p.dataset.article === 'geometry'; }"
    )
    return ctx, page


def shown(page, key: str) -> list[float]:
    return page.eval_on_selector_all(
        f'#learn .learn-live [data-k="{key}"]', "es => es.map(e => Number(e.dataset.value))"
    )


def test_geometry_article_writes_height_and_width_when_they_differ(live, browser, shots):
    conv = live.app.state.registry.entry("oblong").model.net.conv
    oh, ow = conv(torch.zeros(1, 3, *SIZE)).shape[-2:]
    assert (oh, ow) == (8, 16)  # the premise: the two axes differ
    ctx, page = geometry_article(browser, live, "oblong", "conv")
    assert shown(page, "out-size") == [oh] and shown(page, "out-width") == [ow]
    text = page.inner_text("#learn .learn-article")
    assert "H_out = ⌊(H + p_top + p_bottom − d·(k − 1) − 1) / s⌋ + 1 = ⌊(16 + 1 + 1 − 1·2 − 1) / 2⌋ + 1 = 8" in text
    assert "W_out = ⌊(W + p_left + p_right − d·(k − 1) − 1) / s⌋ + 1 = ⌊(20 + 2 + 2 − 2·4 − 1) / 1⌋ + 1 = 16" in text
    assert "with kernel 3×5, stride 2×1, dilation 1×2 and padding 1 at the top, 1 at the bottom, 2 on the left" in text
    # output (y, x) starts at input row y·2 − 1, column x·1 − 2, and covers 3 rows by 2·4 + 1 = 9 columns
    assert "covers 3×9 input pixels, with a step of 1×2 between taps" in text
    page.locator("#learn").screenshot(path=str(shots / "learn-geometry-oblong.png"))
    page.select_option("#language-select", "zh-CN")
    page.wait_for_function(
        "() => document.querySelector('#learn .learn-article')?.innerText.includes('覆盖 3×9 个输入像素')"
    )
    assert shown(page, "out-width") == [ow]
    ctx.close()


def test_a_square_convolution_keeps_one_line(live, browser):
    ctx, page = geometry_article(browser, live, "default", "conv_1_1")
    assert shown(page, "out-size") == [26] and shown(page, "out-width") == []
    assert "covers 3×3 input pixels, with a step of 1 between taps" in page.inner_text("#learn .learn-article")
    ctx.close()
