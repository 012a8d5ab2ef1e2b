"""The softmax view of a model with more classes than it lists one by one, in Chromium.

The server sends the ten most likely classes as rows and the others summed as ``rest``;
the page draws them as one "N other classes" row. That row once called a helper
detail.js did not import, so the view of every model with more than ten classes threw
(found by eslint's no-undef). The probabilities shown must add up to one.
"""

from __future__ import annotations

import pytest
import torch

from server_helpers import LiveServer

pytestmark = pytest.mark.browser
CLASSES = [f"class {i}" for i in range(13)]


def thirteen_classes():
    from convscope.models import Model, Preprocessing

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(2 * 26 * 26, len(CLASSES))
    )
    return Model(net.eval(), classes=CLASSES, preprocessing=Preprocessing(size=(28, 28), channels=1), name="thirteen")


@pytest.fixture(scope="module")
def live():
    from convscope.server import Registry, create_app

    with LiveServer(create_app(registry=Registry(["thirteen"], loader=lambda spec: thirteen_classes()))) as server:
        yield server


def test_softmax_view_sums_the_classes_it_does_not_list(live, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/?model=thirteen")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
    page.locator(".score").first.click()
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.detail)", timeout=60_000)
    assert page.evaluate("document.body.dataset.detail") == "ready", page.locator("#message").inner_text()
    assert errors == []
    listed = [float(e.get_attribute("data-value")) for e in page.locator('#detail [data-k="prob"]').all()]
    rest = page.locator("#detail tr.rest")
    assert len(listed) == 10
    assert rest.locator("td").first.inner_text() == "3 other classes"
    rest_pct = float(rest.locator("td").last.inner_text().rstrip("%"))
    assert sum(listed) * 100 + rest_pct == pytest.approx(100, abs=0.01)
    page.close()
