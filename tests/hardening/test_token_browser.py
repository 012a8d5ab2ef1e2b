"""The page in headless Chromium behind an access token: the printed ?token= address works,
every later request (fetches and <img>) carries the token, and without it the page says why."""

from __future__ import annotations

import pytest

from live_server import LiveServer

pytestmark = pytest.mark.browser
TOKEN = "browser-token-123"


@pytest.fixture(scope="module")
def live():
    from convscope.server import create_app

    app = create_app(["default"], token=TOKEN)
    app.state.registry.warm()
    with LiveServer(app) as server:
        yield server


def open_page(browser, url: str):
    page = browser.new_page()
    errors: list[str] = []
    statuses: list[tuple[int, str]] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: "/api/" in r.url and statuses.append((r.status, r.url)))
    page.goto(url)
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=60_000)
    return page, errors, statuses


def test_page_with_token_works(live, browser):
    page, errors, statuses = open_page(browser, f"{live.url}/?token={TOKEN}")
    assert page.evaluate("document.body.dataset.overview") == "ready" and not errors, errors
    assert statuses and all(s == 200 for s, _ in statuses), [x for x in statuses if x[0] != 200]
    assert page.evaluate("document.getElementById('input-preview').naturalWidth") > 0  # <img> via the cookie
    page.close()


def test_page_without_token_says_so(live, browser):
    context = browser.new_context()  # no cookie from the test above
    page = context.new_page()
    page.goto(f"{live.url}/")
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=60_000)
    assert page.evaluate("document.body.dataset.overview") == "error"
    assert "access token" in page.locator("body").inner_text()
    context.close()
