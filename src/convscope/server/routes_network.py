"""The explorer's core API: models, images, the trace, activation maps, layer arithmetic,
the softmax and the convolution playground.

Every answer is read off the cached trace of (model, image) (:class:`~.registry.Registry`)
or computed by the trace's detail functions; the JSON is shaped by :mod:`.views`,
:mod:`.detail_views` and :mod:`.playground`. Activation maps travel as compact binary
(:mod:`.encoding`), one layer and one page of channels at a time.

A layer in an address is ``{layer:path}`` here and in :mod:`.routes_explain`: PyTorch allows
'/' in module names (``block1/conv``), and the server decodes the page's ``%2F`` before routing.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from fastapi import APIRouter, Body, File, Query, UploadFile
from fastapi.responses import Response
from PIL import ImageOps
from starlette.concurrency import run_in_threadpool

from ..errors import ConvscopeError, NotFound
from ..models.checks import input_warnings
from ..models.preprocessing import open_image
from . import detail_views, playground, url_fetch, views
from .context import ServerContext
from .encoding import DTYPES, encode_array, encode_many, pack_map, shrink_maps
from .registry import TraceEntry

MAX_PAGES = 256  # layer pages one /activations request may ask for
FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504: a page with larger values is sent as float32


def page_blob(te: TraceEntry, layer: str, start: int, count: int, dtype: str, size: int | None = None) -> bytes:
    """One page of a layer's output as binary: channels ``start..start+count`` of a (C, H, W)
    output, the whole vector of a (C,) one, or any other output flattened.

    ``size``: the pixels the page draws a map in; maps twice that size or more are sent as
    float16 block means (:func:`~.encoding.shrink_maps`; the header's ``step`` and
    ``full_shape`` say so), for colour only. The header's per-channel ``ch_min``/``ch_max``
    are always those of the exact float32 values."""
    arr = te.array(layer)
    if arr.ndim == 3:
        page = arr[start : start + count]
    elif arr.ndim == 1:
        page = arr
        start, count = 0, arr.shape[0]
    else:
        page = arr.reshape(-1)
    meta = {"layer": layer, "start": start, "channels": int(arr.shape[0]), **views.channel_stats(page)}
    if size and page.ndim == 3:
        page, step = shrink_maps(page, size)
        if step > 1:
            dtype = "float16"
            meta.update(step=step, full_shape=list(arr.shape[1:]))
    if dtype == "float16" and page.size and float(np.abs(page).max()) > FLOAT16_MAX:
        dtype = "float32"  # float16 would turn these values into infinities; the header says which was sent
    return encode_array(page, dtype, **meta)


def split_pages(pages: str) -> list[str]:
    """The entries of an ``/activations?pages=`` query: joined by ``|``, a ``|`` or ``\\`` inside
    a layer's name written ``\\|`` / ``\\\\`` (the page's ``api.pageEntry``). PyTorch allows both
    in a module's name (``add_module("a|b", ...)``), and a plain split made two bad entries of one."""
    items: list[str] = []
    current: list[str] = []
    chars = iter(pages)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, None)
            if escaped is None:
                raise ConvscopeError(f"bad pages {pages!r}: it ends in a lone '\\'")
            current.append(escaped)
        elif ch == "|":
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return items


def parse_page(item: str) -> tuple[str, int, int, str, int | None]:
    """``LAYER:START:COUNT:DTYPE[:SIZE]`` (the layer name may itself hold colons); SIZE: the
    pixels the page draws a map in (see :func:`page_blob`)."""
    parts = item.rsplit(":", 4)
    size = None
    if len(parts) == 5 and parts[3] in DTYPES and parts[4].isdigit():
        item, size = item.rsplit(":", 1)[0], int(parts[4])
        if not 1 <= size <= 4096:
            raise ConvscopeError(f"bad page {item!r}: 1 <= size <= 4096")
    try:
        layer, start, count, dtype = item.rsplit(":", 3)
        start_i, count_i = int(start), int(count)
    except ValueError:
        raise ConvscopeError(f"bad page {item!r}: expected LAYER:START:COUNT:DTYPE[:SIZE]") from None
    if start_i < 0 or not 1 <= count_i <= 4096 or dtype not in DTYPES:
        raise ConvscopeError(f"bad page {item!r}: start >= 0, 1 <= count <= 4096, dtype float16 or float32")
    return layer, start_i, count_i, dtype, size


def router(ctx: ServerContext) -> APIRouter:
    """The ``/api/models`` endpoints of the explorer's main view."""
    reg = ctx.registry
    r = APIRouter()

    @r.get("/api/models", summary="The models this server shows")
    def list_models() -> dict[str, Any]:
        return {"models": reg.describe(), "default": reg.default}

    @r.get("/api/models/{model}", summary="A model's input, classes and preprocessing")
    def model_info(model: str) -> dict[str, Any]:
        e = reg.entry(model)
        m = e.model
        c, h, w = m.input_shape
        return {
            "name": e.name,
            "spec": e.spec,
            "input_shape": [c, h, w],
            "channels": c,
            "classes": list(m.classes) if m.classes is not None else None,
            "preprocessing": m.preprocessing.to_dict(),
            "untrained": bool(m.meta.get("untrained")),
            "parameters": int(sum(p.numel() for p in m.net.parameters())),
            "samples": [s.describe() for s in e.samples],
        }

    @r.get("/api/models/{model}/samples", summary="Built-in sample images for this model")
    def samples(model: str) -> list[dict[str, Any]]:
        return [s.describe() for s in reg.entry(model).samples]

    @r.post("/api/models/{model}/images", summary="Upload an image (any format Pillow reads)")
    async def upload(model: str, file: UploadFile = File(...)) -> dict[str, Any]:
        reg.entry(model)
        data = await file.read(reg.uploads.max_bytes + 1)
        return {"image": await run_in_threadpool(store, model, data)}

    def store(model: str, data: bytes) -> str:  # decoding and preprocessing are CPU work: off the event loop
        image_id = reg.uploads.add(data)
        reg.input_batch(model, image_id)  # fails now, clearly, if the model cannot take it
        return image_id

    @r.post(
        "/api/models/{model}/images/url",
        summary="Upload an image from a URL the server fetches (public http(s) addresses only, no redirects)",
    )
    async def upload_url(model: str, url: str = Body(..., embed=True, max_length=2048)) -> dict[str, Any]:
        reg.entry(model)
        data = await run_in_threadpool(url_fetch.fetch, url, reg.uploads.max_bytes)
        return {"image": await run_in_threadpool(store, model, data)}

    @r.get("/api/models/{model}/images/{image}.png", summary="The pixels the network sees, as PNG")
    def image_png(model: str, image: str) -> Response:
        cache = "no-store" if image.startswith("upload-") else "max-age=3600"
        return Response(reg.display_png(model, image), media_type="image/png", headers={"Cache-Control": cache})

    @r.get("/api/models/{model}/trace", summary="Every layer of the forward pass, with ranges and prediction")
    def trace(model: str, image: str = Query("sample-0")) -> dict[str, Any]:
        te = reg.trace(model, image)
        if te.overview is None:
            te.overview = views.trace_json(te)
            te.overview["warnings"] = input_warnings(te.model, reg.pixels(model, image))
        return te.overview

    @r.post(
        "/api/models/{model}/images/{image}/inverted",
        summary="Upload the image's negative (the fix for a dark-on-light digit into a white-on-black digit net)",
    )
    def inverted(model: str, image: str) -> dict[str, Any]:
        reg.entry(model)
        negative = ImageOps.invert(open_image(reg.pixels(model, image)).convert("RGB"))
        if reg.entry(model).model.preprocessing.channels == 1:
            negative = negative.convert("L")
        buffer = io.BytesIO()
        negative.save(buffer, format="PNG")
        image_id = reg.uploads.add(buffer.getvalue())
        reg.input_batch(model, image_id)
        return {"image": image_id}

    @r.get("/api/models/{model}/summary", summary="Layers, shapes, parameters and multiply-adds")
    def summary(model: str, image: str = Query("sample-0")) -> dict[str, Any]:
        return views.summary_json(reg.trace(model, image))

    @r.get(
        "/api/models/{model}/layers/{layer:path}/activations",
        summary="A page of a layer's output channels as binary float16/float32",
        response_class=Response,
    )
    def activations(
        model: str,
        layer: str,
        image: str = Query("sample-0"),
        start: int = Query(0, ge=0),
        count: int = Query(64, ge=1, le=4096),
        dtype: str = Query("float16", pattern="^float(16|32)$"),
    ) -> Response:
        blob = page_blob(reg.trace(model, image), layer, start, count, dtype)
        return Response(blob, media_type="application/octet-stream")

    @r.get(
        "/api/models/{model}/activations",
        response_class=Response,
        summary="Pages of several layers in one binary response (see encoding.encode_many)",
    )
    def many_activations(
        model: str,
        image: str = Query("sample-0"),
        pages: str = Query(
            ...,
            description="LAYER:START:COUNT:DTYPE[:SIZE] entries joined by '|'; a '|' or '\\' in LAYER as '\\|' or '\\\\'",
            max_length=20000,
        ),
    ) -> Response:
        te = reg.trace(model, image)
        blobs = [page_blob(te, *parse_page(item)) for item in split_pages(pages)[:MAX_PAGES]]
        return Response(encode_many(blobs), media_type="application/octet-stream")

    @r.get(
        "/api/models/{model}/layers/{layer:path}/detail",
        summary="The arithmetic behind one output (conv, pool, activation, batchnorm, linear, softmax)",
    )
    def detail(
        model: str,
        layer: str,
        image: str = Query("sample-0"),
        channel: int = Query(0, ge=0),
        y: int | None = Query(None, ge=0),
        x: int | None = Query(None, ge=0),
        start: int = Query(0, ge=0),
        count: int = Query(8, ge=1, le=64),
        maps: bool = True,
    ) -> dict[str, Any]:
        te = reg.trace(model, image)
        return detail_views.detail(te, layer, channel=channel, y=y, x=x, start=start, count=count, maps=maps)

    @r.get("/api/models/{model}/softmax", summary="Logits, their exponentials, the sum and the probabilities")
    def softmax(model: str, image: str = Query("sample-0"), channel: int | None = Query(None, ge=0)) -> dict[str, Any]:
        return detail_views.softmax_view(reg.trace(model, image), channel)

    @r.get(
        "/api/models/{model}/playground",
        summary="Validate conv hyper-parameters and convolve a crop of a real activation map",
    )
    def play(
        model: str,
        layer: str,
        image: str = Query("sample-0"),
        channel: int = Query(0, ge=0),
        crop: int = 7,
        kernel: int = 3,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        kernel_type: str = "mean",
    ) -> dict[str, Any]:
        arr = reg.trace(model, image).array(layer)
        if arr.ndim != 3:
            raise ConvscopeError(f"layer {layer!r} has no 2-D maps (output shape {list(arr.shape)})")
        if channel >= arr.shape[0]:
            raise NotFound(f"layer {layer!r} has {arr.shape[0]} channels, no channel {channel}")
        st = playground.Settings(crop, kernel, padding, stride, dilation, kernel_type)
        return {"layer": layer, "channel": channel, "map": pack_map(arr[channel]), **playground.run(arr[channel], st)}

    return r
