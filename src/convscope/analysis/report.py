"""``convscope report``: wire the dataset pass, its metrics and the embedding into figures.

This module computes nothing itself: it runs the pass (cached), reads metrics off it,
hands the arrays to :mod:`convscope.render.dataset_figures`, and lays the figures out
with :mod:`convscope.render.report` as one self-contained HTML file or a PDF.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..data.base import ImageDataset
from ..data.registry import as_dataset
from ..errors import ConvscopeError
from ..models.model import Model
from ..render import dataset_figures as figs
from ..render.report import Section, Table, write_html, write_pdf
from .cache import cached_embedding, cached_pass
from .dataset_pass import DatasetPass, Progress
from .embedding import METHODS, MIN_POINTS
from .layers import activation_maps, layer_table, report_layers
from .metrics import evaluate, misclassified, per_class_accuracy, random_rows
from .runs import curves, run_history

FORMATS = ("html", "pdf")


def build_report(
    model: Model,
    dataset: ImageDataset | str,
    split: str = "test",
    seed: int = 0,
    checkpoint: str | Path | None = None,
    embedding: str | None = "tsne",
    samples: int = 24,
    batch_size: int = 256,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    callback: Progress | None = None,
    log: Callable[[str], None] | None = None,
    engine: Any = "local",
) -> tuple[str, str, list[Section], dict[str, Any]]:
    """The report's sections for ``model`` on ``dataset`` (one split of it).

    Returns (title, subtitle, sections, facts) where ``facts`` is a JSON-able record of
    what was computed and what was left out (for the CLI to print, or the explorer).
    """
    if embedding and embedding not in METHODS:
        raise ConvscopeError(f"unknown embedding {embedding!r}; choose one of {', '.join(METHODS)} or none")
    say = log or (lambda _m: None)
    dataset = as_dataset(dataset, split)  # a name such as "digits": that split of it
    data = dataset.conform(model.preprocessing)
    say(f"dataset pass over {len(data)} {split} images of {dataset.name}")
    result = cached_pass(
        model,
        data,
        split=split,
        seed=seed,
        cache_dir=cache_dir,
        batch_size=batch_size,
        progress=progress,
        callback=callback,
        engine=engine,
    )
    images = data.images.permute(0, 2, 3, 1).numpy()  # what the network saw, uint8 HWC
    stats = evaluate(result)
    facts: dict[str, Any] = {
        "accuracy": stats["accuracy"],
        "count": stats["count"],
        "errors": stats["errors"],
        "cached_pass": bool(result.meta.get("cached")),
        "left_out": [],
    }
    sections = [
        _overview(model, dataset, split, stats, result),
        _model_summary(model, facts),
        _training(checkpoint, model.meta, facts),
        _accuracy(result, stats),
        _true_pred(result, images, samples, seed),
        _mistakes(result, images, samples),
        _activations(model, data, seed),
        _gradcam(model, data, result, facts),
    ]
    if embedding and len(result) < MIN_POINTS:  # a small folder's test split: the rest of the report still helps
        facts["left_out"].append(
            f"embedding: it needs at least {MIN_POINTS} images, the {split} split has {len(result)}"
        )
    elif embedding:
        say(f"{embedding} embedding of {len(result)} feature vectors ({result.features.shape[1]} dims)")
        sections.append(_embedding(result, embedding, seed, cache_dir, facts))
    title = f"convscope report: {model.name} on {dataset.name} ({split})"
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return title, f"convscope {__version__}, {when}", [s for s in sections if s is not None], facts


def write_report(
    out: str | Path, model: Model, dataset: ImageDataset | str, fmt: str = "html", **options: Any
) -> dict[str, Any]:
    """Build the report and write it as ``fmt`` (html or pdf); returns the facts."""
    if fmt not in FORMATS:
        raise ConvscopeError(f"unknown report format {fmt!r}; choose html or pdf")
    title, subtitle, sections, facts = build_report(model, dataset, **options)
    (write_html if fmt == "html" else write_pdf)(out, title, sections, subtitle)
    facts["out"] = str(out)
    return facts


def _feature_name(result: DatasetPass) -> str:
    where = "entering" if result.feature_side == "input" else "leaving"
    return f"features {where} '{result.layer}'"


# -- sections ------------------------------------------------------------------------
def _overview(model: Model, dataset: ImageDataset, split: str, stats: dict[str, Any], result: DatasetPass) -> Section:
    n_params = sum(p.numel() for p in model.net.parameters())
    c, h, w = model.input_shape
    rows: list[list[object]] = [
        ["model", model.name],
        ["parameters", f"{n_params:,}"],
        ["input", f"{c}x{h}x{w}"],
        ["dataset", f"{dataset.name} ({split} split, {len(dataset):,} images)"],
        ["accuracy", f"{100 * stats['accuracy']:.2f}% ({stats['count'] - stats['errors']:,} of {stats['count']:,})"],
        ["mean cross-entropy loss", f"{stats['mean_loss']:.4f}"],
        ["features for the embedding", f"{_feature_name(result)} ({result.features.shape[1]} values per image)"],
    ]
    notes = [t for t in (dataset.note, model.meta.get("untrained") and "this model is untrained") if t]
    return Section("Overview", table=Table(None, rows), note="; ".join(notes))


def _model_summary(model: Model, facts: dict[str, Any]) -> Section:
    try:
        from ..trace import trace  # lands with the trace issue
    except ImportError as exc:
        trace, why = None, str(exc)
    if trace is not None:
        summary = trace(model, torch.zeros(1, *model.input_shape, device=model.device)).summary().to_dict()
        rows = [
            [f"{r['name']} ({r['op']})", r["kind"], "x".join(map(str, r["output_shape"])), r["params"], r["macs"]]
            for r in summary["rows"]
        ]
        totals = (
            f"{summary['total_params']:,} parameters ({summary['trainable_params']:,} trainable); "
            f"{summary['total_macs']:,} multiply-adds per image; traced via {summary['via']}."
        )
        return Section(
            "Model summary",
            paragraphs=[totals],
            table=Table(["layer (type)", "kind", "output shape", "parameters", "multiply-adds"], rows),
        )
    facts["left_out"].append(f"model summary from convscope.trace ({why}): a hook-based layer table instead")
    rows = [
        [r["name"], r["kind"], "x".join(map(str, r["output_shape"])) if r["output_shape"] else "-", r["parameters"]]
        for r in layer_table(model)
    ]
    return Section(
        "Model summary",
        table=Table(["layer", "kind", "output shape", "parameters"], rows),
        note="Leaf modules and their output shapes for one input, read with forward hooks.",
    )


def _training(checkpoint: str | Path | None, meta: dict[str, Any], facts: dict[str, Any]) -> Section:
    history = run_history(checkpoint, meta)
    facts["epochs"] = len(history)
    if not history:
        facts["left_out"].append("training curves: no metrics.jsonl beside the checkpoint and none in its metadata")
        return Section(
            "Training curves",
            note="No training history: the model is not a checkpoint inside a "
            "`convscope train` run folder (no metrics.jsonl beside it).",
        )
    cols = curves(history)
    last = history[-1]
    summary = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if isinstance(v, float) and k.endswith(("loss", "acc")))
    return Section(
        "Training curves",
        paragraphs=[f"{len(history)} epochs; last epoch: {summary}."],
        figures=[(figs.training_curves(cols), "loss and accuracy per epoch")],
    )


def _accuracy(result: DatasetPass, stats: dict[str, Any]) -> Section:
    cm = np.asarray(stats["confusion"])
    per_class = per_class_accuracy(cm)
    rows = [
        [
            result.class_name(k),
            int(cm[k].sum()),
            int(cm[k, k]),
            "-" if np.isnan(per_class[k]) else f"{100 * per_class[k]:.1f}%",
        ]
        for k in range(len(cm))
    ]
    return Section(
        "Accuracy and confusion matrix",
        paragraphs=[f"Accuracy {100 * stats['accuracy']:.2f}% on {stats['count']:,} images."],
        table=Table(["class", "images", "correct", "accuracy"], rows),
        figures=[(figs.confusion_figure(cm, result.classes, per_class), "confusion matrix")],
    )


def _true_pred(result: DatasetPass, images: np.ndarray, samples: int, seed: int) -> Section:
    rows = random_rows(len(result), samples, seed)
    fig = figs.true_pred_grid(
        [images[r] for r in rows],
        [result.class_name(result.labels[r]) for r in rows],
        [result.class_name(result.preds[r]) for r in rows],
    )
    return Section(
        "True / Pred",
        paragraphs=[f"{len(rows)} images drawn at random (seed {seed}); red: wrong."],
        figures=[(fig, "random images with true and predicted labels")],
    )


def _mistakes(result: DatasetPass, images: np.ndarray, samples: int) -> Section:
    wrong = misclassified(result, limit=samples)
    title = "Misclassified examples"
    if not wrong:
        return Section(title, paragraphs=["No image of this split is misclassified."])
    fig = figs.misclassified_gallery(
        [images[m.row] for m in wrong],
        [result.class_name(m.true) for m in wrong],
        [result.class_name(m.pred) for m in wrong],
        [m.confidence for m in wrong],
    )
    total = int((~result.correct).sum())
    return Section(
        title,
        paragraphs=[
            f"The {len(wrong)} most confident of {total} mistakes "
            "(true → predicted, with the probability given to the prediction)."
        ],
        figures=[(fig, "misclassified images sorted by confidence")],
    )


def _activations(model: Model, data: ImageDataset, seed: int) -> Section:
    row = int(random_rows(len(data), 1, seed)[0])
    x = model.preprocessing.normalize(data.images[row : row + 1])
    layers = report_layers(model)
    maps = activation_maps(model, x, layers)
    fig = figs.activation_maps(maps, data.images[row].permute(1, 2, 0).numpy())
    return Section(
        "Activation maps of one sample",
        paragraphs=[
            f"Image {int(data.indices[row])} of {data.name} (label "
            f"{model.class_name(int(data.labels[row]))}): the first channels of each layer, "
            "one zero-centred colour scale per layer (red positive, blue negative)."
        ],
        figures=[(fig, "activation maps")],
    )


def _gradcam(model: Model, data: ImageDataset, result: DatasetPass, facts: dict[str, Any]) -> Section | None:
    try:
        from ..explain import attribute  # lands with the attribution issue
    except ImportError as exc:
        facts["left_out"].append(f"Grad-CAM: convscope.explain is not available ({exc})")
        return Section(
            "Grad-CAM",
            note=f"Left out: convscope.explain (attribution methods) is not available in this installation ({exc}).",
        )
    rows = list(random_rows(len(data), 6, seed=1))
    x = model.preprocessing.normalize(data.images[rows])
    found = attribute(model, x.to(model.device), method="gradcam")
    maps = found.numpy() if hasattr(found, "maps") else torch.as_tensor(found).detach().float().cpu().numpy()
    lo = maps.reshape(len(maps), -1).min(1)[:, None, None]
    hi = maps.reshape(len(maps), -1).max(1)[:, None, None]
    heat = (maps - lo) / np.where(hi > lo, hi - lo, 1.0)
    titles = [f"{result.class_name(result.labels[r])} → {result.class_name(result.preds[r])}" for r in rows]
    fig = figs.heatmap_overlays([data.images[r].permute(1, 2, 0).numpy() for r in rows], list(heat), titles)
    return Section(
        "Grad-CAM",
        paragraphs=[
            "Where the predicted class's evidence lies (Grad-CAM at the last "
            "spatial layer), for six random images; true → predicted."
        ],
        figures=[(fig, "Grad-CAM overlays")],
    )


def _embedding(
    result: DatasetPass, method: str, seed: int, cache_dir: str | Path | None, facts: dict[str, Any]
) -> Section:
    emb = cached_embedding(result, method=method, seed=seed, cache_dir=cache_dir)
    facts["embedding"] = {"method": method, "backend": emb.backend, "seconds": round(emb.seconds, 2)}
    name = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}[method]
    fig = figs.embedding_scatter(
        emb.coords, result.labels, result.correct, result.classes, title=f"{name} of the {_feature_name(result)}"
    )
    return Section(
        f"Embedding ({name})",
        paragraphs=[
            f"{name} ({emb.backend}, seed {seed}, {emb.seconds:.1f} s) of the {result.features.shape[1]}"
            f" {_feature_name(result)}, coloured by true class; crosses are misclassified."
        ],
        figures=[(fig, f"{name} embedding")],
    )
