"""The explorer's compare mode: two forward passes side by side (:mod:`convscope.compare`).

One pair of sides, A = (``model``, ``image``) and B = (``model_b``, ``image_b``), each
defaulting to A's, covers both comparisons:

- two images through one model: ``?model=M&image=sample-3&image_b=sample-8``;
- one image through two models: ``?model=A&model_b=B&image=sample-3`` (layers matched by name).

Endpoints:

- ``GET /api/compare``: per-layer distances (relative L2, cosine, max |a-b|), the layers
  that could not be compared, and each compared layer's shape, kind and the range of its
  difference (the page's diverging scale);
- ``GET /api/compare/diff?layer=&start=&count=&dtype=``: a page of a layer's a - b as the
  overview's binary pages (:mod:`.encoding`); A's and B's own maps are the overview's
  ``/api/models/{model}/activations`` pages;
- ``GET /api/compare/explain?method=&layer=&target=``: both attributions on one colour
  scale, as PNG overlays, with the difference and its distances.

Both traces are the registry's cached ones, so a compare view costs no forward pass the
overview has not already made.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from ..compare import Comparison, compare, compare_attributions
from ..errors import ConvscopeError
from ..render.heatmap import heatmap_rgb, overlay
from .context import ServerContext
from .explain_views import check_method, data_url
from .registry import Registry, TraceEntry
from .routes_network import page_blob


class _Sides:
    """The two trace entries of one compare request."""

    def __init__(self, reg: Registry, model: str, image: str, model_b: str | None, image_b: str | None) -> None:
        self.a = reg.trace(model, image)
        self.b = reg.trace(model_b or model, image_b or image)
        self.labels = _labels(self.a, self.b)

    def comparison(self) -> Comparison:
        return compare(self.a.trace, self.b.trace, self.labels)


class _Difference:
    """What :func:`~.routes_network.page_blob` reads off a trace entry (``array(layer)``), for a - b."""

    def __init__(self, c: Comparison, a: TraceEntry, b: TraceEntry) -> None:
        self.c, self.a, self.b = c, a, b

    def array(self, layer: str) -> np.ndarray:
        self.c[layer]  # a layer that was not compared (other shapes, one side only) is a NotFound
        return self.a.array(layer) - self.b.array(layer)


def _labels(a: TraceEntry, b: TraceEntry) -> tuple[str, str]:
    if a.model_name == b.model_name:
        return a.image_id, b.image_id
    if a.image_id == b.image_id:
        return a.model_name, b.model_name
    return f"{a.model_name}/{a.image_id}", f"{b.model_name}/{b.image_id}"


def _range(*arrays: np.ndarray) -> dict[str, float]:
    if not all(a.size for a in arrays):
        return {"min": 0.0, "max": 0.0}
    return {"min": min(float(a.min()) for a in arrays), "max": max(float(a.max()) for a in arrays)}


def comparison_json(sides: _Sides) -> dict[str, Any]:
    """Comparison.to_json, plus per layer the value range over A and B and that of a - b (the page's scales)."""
    c = sides.comparison()
    out = c.to_json()
    for row in out["layers"]:
        a, b = sides.a.array(row["name"]), sides.b.array(row["name"])
        row["range"] = _range(a, b)  # one colour range for A's and B's maps
        row["diff"] = _range(a - b)
    out["models"] = {"a": sides.a.model_name, "b": sides.b.model_name}
    out["images"] = {"a": sides.a.image_id, "b": sides.b.image_id}
    return out


def router(ctx: ServerContext) -> APIRouter:
    """The ``/api/compare`` endpoints."""
    reg = ctx.registry
    r = APIRouter()

    @r.get("/api/compare", summary="Per-layer distances of two forward passes (two images or two models)")
    def distances(
        model: str,
        image: str = Query("sample-0"),
        model_b: str | None = Query(None),
        image_b: str | None = Query(None),
    ) -> dict[str, Any]:
        return comparison_json(_Sides(reg, model, image, model_b, image_b))

    @r.get("/api/compare/diff", response_class=Response, summary="A page of one layer's a - b as binary")
    def diff(
        model: str,
        layer: str,
        image: str = Query("sample-0"),
        model_b: str | None = Query(None),
        image_b: str | None = Query(None),
        start: int = Query(0, ge=0),
        count: int = Query(64, ge=1, le=4096),
        dtype: str = Query("float32", pattern="^float(16|32)$"),
    ) -> Response:
        sides = _Sides(reg, model, image, model_b, image_b)
        blob = page_blob(_Difference(sides.comparison(), sides.a, sides.b), layer, start, count, dtype)
        return Response(blob, media_type="application/octet-stream")

    @r.get("/api/compare/explain", summary="Both sides' attributions on one colour scale, and their difference")
    def explain(
        model: str,
        image: str = Query("sample-0"),
        model_b: str | None = Query(None),
        image_b: str | None = Query(None),
        method: str = Query("gradcam"),
        layer: str | None = None,
        target: int | None = Query(None, ge=0),
    ) -> dict[str, Any]:
        name = check_method(method).name
        sides = _Sides(reg, model, image, model_b, image_b)
        a, b = sides.a, sides.b
        for te in (a, b):
            if target is not None and te.model.classes is not None and target >= len(te.model.classes):
                raise ConvscopeError(
                    f"target {target} is out of range: {te.model_name} has {len(te.model.classes)} classes"
                )
        pair = compare_attributions(a.model, a.x, b.model, b.x, name, target=target, layer=layer)
        scale = "diverging" if min(float(pair.a.min()), float(pair.b.min())) < 0 else "heat"
        pictures = [
            overlay(te.model.to_display(te.x[0]), m[0], scale=scale, top=pair.top)
            for te, m in ((a, pair.a), (b, pair.b))
        ]
        return {
            **pair.to_json(),
            "labels": list(sides.labels),
            "scale": scale,
            "overlays": {"a": data_url(pictures[0]), "b": data_url(pictures[1])},
            "diff": data_url(heatmap_rgb(pair.diff[0], "diverging", top=float(np.abs(pair.diff[0]).max()) or 1.0)),
        }

    return r
