"""The explorer's HTTP API and static front end (``create_app``).

Every number the page shows comes from these endpoints, which read the cached trace
of (model, image) and the trace's detail functions. Activation maps travel as compact
binary (see :mod:`convscope.server.encoding`), one layer and one page of channels at a
time. User mistakes (:class:`~convscope.errors.ConvscopeError`) become 4xx answers with
a one-line ``detail``; unknown models, layers and images are 404 with the name.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import ConvscopeError, NotFound
from . import detail_views, docs, playground, security, views
from .encoding import encode_array, encode_many, pack_map
from .images import TooLarge
from .registry import Registry

STATIC = Path(str(resources.files("convscope") / "server" / "static"))


def create_app(specs: Sequence[str] = ("default",), registry: Registry | None = None,
               token: str | None = None, runs: str | Path | None = None, data: str | None = None,
               host: str | None = None, port: int | None = None, allow_hosts: Sequence[str] = ()) -> FastAPI:
    """Build the FastAPI app serving ``specs`` (model specs as ``load_model`` takes them).

    ``token``: when given, every API call must carry it (see :mod:`convscope.server.security`).
    ``host``, ``port``: the address the app is served on (``convscope serve`` always gives
    it): only ``Host`` headers naming it, a loopback name or one of ``allow_hosts`` are
    answered. Without an address (tests, an app mounted in one's own server) the loopback
    names on any port and TestClient's ``testserver`` are.
    ``runs``: the folder of training runs the training view lists; ``data``: the dataset the
    dataset view measures every model on (default: the one each checkpoint was trained on).
    """
    reg = registry or Registry(list(specs))
    app = FastAPI(title="convscope explorer", version=__version__,
                  description="CNN Explainer's views for any PyTorch CNN: traces, activation maps, "
                              "layer arithmetic and a hyper-parameter playground.",
                  docs_url=None, redoc_url=None)
    docs.install(app)  # Swagger UI from local files: the API docs work offline too
    app.state.registry = reg
    security.install(app, token=token, max_body=lambda: reg.uploads.max_bytes + security.MULTIPART_SLACK,
                     hosts=security.Hosts.for_address(host, port, allow_hosts))

    @app.exception_handler(ConvscopeError)
    async def _user_error(request: Request, exc: ConvscopeError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 413 if isinstance(exc, TooLarge) else 400
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/models", summary="The models this server shows")
    def list_models() -> dict[str, Any]:
        return {"models": [{"name": e.name, "spec": e.spec, "loaded": e.loaded} for e in reg.models.values()],
                "default": next(iter(reg.models))}

    @app.get("/api/models/{model}", summary="A model's input, classes and preprocessing")
    def model_info(model: str) -> dict[str, Any]:
        e = reg.entry(model)
        m = e.model
        c, h, w = m.input_shape
        return {"name": e.name, "spec": e.spec, "input_shape": [c, h, w], "channels": c,
                "classes": list(m.classes) if m.classes is not None else None,
                "preprocessing": m.preprocessing.to_dict(), "untrained": bool(m.meta.get("untrained")),
                "parameters": int(sum(p.numel() for p in m.net.parameters())),
                "samples": [s.describe() for s in e.samples]}

    @app.get("/api/models/{model}/samples", summary="Built-in sample images for this model")
    def samples(model: str) -> list[dict[str, Any]]:
        return [s.describe() for s in reg.entry(model).samples]

    @app.post("/api/models/{model}/images", summary="Upload an image (any format Pillow reads)")
    async def upload(model: str, file: UploadFile = File(...)) -> dict[str, Any]:
        reg.entry(model)
        data = await file.read(reg.uploads.max_bytes + 1)

        def store() -> str:  # decoding and preprocessing are CPU work: off the event loop
            image_id = reg.uploads.add(data)
            reg.input_batch(model, image_id)  # fails now, clearly, if the model cannot take it
            return image_id

        return {"image": await run_in_threadpool(store)}

    @app.get("/api/models/{model}/images/{image}.png", summary="The pixels the network sees, as PNG")
    def image_png(model: str, image: str) -> Response:
        cache = "no-store" if image.startswith("upload-") else "max-age=3600"
        return Response(reg.display_png(model, image), media_type="image/png", headers={"Cache-Control": cache})

    @app.get("/api/models/{model}/trace", summary="Every layer of the forward pass, with ranges and prediction")
    def trace(model: str, image: str = Query("sample-0")) -> dict[str, Any]:
        te = reg.trace(model, image)
        if "trace_json" not in te.cache:
            te.cache["trace_json"] = views.trace_json(te)
        return te.cache["trace_json"]

    @app.get("/api/models/{model}/summary", summary="Layers, shapes, parameters and multiply-adds")
    def summary(model: str, image: str = Query("sample-0")) -> dict[str, Any]:
        return views.summary_json(reg.trace(model, image))

    def page_blob(te, layer: str, start: int, count: int, dtype: str) -> bytes:
        arr = te.array(layer)
        if arr.ndim == 3:
            page = arr[start:start + count]
        elif arr.ndim == 1:
            page = arr
            start, count = 0, arr.shape[0]
        else:
            page = arr.reshape(-1)
        return encode_array(page, dtype, layer=layer, start=start, channels=int(arr.shape[0]),
                            **views.channel_stats(page))

    @app.get("/api/models/{model}/layers/{layer}/activations",
             summary="A page of a layer's output channels as binary float16/float32",
             response_class=Response)
    def activations(model: str, layer: str, image: str = Query("sample-0"), start: int = Query(0, ge=0),
                    count: int = Query(64, ge=1, le=4096), dtype: str = Query("float16", pattern="^float(16|32)$")
                    ) -> Response:
        blob = page_blob(reg.trace(model, image), layer, start, count, dtype)
        return Response(blob, media_type="application/octet-stream")

    @app.get("/api/models/{model}/activations", response_class=Response,
             summary="Pages of several layers in one binary response (see encoding.encode_many)")
    def many_activations(model: str, image: str = Query("sample-0"),
                         pages: str = Query(..., description="LAYER:START:COUNT:DTYPE entries joined by '|'",
                                            max_length=20000)) -> Response:
        te = reg.trace(model, image)
        blobs = []
        for item in pages.split("|")[:256]:
            try:
                layer, start, count, dtype = item.rsplit(":", 3)
                start_i, count_i = int(start), int(count)
            except ValueError:
                raise ConvscopeError(f"bad page {item!r}: expected LAYER:START:COUNT:DTYPE") from None
            if start_i < 0 or not 1 <= count_i <= 4096 or dtype not in ("float16", "float32"):
                raise ConvscopeError(f"bad page {item!r}: start >= 0, 1 <= count <= 4096, dtype float16 or float32")
            blobs.append(page_blob(te, layer, start_i, count_i, dtype))
        return Response(encode_many(blobs), media_type="application/octet-stream")

    @app.get("/api/models/{model}/layers/{layer}/detail",
             summary="The arithmetic behind one output (conv, pool, activation, batchnorm, linear, softmax)")
    def detail(model: str, layer: str, image: str = Query("sample-0"), channel: int = Query(0, ge=0),
               y: int | None = Query(None, ge=0), x: int | None = Query(None, ge=0),
               start: int = Query(0, ge=0), count: int = Query(8, ge=1, le=64), maps: bool = True
               ) -> dict[str, Any]:
        te = reg.trace(model, image)
        return detail_views.detail(te, layer, channel=channel, y=y, x=x, start=start, count=count, maps=maps)

    @app.get("/api/models/{model}/softmax", summary="Logits, their exponentials, the sum and the probabilities")
    def softmax(model: str, image: str = Query("sample-0"), channel: int | None = Query(None, ge=0)
                ) -> dict[str, Any]:
        return detail_views.softmax_view(reg.trace(model, image), channel)

    @app.get("/api/models/{model}/playground",
             summary="Validate conv hyper-parameters and convolve a crop of a real activation map")
    def play(model: str, layer: str, image: str = Query("sample-0"), channel: int = Query(0, ge=0),
             crop: int = 7, kernel: int = 3, padding: int = 0, stride: int = 1, dilation: int = 1,
             kernel_type: str = "mean") -> dict[str, Any]:
        te = reg.trace(model, image)
        arr = te.array(layer)
        if arr.ndim != 3:
            raise ConvscopeError(f"layer {layer!r} has no 2-D maps (output shape {list(arr.shape)})")
        if channel >= arr.shape[0]:
            raise NotFound(f"layer {layer!r} has {arr.shape[0]} channels, no channel {channel}")
        st = playground.Settings(crop, kernel, padding, stride, dilation, kernel_type)
        return {"layer": layer, "channel": channel, "map": pack_map(arr[channel]), **playground.run(arr[channel], st)}

    from . import jobs, routes_dataset, routes_explain, routes_runs  # the training, dataset and explain views

    app.state.jobs = jobs.JobManager()  # background work of every view, one pool
    app.include_router(jobs.router(app.state.jobs))
    app.include_router(routes_runs.router(runs))
    app.include_router(routes_dataset.router(reg, app.state.jobs, data))
    routes_explain.install(app, reg, data)  # the Why? and What does it look for? panels
    return app
