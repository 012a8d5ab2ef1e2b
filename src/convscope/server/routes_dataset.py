"""The dataset view's API: one cached pass of a model over a dataset split, and what is read off it.

For each model the dataset is ``convscope serve --data NAME`` when given, else the one
its checkpoint says it was trained on (with the same split seed, so ``test`` is really
held out). The pass (:func:`convscope.analysis.cached_pass`, cached on disk; on Ray's actors
with ``convscope serve --engine ray``, its progress per block and a cancel killing the actors) and the
embeddings run as background jobs (:mod:`convscope.server.jobs`) whose progress the page
polls at ``/api/jobs/{id}``; everything else is read off the finished pass:
accuracy, per-class accuracy and the confusion matrix, the images behind a cell, the
misclassified gallery, the "True / Pred" grid, and the 2-D embedding of the penultimate
features.

Dataset images can be opened in the explorer: ``data-<split>-<row>`` is an image id the
registry resolves through :meth:`DatasetStore.pixels`, giving the network exactly the
pixels the pass saw (the split conformed to the model's channels and size).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from ..analysis import (
    METHODS,
    DatasetPass,
    cached_embedding,
    cached_pass,
    cell_rows,
    evaluate,
    misclassified,
    mistakes_json,
    random_rows,
)
from ..data.base import ImageDataset
from ..data.registry import recorded_dataset
from ..errors import ConvscopeError, NotFound
from .context import ServerContext
from .jobs import JobManager
from .registry import Registry

SPLITS = ("train", "val", "test")
IMAGE_ID = re.compile(r"^data-(train|val|test)-(\d+)$")
PREFIX = "data-"
MAX_SEED = 2**32 - 1  # what NumPy's and scikit-learn's random states take


def seed_query() -> Any:
    """The ``seed`` parameter, checked at the edge: a negative or huge seed is 422, not a failed job."""
    return Query(0, ge=0, le=MAX_SEED, description=f"random seed, 0 to {MAX_SEED}")


def image_id(split: str, row: int) -> str:
    """The explorer's id of row ``row`` of a dataset split."""
    return f"{PREFIX}{split}-{int(row)}"


class DatasetStore:
    """Per model: which dataset, its splits conformed to the model, and the finished passes."""

    def __init__(
        self,
        registry: Registry,
        jobs: JobManager,
        data: str | None = None,
        split_seed: int | None = None,
        engine: Any = "local",
    ) -> None:
        self.registry, self.jobs, self.engine = registry, jobs, engine
        self.data, self.split_seed = data, split_seed
        self._splits: dict[tuple[str, int], Any] = {}
        self._conformed: dict[tuple[str, str], ImageDataset] = {}
        self._passes: dict[tuple[str, str], DatasetPass] = {}
        self._embeddings: dict[tuple[str, str, str, int], Any] = {}
        self._lock = threading.Lock()

    # -- which data ------------------------------------------------------------------
    def dataset_for(self, model: str) -> tuple[str, int]:
        """(dataset name, split seed) for a model: --data, else the dataset its checkpoint records."""
        meta = self.registry.entry(model).model.meta or {}
        recorded = meta.get("dataset") if isinstance(meta.get("dataset"), dict) else {}
        name = self.data or recorded_dataset(meta, f"model {model!r}")
        if not name:
            raise ConvscopeError(
                f"model {model!r} does not say which data it was trained on: "
                "start convscope serve with --data NAME (e.g. --data digits)"
            )
        seed = (
            self.split_seed
            if self.split_seed is not None
            else (int(recorded.get("split_seed") or 0) if recorded.get("name") == name else 0)
        )
        return name, seed

    def split(self, model: str, split: str) -> ImageDataset:
        """The split's images conformed to the model's channels and size (what the pass sees)."""
        if split not in SPLITS:
            raise NotFound(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        key = (model, split)
        with self._lock:
            if key in self._conformed:
                return self._conformed[key]
        from ..data import load_splits

        name, seed = self.dataset_for(model)
        with self._lock:
            splits = self._splits.get((name, seed))
        if splits is None:
            splits = load_splits(name, seed=seed, download=False, progress=False)
            with self._lock:
                self._splits[(name, seed)] = splits
        data = splits[split].conform(self.registry.entry(model).model.preprocessing)
        with self._lock:
            self._conformed[key] = data
        return data

    def note(self, model: str) -> str:
        name, seed = self.dataset_for(model)
        with self._lock:
            splits = self._splits.get((name, seed))
        return (splits.train.note or splits.description) if splits is not None else ""

    # -- the pass --------------------------------------------------------------------
    def start_pass(self, model: str, split: str):
        """Submit (or join) the background pass of ``model`` over ``split``."""
        if split not in SPLITS:
            raise NotFound(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        name, seed = self.dataset_for(model)

        def work(progress) -> dict[str, Any]:
            with self._lock:
                done = self._passes.get((model, split))
            if done is None:
                data = self.split(model, split)
                done = cached_pass(
                    self.registry.entry(model).model,
                    data,
                    split=split,
                    seed=seed,
                    progress=False,
                    callback=progress,
                    engine=self.engine,
                )
                with self._lock:
                    self._passes[(model, split)] = done
            progress(len(done), len(done))
            return {
                "model": model,
                "dataset": name,
                "split": split,
                "count": len(done),
                "accuracy": float(done.correct.mean()) if len(done) else None,
                "cached": bool(done.meta.get("cached")),
            }

        return self.jobs.submit("dataset-pass", work, key=("dataset-pass", model, name, seed, split))

    def ready(self, model: str, split: str) -> bool:
        with self._lock:
            return (model, split) in self._passes

    def result(self, model: str, split: str) -> DatasetPass:
        self.registry.entry(model)
        if split not in SPLITS:
            raise NotFound(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        with self._lock:
            found = self._passes.get((model, split))
        if found is None:
            raise ConvscopeError(
                f"no dataset pass of {model!r} over {split!r} yet: POST /api/models/{model}/dataset/{split}/pass first"
            )
        return found

    def start_embedding(self, model: str, split: str, method: str, seed: int = 0):
        if method not in METHODS:
            raise ConvscopeError(f"unknown embedding {method!r}; choose one of {', '.join(METHODS)}")
        result = self.result(model, split)

        def work(progress) -> dict[str, Any]:
            progress(0, 1)
            emb = cached_embedding(result, method=method, seed=seed)
            with self._lock:
                self._embeddings[(model, split, method, seed)] = emb
            progress(1, 1)
            return {"method": method, "backend": emb.backend, "seconds": round(emb.seconds, 3), "count": len(emb)}

        return self.jobs.submit(
            f"embedding-{method}", work, key=("embedding", model, result.meta.get("key") or id(result), method, seed)
        )

    def embedding(self, model: str, split: str, method: str, seed: int = 0):
        self.result(model, split)
        with self._lock:
            emb = self._embeddings.get((model, split, method, seed))
        if emb is None:
            raise ConvscopeError(
                f"no {method} embedding of {model!r} on {split!r} yet: "
                f"POST /api/models/{model}/dataset/{split}/embedding?method={method} first"
            )
        return emb

    # -- images ----------------------------------------------------------------------
    def hwc(self, model: str, split: str, row: int) -> np.ndarray:
        data = self.split(model, split)
        if not 0 <= row < len(data):
            raise NotFound(f"split {split!r} has {len(data)} images, no row {row}")
        img = data.images[row].numpy()
        return img[0] if img.shape[0] == 1 else np.ascontiguousarray(img.transpose(1, 2, 0))

    def pixels(self, model: str, image: str) -> np.ndarray:
        """The pixels behind an explorer image id ``data-<split>-<row>`` (for the registry)."""
        m = IMAGE_ID.match(image)
        if not m:
            raise NotFound(f"unknown image {image!r}; dataset images are data-<train|val|test>-<row>")
        return self.hwc(model, m.group(1), int(m.group(2)))


def rows_json(result: DatasetPass, split: str, rows: np.ndarray | list[int]) -> list[dict[str, Any]]:
    """One dict per row: dataset index, true and predicted class, confidence, explorer image id."""
    out = []
    for r in rows:
        r = int(r)
        t, p = int(result.labels[r]), int(result.preds[r])
        out.append(
            {
                "row": r,
                "index": int(result.indices[r]),
                "true": t,
                "pred": p,
                "true_name": result.class_name(t),
                "pred_name": result.class_name(p),
                "confidence": float(result.probs[r, p]),
                "true_prob": float(result.probs[r, t]),
                "image": image_id(split, r),
            }
        )
    return out


def router(ctx: ServerContext) -> APIRouter:
    """The dataset endpoints; registers ``data-<split>-<row>`` image ids with ``ctx.registry``
    (so the explorer opens dataset images). Background passes go to ``ctx.jobs``."""
    store = DatasetStore(ctx.registry, ctx.jobs, ctx.data, ctx.split_seed, ctx.engine)
    ctx.registry.add_image_source(PREFIX, store.pixels)
    r = APIRouter(tags=["dataset"])

    @r.get("/api/models/{model}/dataset", summary="Which dataset this model is measured on, and which passes are ready")
    def which(model: str) -> dict[str, Any]:
        name, seed = store.dataset_for(model)
        ready = {s: store.ready(model, s) for s in SPLITS}
        return {
            "model": model,
            "dataset": name,
            "split_seed": seed,
            "splits": list(SPLITS),
            "ready": ready,
            "note": store.note(model),
        }

    @r.post("/api/models/{model}/dataset/{split}/pass", summary="Start (or join) the batched pass over a split: a job")
    def start(model: str, split: str) -> dict[str, Any]:
        return store.start_pass(model, split).describe()

    @r.get(
        "/api/models/{model}/dataset/{split}/summary",
        summary="Accuracy, per-class accuracy and the confusion matrix (rows: true class, columns: predicted)",
    )
    def summary(model: str, split: str) -> dict[str, Any]:
        res = store.result(model, split)
        name, seed = store.dataset_for(model)
        return {
            **evaluate(res),
            "model": model,
            "dataset": name,
            "split": split,
            "split_seed": seed,
            "layer": res.layer,
            "features": int(res.features.shape[1]),
            "note": store.note(model),
            "cached": bool(res.meta.get("cached")),
        }

    @r.get("/api/models/{model}/dataset/{split}/cell", summary="The images behind one confusion-matrix cell")
    def cell(
        model: str,
        split: str,
        true: int = Query(..., ge=0),
        pred: int = Query(..., ge=0),
        limit: int = Query(200, ge=1, le=5000),
    ) -> dict[str, Any]:
        res = store.result(model, split)
        if max(true, pred) >= res.num_classes:
            raise NotFound(f"the model has {res.num_classes} classes, no cell ({true}, {pred})")
        rows = cell_rows(res, true, pred)
        return {"true": true, "pred": pred, "count": int(len(rows)), "rows": rows_json(res, split, rows[:limit])}

    @r.get("/api/models/{model}/dataset/{split}/mistakes", summary="Misclassified images, most confident first")
    def mistakes(model: str, split: str, limit: int = Query(60, ge=1, le=5000)) -> dict[str, Any]:
        res = store.result(model, split)
        rows = mistakes_json(misclassified(res, limit=limit), res)
        for m in rows:
            m["image"] = image_id(split, m["row"])
        return {"count": int((~res.correct).sum()), "rows": rows}

    @r.get("/api/models/{model}/dataset/{split}/random", summary="The 'True / Pred' grid: seeded random images")
    def random(
        model: str, split: str, count: int = Query(24, ge=1, le=500), seed: int = seed_query()
    ) -> dict[str, Any]:
        res = store.result(model, split)
        return {"seed": seed, "rows": rows_json(res, split, random_rows(len(res), count, seed))}

    @r.get(
        "/api/models/{model}/dataset/{split}/images/{row}.png",
        response_class=Response,
        summary="A dataset image as the network sees it (conformed to the model), as PNG",
    )
    def image(model: str, split: str, row: int) -> Response:
        from ..render import png_bytes

        return Response(
            png_bytes(store.hwc(model, split, row)), media_type="image/png", headers={"Cache-Control": "max-age=3600"}
        )

    @r.post(
        "/api/models/{model}/dataset/{split}/embedding",
        summary="Start (or join) a 2-D embedding of the penultimate features: a job",
    )
    def start_embedding(model: str, split: str, method: str = "pca", seed: int = seed_query()) -> dict[str, Any]:
        return store.start_embedding(model, split, method, seed).describe()

    @r.get(
        "/api/models/{model}/dataset/{split}/embedding",
        summary="The embedding as columns x, y, label, pred, correct, index (point i is row i)",
    )
    def get_embedding(model: str, split: str, method: str = "pca", seed: int = seed_query()) -> dict[str, Any]:
        res = store.result(model, split)
        emb = store.embedding(model, split, method, seed)
        return {
            **emb.to_json(res.labels, res.preds, res.indices),
            "classes": list(res.classes),
            "image_prefix": f"{PREFIX}{split}-",
        }

    return r
