"""The interactive API docs work offline: Swagger UI comes from local files."""

from __future__ import annotations

import pytest

from live_server import LiveServer


def test_docs_page_uses_only_local_assets(client):
    html = client.get("/docs").text
    assert "/swagger-ui/swagger-ui-bundle.js" in html and "/openapi.json" in html
    assert "cdn" not in html.lower() and "https://" not in html
    js = client.get("/swagger-ui/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


@pytest.mark.browser
def test_docs_render_in_chromium_without_network(browser):
    from convscope.server import create_app

    requests: list[str] = []
    with LiveServer(create_app(["mnist-cnn"])) as server:
        page = browser.new_page()
        try:
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server.url + "/docs")
            page.wait_for_selector(".opblock", timeout=30_000)  # the operations, drawn from /openapi.json
            paths = page.locator(".opblock-summary-path").all_inner_texts()
        finally:
            page.close()
    assert any("/api/models/{model}/trace" in p.replace("\u200b", "") for p in paths), paths
    assert all(r.startswith(server.url) for r in requests), [r for r in requests if not r.startswith(server.url)]
