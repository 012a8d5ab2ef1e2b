"""Layer names holding '/' reach every ``/layers/{layer}`` route and the page.

PyTorch refuses '.' in a module's name but not '/', so ``add_module("block1/conv", ...)``
(how Keras- or TF-style names are kept by people porting a model) gives layer names like
``block1/conv`` and ``head/classifier.1``. The page sends them with encodeURIComponent
(``block1%2Fconv``), the server decodes the path before routing, so a plain ``{layer}``
segment never matched them (404); every layer route takes ``{layer:path}``. Tested through a
real uvicorn server on 127.0.0.1: the trace, a layer's activation page, its detail, its
kernels, and the overview and conv detail in headless Chromium.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx
import numpy as np
import pytest
import torch
from torch import nn

from convscope.models import Model, Preprocessing
from convscope.server.encoding import decode_array, decode_many

from server_helpers import LiveServer, hooked_outputs, open_overview

CONV, NESTED = "block1/conv", "head/classifier.1"


def slashed() -> Model:
    torch.manual_seed(0)
    net = nn.Sequential()
    net.add_module(CONV, nn.Conv2d(3, 4, 3, padding=1))
    net.add_module("block1/relu", nn.ReLU())
    net.add_module("block1/pool", nn.MaxPool2d(2))
    net.add_module("head/flatten", nn.Flatten())
    net.add_module("head/classifier", nn.Sequential(nn.Dropout(0.0), nn.Linear(4 * 16 * 16, 10)))
    return Model(net.eval(), classes=[f"class {i}" for i in range(10)], preprocessing=Preprocessing((32, 32)))


@pytest.fixture(scope="module")
def live():
    from convscope.server import Registry, create_app

    app = create_app(registry=Registry(["slashed"], loader=lambda spec: slashed()))
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def api(live):
    with httpx.Client(base_url=live.url, timeout=60) as client:
        yield client


def layer_url(layer: str, what: str) -> str:
    return f"/api/models/slashed/layers/{quote(layer, safe='')}/{what}"  # as encodeURIComponent sends it


def test_every_layer_route_takes_names_with_slashes(api):
    """Each ``{layer}`` address the OpenAPI document lists answers for ``block1/conv``, none with
    the router's bare 404 (a route added later with a plain ``{layer}`` fails here)."""
    paths = api.get("/openapi.json").json()["paths"]
    asked = []
    for path, methods in paths.items():
        if "{layer}" not in path:
            continue
        url = path.replace("{model}", "slashed").replace("{layer}", quote(CONV, safe=""))
        for method in methods:
            got = api.request(method.upper(), url, params={"channel": 0, "steps": 2})
            asked.append((method, path.rsplit("/", 1)[-1], got.status_code))
            assert got.status_code != 404, (method, path, got.text)
            started = got.status_code == 200 and got.headers["content-type"] == "application/json"
            if started and "id" in got.json():  # a job started: do not leave it running
                api.delete(f"/api/jobs/{got.json()['id']}")
    # activations, detail, kernels, visualization (GET: not cached yet; POST: a job), examples
    # (400 here: this server has no dataset), each asked once
    assert sorted(asked) == [
        ("get", "activations", 200),
        ("get", "detail", 200),
        ("get", "kernels", 200),
        ("get", "visualization", 200),
        ("post", "examples", 400),
        ("post", "visualization", 200),
    ]


def test_the_api_answers_for_slashed_layers(live, api):
    want = hooked_outputs(live, "slashed")
    trace = api.get("/api/models/slashed/trace", params={"image": "sample-0"})
    assert trace.status_code == 200, trace.text
    names = [layer["name"] for layer in trace.json()["layers"]]
    assert CONV in names and NESTED in names

    page = api.get(layer_url(CONV, "activations"), params={"start": 1, "count": 2, "dtype": "float32"})
    assert page.status_code == 200, page.text
    header, values = decode_array(page.content)
    assert header["layer"] == CONV and header["start"] == 1
    np.testing.assert_allclose(values, want[CONV][0, 1:3].numpy(), atol=1e-6)
    vector = api.get(layer_url(NESTED, "activations"), params={"dtype": "float32"})
    assert vector.status_code == 200, vector.text
    np.testing.assert_allclose(decode_array(vector.content)[1], want[NESTED][0].numpy(), atol=1e-5)
    pages = api.get("/api/models/slashed/activations", params={"pages": f"{CONV}:0:4:float32|{NESTED}:0:10:float32"})
    assert [h["layer"] for h, _ in decode_many(pages.content)] == [CONV, NESTED]

    detail = api.get(layer_url(CONV, "detail"), params={"channel": 2, "y": 5, "x": 7})
    assert detail.status_code == 200, detail.text
    got = detail.json()
    assert got["layer"] == CONV and got["view"] == "conv"
    assert got["position"]["value"] == pytest.approx(float(want[CONV][0, 2, 5, 7]), abs=1e-5)

    kernels = api.get(layer_url(CONV, "kernels"), params={"channel": 3})
    assert kernels.status_code == 200, kernels.text
    assert kernels.json()["layer"] == CONV
    # a name that is not a layer is still a plain 404 with the server's own words
    missing = api.get(layer_url("block1/nothing", "detail"))
    assert missing.status_code == 404 and "block1/nothing" in missing.text


@pytest.mark.browser
def test_the_page_draws_and_details_a_slashed_layer(live, browser, shots):
    page, errors = open_overview(browser, f"{live.url}/?model=slashed&image=sample-0")
    page.wait_for_function(f"() => document.querySelector('.column[data-layer=\"{CONV}\"]')?.dataset.drawn === '1'")
    page.screenshot(path=str(shots / "slashed-overview.png"))
    page.locator(f'canvas.neuron[data-layer="{CONV}"][data-channel="2"]').click()
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.detail)", timeout=60_000)
    assert page.evaluate("() => document.body.dataset.detail") == "ready", errors
    assert page.locator("#detail").get_attribute("data-view") == "conv"
    sec = page.locator(".conv-formula")
    y, x = int(sec.get_attribute("data-y")), int(sec.get_attribute("data-x"))
    value = float(page.locator('[data-k="value"]').first.get_attribute("data-value"))
    assert value == pytest.approx(float(hooked_outputs(live, "slashed")[CONV][0, 2, y, x]), abs=1e-5)
    page.locator(".detail").screenshot(path=str(shots / "slashed-detail.png"))
    assert not errors, errors
    page.close()
