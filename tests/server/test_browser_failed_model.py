"""A model that fails to load is listed in the page's picker with its reason, cannot be
picked, and the page says why, while the others are served (issue 17: one broken spec
must not take the explorer down)."""

from __future__ import annotations

import pytest

from server_helpers import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live():
    from convscope.models import load_model
    from convscope.server import Registry, create_app

    def loader(spec: str):
        if spec == "broken":
            raise RuntimeError("this factory is broken")
        return load_model(spec)

    registry = Registry(["default", "broken"], loader=loader)
    registry.load_all()  # what convscope serve does before serving
    with LiveServer(create_app(registry=registry)) as server:
        yield server


def test_the_picker_shows_the_failed_model_and_the_page_says_why(live, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live.url + "/")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
    options = page.locator("#model-select option")
    assert options.count() == 2
    broken = page.locator('#model-select option[value="broken"]')
    assert broken.inner_text() == "broken (failed to load)" and broken.is_disabled()
    assert "this factory is broken" in broken.get_attribute("title")
    assert page.locator("#model-select").input_value() == "default"
    page.wait_for_function("() => !document.getElementById('message').hidden", timeout=10_000)
    assert "model broken failed to load" in page.locator("#message").inner_text()
    assert "this factory is broken" in page.locator("#message").inner_text()
    assert page.locator("#overview canvas").count() > 10 and errors == []
    page.close()
