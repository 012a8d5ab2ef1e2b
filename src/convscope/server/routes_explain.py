"""The API behind the "Why?" and "What does it look for?" panels, and the jobs they start.

Why? (attribution, :mod:`.explain_views`):

- ``GET  /api/explain/methods``: every method with its label, family and whether it takes a layer;
- ``GET  /api/models/{model}/explain/options?image=``: spatial layers (and the default one),
  classes and the predicted class for the panel's menus;
- ``GET  /api/models/{model}/explain?image=&method=&layer=&target=&metrics=``: run one method
  now (the heatmap as float data and PNG overlay, deletion / insertion AUC, confidence change);
- ``POST`` the same address: the same work as a background job (the page shows progress);
- ``POST /api/models/{model}/sanity?image=&method=a,b&layer=&target=&max_steps=``: the
  cascading-randomisation sanity check as a job (table and figure).

What does it look for? (features, :mod:`.feature_views`):

- ``GET  /api/models/{model}/features``: the configured dataset and the default steps;
- ``GET  /api/models/{model}/layers/{layer}/kernels?channel=``;
- ``GET  /api/models/{model}/layers/{layer}/visualization?channel=&steps=``: the cached
  picture, or ``{"cached": false}``; ``POST``: compute it as a job (then cached on disk);
- ``POST /api/models/{model}/layers/{layer}/examples?channel=&k=``: top dataset examples (job).

Jobs (:mod:`.jobs`): ``GET /api/jobs/{id}`` (progress, then the result), ``DELETE`` cancels.

Requests are checked before a job starts, so an unknown method, layer or channel is a
404 and a bad value a 400 at once, never a failed job. All endpoints are plain ``def``:
FastAPI runs them in its thread pool, so nothing heavy runs on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ..errors import ConvscopeError
from ..explain import method_info
from . import explain_views, feature_views
from .context import ServerContext


@dataclass
class AttributionQuery:
    """Which attribution of which prediction, as ``/explain`` (GET and POST) and ``/sanity`` take
    it, declared once: FastAPI reads the fields of a ``Depends()`` dataclass as the path
    parameter ``model`` and query parameters, and OpenAPI lists them on every route as before."""

    model: str
    image: Annotated[str, Query()] = "sample-0"
    method: Annotated[str, Query()] = "gradcam"
    layer: Annotated[str | None, Query()] = None
    target: Annotated[int | None, Query()] = None


@dataclass
class ExplainQuery(AttributionQuery):
    """``/explain``'s: an attribution, and whether to measure it (deletion / insertion AUC)."""

    metrics: Annotated[bool, Query()] = True


@dataclass
class SanityQuery(AttributionQuery):
    """``/sanity``'s: the attribution (``method`` may name several, comma-separated) and how many
    layers to randomise at most."""

    max_steps: Annotated[int | None, Query(ge=1)] = None


def router(ctx: ServerContext) -> APIRouter:
    """The panels' routes. Settings are read from ``ctx.explain`` per request (tests and
    embedding code may change ``data`` or ``cache_dir`` after creation); long work goes
    to ``ctx.jobs``."""
    registry, settings, jobs = ctx.registry, ctx.explain, ctx.jobs
    explainers = explain_views.Explainers()
    examples = feature_views.Examples()
    r = APIRouter(tags=["why", "look-for"])

    def methods_list(method: str) -> list[str]:
        names = [m for m in method.split(",") if m.strip()]
        if not names:
            raise ConvscopeError("give at least one method")
        return names

    # -- Why? ---------------------------------------------------------------------------
    @r.get("/api/explain/methods", summary="Attribution methods for the Why? panel")
    def methods() -> dict[str, Any]:
        return {"methods": method_info(), "default": "gradcam"}

    @r.get(
        "/api/models/{model}/explain/options",
        summary="Spatial layers (and the default), classes and the prediction for the Why? panel",
    )
    def explain_options(model: str, image: str = Query("sample-0")) -> dict[str, Any]:
        return explain_views.options_json(registry.trace(model, image))

    @r.get("/api/models/{model}/explain", summary="Explain a prediction: heatmap, overlay and metrics")
    def explain_now(q: Annotated[ExplainQuery, Depends()]) -> dict[str, Any]:
        te = registry.trace(q.model, q.image)
        return explain_views.attribution_json(te, explainers, q.method, q.layer, q.target, q.metrics)

    @r.post("/api/models/{model}/explain", summary="The same as GET, as a background job")
    def explain_job(q: Annotated[ExplainQuery, Depends()]) -> dict[str, Any]:
        te = registry.trace(q.model, q.image)
        cls, layer, target = explain_views.check_request(te, q.method, q.layer, q.target)
        job = jobs.submit(
            "explain",
            lambda progress: explain_views.attribution_json(
                te, explainers, cls.name, layer, target, q.metrics, progress
            ),
            key=("explain", q.model, q.image, cls.name, layer, target, q.metrics),
        )
        return job.describe()

    @r.post(
        "/api/models/{model}/sanity",
        summary="Model-parameter randomisation sanity check (Adebayo et al. 2018) as a job",
    )
    def sanity_job(q: Annotated[SanityQuery, Depends()]) -> dict[str, Any]:
        te = registry.trace(q.model, q.image)
        names, layer, target = [], q.layer, q.target
        for m in methods_list(q.method):
            cls, _, target = explain_views.check_request(te, m, layer, target)
            names.append(cls.name)
        job = jobs.submit(
            "sanity",
            lambda progress: explain_views.sanity_json(te, names, layer, target, q.max_steps, progress),
            key=("sanity", q.model, q.image, tuple(names), layer, target, q.max_steps),
        )
        return job.describe()

    # -- What does it look for? -----------------------------------------------------------
    @r.get("/api/models/{model}/features", summary="What the look-for panel offers for this model")
    def features_info(model: str) -> dict[str, Any]:
        m = registry.entry(model).model
        choice = feature_views.data_choice(m, settings.data, settings.split)
        return {
            "model": model,
            "dataset": choice.name,
            "split": (choice.split or None) if choice.name else None,
            "steps": settings.steps,
        }

    @r.get("/api/models/{model}/layers/{layer:path}/kernels", summary="One channel's kernels, values and picture")
    def channel_kernels(model: str, layer: str, channel: int = Query(0, ge=0)) -> dict[str, Any]:
        return feature_views.kernels_json(registry.entry(model).model, layer, channel)

    @r.get(
        "/api/models/{model}/layers/{layer:path}/visualization",
        summary="A channel's cached activation-maximisation picture, or {cached: false}",
    )
    def visualization(
        model: str, layer: str, channel: int = Query(0, ge=0), steps: int | None = Query(None, ge=1, le=4096)
    ) -> dict[str, Any]:
        return feature_views.visualization_json(
            registry.entry(model).model, layer, channel, steps or settings.steps, settings.cache(), compute=False
        )

    @r.post(
        "/api/models/{model}/layers/{layer:path}/visualization",
        summary="Compute a channel's activation-maximisation picture as a job (cached on disk)",
    )
    def visualization_job(
        model: str, layer: str, channel: int = Query(0, ge=0), steps: int | None = Query(None, ge=1, le=4096)
    ) -> dict[str, Any]:
        m = registry.entry(model).model
        name = feature_views.check_unit(m, layer, channel)
        steps = steps or settings.steps
        cache = settings.cache()
        job = jobs.submit(
            "visualization",
            lambda progress: feature_views.visualization_json(m, name, channel, steps, cache, progress),
            key=("visualization", model, name, channel, steps),
        )
        return job.describe()

    @r.post(
        "/api/models/{model}/layers/{layer:path}/examples",
        summary="A channel's top-activating dataset examples as a job",
    )
    def examples_job(
        model: str, layer: str, channel: int = Query(0, ge=0), k: int = Query(8, ge=1, le=64)
    ) -> dict[str, Any]:
        m = registry.entry(model).model
        name = feature_views.check_unit(m, layer, channel)
        choice = feature_views.data_choice(m, settings.data, settings.split)
        if choice.name is None:
            raise ConvscopeError(f"no dataset is configured for model {model!r}: start the explorer with --data NAME")
        job = jobs.submit(
            "examples",
            lambda progress: examples.channel_json(m, name, channel, k, choice, progress),
            key=("examples", model, name, channel, k),
        )
        return job.describe()

    return r
