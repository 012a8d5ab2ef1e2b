"""Layer names holding '|' (and '/', ':' and '\\') in the batched activations request.

The overview and the compare view fetch many layers' pages in one
``/api/models/M/activations?pages=`` request, its ``LAYER:START:COUNT:DTYPE[:SIZE]`` entries
joined by '|'. PyTorch accepts '|' in a module's name, and such a name was split into two bad
entries (400: the whole overview failed to draw). A '|' or '\\' in a name now travels escaped
with '\\' (api.pageEntry on the page, routes_network.split_pages on the server); ':' needs no
escape (the numbers are read from the right). Tested on a real uvicorn server on 127.0.0.1:
the API with escaped names, and the page's overview in headless Chromium, whose maps are the
model's own outputs.
"""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
import torch
from torch import nn

from convscope.models import Model, Preprocessing
from convscope.server.encoding import decode_many
from convscope.server.routes_network import split_pages

from server_helpers import LiveServer, hooked_outputs, open_overview

CONV, RELU, FC = "stem|a/conv:1", "stem|a/relu", "head\\fc|out"


def piped() -> Model:
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module(CONV, nn.Conv2d(3, 4, 3, padding=1))
    net.add_module(RELU, nn.ReLU())
    net.add_module("pool", nn.MaxPool2d(2))
    net.add_module("flat", nn.Flatten())
    net.add_module(FC, nn.Linear(4 * 16 * 16, 10))
    return Model(net.eval(), classes=[f"class {i}" for i in range(10)], preprocessing=Preprocessing((32, 32)))


def escaped(name: str) -> str:
    """A layer's name as a pages entry writes it (the page's api.pageEntry)."""
    return name.replace("\\", "\\\\").replace("|", "\\|")


@pytest.fixture(scope="module")
def live():
    from convscope.server import Registry, create_app

    app = create_app(registry=Registry(["piped"], loader=lambda spec: piped()))
    with LiveServer(app) as server:
        yield server


def test_split_pages_reads_escapes():
    assert split_pages("a:0:1:float16|b:0:2:float32") == ["a:0:1:float16", "b:0:2:float32"]
    assert split_pages(f"{escaped(CONV)}:0:4:float32|{escaped(FC)}:0:10:float16:60") == [
        f"{CONV}:0:4:float32",
        f"{FC}:0:10:float16:60",
    ]


def test_batched_pages_with_pipes_in_layer_names(live):
    want = hooked_outputs(live, "piped")
    pages = f"{escaped(CONV)}:1:3:float32|{escaped(RELU)}:0:4:float32|{escaped(FC)}:0:10:float32"
    r = httpx.get(f"{live.url}/api/models/piped/activations", params={"image": "sample-0", "pages": pages})
    assert r.status_code == 200, r.text
    got = decode_many(r.content)
    assert [h["layer"] for h, _ in got] == [CONV, RELU, FC]
    np.testing.assert_allclose(got[0][1], want[CONV][0, 1:4].numpy(), atol=1e-6)
    np.testing.assert_allclose(got[1][1], want[RELU][0].numpy(), atol=1e-6)
    np.testing.assert_allclose(got[2][1], want[FC][0].numpy(), atol=1e-5)
    lone = httpx.get(f"{live.url}/api/models/piped/activations", params={"pages": "pool:0:1:float32\\"})
    assert lone.status_code == 400 and "lone" in lone.text


@pytest.mark.browser
def test_the_overview_draws_layers_with_pipes(live, browser, shots):
    want = hooked_outputs(live, "piped")
    page, errors = open_overview(browser, f"{live.url}/?model=piped&image=sample-0")
    for name in (CONV, RELU, FC):
        page.wait_for_function(
            "(n) => document.querySelector(`.column[data-layer=\"${CSS.escape(n)}\"]`)?.dataset.drawn === '1'", arg=name
        )
    # the relu's maps as the page decoded them (float16 pages) are the model's outputs
    drawn = page.locator(f'canvas.neuron[data-layer="{RELU}"]')
    assert drawn.count() == 4
    # the value under the pointer (the tooltip) is the model's own output there, to float16 precision
    y, x = map(int, np.unravel_index(int(want[CONV][0, 2].argmax()), want[CONV].shape[2:]))
    canvas = page.locator(f'canvas.neuron[data-layer="{CONV}"][data-channel="2"]')
    box = canvas.bounding_box()
    canvas.hover(position={"x": (x + 0.5) * box["width"] / 32, "y": (y + 0.5) * box["height"] / 32})
    page.wait_for_function("(t) => document.querySelector('#tooltip')?.innerText.includes(t)", arg=f"({y}, {x})")
    tip = page.locator("#tooltip").inner_text()
    assert CONV in tip
    shown = float(re.search(r"value ≈?(-?[0-9.e+-]+)", tip).group(1))
    assert shown == pytest.approx(float(want[CONV][0, 2, y, x]), rel=2e-3)
    page.screenshot(path=str(shots / "piped-overview.png"))
    assert not errors, errors
    page.close()
