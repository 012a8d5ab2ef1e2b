"""The interactive API docs (Swagger UI) served from local files, so they work offline.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN; convscope promises a page
that needs no network, so the UI's files come from the ``swagger-ui-bundle`` package.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/swagger-ui"


def install(app: FastAPI) -> None:
    """Serve ``/docs`` with Swagger UI's files from the ``swagger-ui-bundle`` package."""
    from swagger_ui_bundle import swagger_ui_path

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} - API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
