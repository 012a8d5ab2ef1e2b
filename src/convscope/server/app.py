"""The explorer's HTTP API and static front end (``create_app``).

Every number the page shows comes from these endpoints, which read the cached trace
of (model, image) and the trace's detail functions. Each view module exposes
``router(ctx)`` over one :class:`~.context.ServerContext`: the network view
(:mod:`.routes_network`), background jobs (:mod:`.jobs`), training runs
(:mod:`.routes_runs`), the dataset view (:mod:`.routes_dataset`), the Why? and
look-for panels (:mod:`.routes_explain`) and the compare mode (:mod:`.routes_compare`). User mistakes
(:class:`~convscope.errors.ConvscopeError`) become 4xx answers with a one-line
``detail``; unknown models, layers and images are 404 with the name.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..errors import ConvscopeError, NotFound
from . import (
    docs,
    jobs,
    routes_compare,
    routes_dataset,
    routes_explain,
    routes_learn,
    routes_network,
    routes_runs,
    security,
)
from .context import ExplainSettings, ServerContext
from .images import TooLarge
from .registry import Registry

STATIC = Path(str(resources.files("convscope") / "server" / "static"))
VIEWS = (
    routes_network,
    jobs,
    routes_runs,
    routes_dataset,
    routes_explain,
    routes_compare,
    routes_learn,
)  # each has router(ctx)


def create_app(
    specs: Sequence[str] = ("default",),
    registry: Registry | None = None,
    token: str | None = None,
    runs: str | Path | None = None,
    data: str | None = None,
    host: str | None = None,
    port: int | None = None,
    allow_hosts: Sequence[str] = (),
    frame_ancestors: Sequence[str] = (),
    engine: Any = "local",
) -> FastAPI:
    """Build the FastAPI app serving ``specs`` (model specs as ``load_model`` takes them).

    ``token``: when given, every API call must carry it (see :mod:`convscope.server.security`).
    ``host``, ``port``: the address the app is served on (``convscope serve`` always gives
    it): only ``Host`` headers naming it, a loopback name or one of ``allow_hosts`` are
    answered. Without an address (tests, an app mounted in one's own server) the loopback
    names on any port and TestClient's ``testserver`` are.
    ``runs``: the folder of training runs the training view lists; ``data``: the dataset the
    dataset view measures every model on (default: the one each checkpoint was trained on).
    ``frame_ancestors``: origins whose pages may show the explorer in a frame (none by default;
    ``cs.explore`` names a local notebook's, see :func:`.security.security_headers`).
    ``engine``: where the dataset view's pass runs: ``"local"`` or a :class:`convscope.scale.RayEngine`
    (``convscope serve --engine ray``); the caller closes it.
    """
    ctx = ServerContext(
        registry or Registry(list(specs)),
        runs=runs,
        data=data,
        explain=ExplainSettings(data=data if data is not None else "auto"),
        engine=engine,
    )
    app = FastAPI(
        title="convscope explorer",
        version=__version__,
        description="CNN Explainer's views for any PyTorch CNN: traces, activation maps, "
        "layer arithmetic and a hyper-parameter playground.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = ctx
    app.state.registry, app.state.jobs, app.state.explain = ctx.registry, ctx.jobs, ctx.explain
    docs.install(app)  # Swagger UI from local files: the API docs work offline too
    security.install(
        app,
        token=token,
        max_body=lambda: ctx.registry.uploads.max_bytes + security.MULTIPART_SLACK,
        hosts=security.Hosts.for_address(host, port, allow_hosts),
        frame_ancestors=frame_ancestors,
    )
    app.add_exception_handler(ConvscopeError, user_error)
    app.add_exception_handler(Exception, internal_error)
    app.add_api_route("/", index, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for view in VIEWS:
        app.include_router(view.router(ctx))
    return app


async def user_error(request: Request, exc: ConvscopeError) -> JSONResponse:
    """A user's mistake as a one-line ``detail``: 404 for unknown names, 413 for too large, else 400."""
    status = 404 if isinstance(exc, NotFound) else 413 if isinstance(exc, TooLarge) else 400
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback, answered 500 in one line. Starlette sends this from
    outside every middleware, so the security headers are set here too."""
    logging.getLogger(__name__).error("%s %s failed", request.method, request.url.path, exc_info=exc)
    headers = {k.decode(): v.decode() for k, v in security.SECURITY_HEADERS}
    return JSONResponse(
        {"detail": f"internal error ({type(exc).__name__}); the server log has the traceback"},
        status_code=500,
        headers=headers,
    )


def index() -> FileResponse:
    """The explorer's page (never cached: it names the current scripts)."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})
