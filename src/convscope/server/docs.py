"""The interactive API docs (Swagger UI) served from local files, so they work offline.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN; convscope promises a page
that needs no network, so the UI's files come from the ``swagger-ui-bundle`` package.
The explorer's Content-Security-Policy (:mod:`convscope.server.security`) allows no
inline script, so the page is plain HTML and Swagger UI is started by a served script
(:data:`INIT_JS`) that reads the OpenAPI address from the page.
"""

from __future__ import annotations

from html import escape

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = "/swagger-ui"
INIT = f"{ASSETS}/convscope-init.js"

# FastAPI's own Swagger UI settings (fastapi.openapi.docs.swagger_ui_default_parameters)
INIT_JS = """// Start Swagger UI on /docs (a file, not an inline script: the explorer's CSP allows none).
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" href="{assets}/favicon-32x32.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{init}"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Serve ``/docs`` with Swagger UI's files from the ``swagger-ui-bundle`` package."""
    from swagger_ui_bundle import swagger_ui_path

    @app.get(INIT, include_in_schema=False)  # before the mount below, which would shadow it
    def init_js() -> Response:
        return Response(INIT_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=3600"})

    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(
            PAGE.format(
                assets=ASSETS, init=INIT, title=escape(f"{app.title} - API"), openapi=escape(app.openapi_url or "")
            )
        )
