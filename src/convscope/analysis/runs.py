"""The training history behind a checkpoint, for training curves.

``convscope train`` writes ``OUT/metrics.jsonl`` (one JSON object per epoch with
``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ...) beside its
checkpoints ``OUT/best.pt`` and ``OUT/last.pt``. A checkpoint's metadata may also carry
the history (``meta["metrics"]`` or ``meta["history"]``). This module finds either.

A folder that holds only TensorBoard event files (``events.out.tfevents.*``, written by
``SummaryWriter``, Lightning's ``TensorBoardLogger`` or Keras) is a run too:
:func:`read_events` reads its scalars with TensorBoard's own ``EventAccumulator`` and
turns them into the same per-epoch records, mapping the usual tags (``loss/train``,
``val_loss``, ``train_acc_epoch``, ``epoch_accuracy``, ``lr-Adam`` ...) onto the
record's keys (:func:`canonical_metric`).
"""

from __future__ import annotations

import bisect
import functools
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from ..errors import ConvscopeError
from ..io_utils import resolve_inside

METRICS_FILE = "metrics.jsonl"
EVENTS_GLOB = "events.out.tfevents.*"
_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val"}
_METRICS = {"loss": "loss", "acc": "acc", "accuracy": "acc"}


def read_metrics(path: str | Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Per-epoch records of a ``metrics.jsonl``, sorted by epoch; a re-run epoch keeps its last record.

    Lines without a finite ``epoch`` (batch-level or event records) are skipped, and so
    is a truncated last line (the trainer may be writing it right now). A line that is
    not JSON (or not UTF-8) raises :class:`ConvscopeError`; given a ``problems`` list it
    is skipped and described there instead, so one damaged line costs one epoch, not
    the whole run (the training view lists such a run with its problems).
    """
    path = Path(path)
    if not path.is_file():
        raise ConvscopeError(f"no such metrics file: {path}")
    by_epoch: dict[int, dict[str, Any]] = {}
    lines = path.read_bytes().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            problem = f"{path.name}:{number} is not UTF-8 text"
        except (ValueError, RecursionError):  # JSONDecodeError, a number too long, nesting too deep
            if number == len(lines):
                break
            problem = f"{path.name}:{number} is not JSON"
        else:
            epoch = record.get("epoch") if isinstance(record, dict) else None
            if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) and math.isfinite(epoch):
                by_epoch[int(epoch)] = record
            continue
        if problems is None:
            raise ConvscopeError(f"{path.parent / problem}") from None
        problems.append(f"{problem}; skipped")
    return [by_epoch[e] for e in sorted(by_epoch)]


def run_history(checkpoint: str | Path | None = None, meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The per-epoch history of the run a checkpoint belongs to, or ``[]`` if there is none.

    Looks for ``metrics.jsonl`` in the checkpoint's folder first, then in ``meta``. A
    ``metrics.jsonl`` that is a symlink leading out of that folder is not read.
    """
    if checkpoint is not None and Path(checkpoint).is_file():
        folder = Path(os.path.realpath(checkpoint)).parent
        try:
            candidate = resolve_inside(folder, METRICS_FILE, "metrics file")
        except ConvscopeError:
            candidate = None
        if candidate is not None and candidate.is_file():
            return read_metrics(candidate)
    for key in ("metrics", "history"):
        value = (meta or {}).get(key)
        if isinstance(value, list) and all(isinstance(r, dict) and "epoch" in r for r in value):
            return sorted(value, key=lambda r: r["epoch"])
    return []


def curves(history: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Columns of the numeric metrics: ``{"epoch": [...], "train_loss": [...], ...}``; NaN where missing."""
    keys: list[str] = []
    for record in history:
        for k, v in record.items():
            if k not in keys and isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.append(k)
    return {k: [float(r[k]) if isinstance(r.get(k), (int, float)) else math.nan for r in history] for k in keys}


# -- TensorBoard event folders -------------------------------------------------------------
def canonical_metric(tag: str) -> str | None:
    """The record key a TensorBoard tag (or a Lightning metric name) stands for, or None.

    ``loss/train``, ``train_loss``, ``Loss/train``, ``train/loss_epoch``, ``epoch_loss`` and
    a bare ``loss`` are ``train_loss``; ``val_acc``, ``accuracy/val``, ``validation_accuracy``
    are ``val_acc``; ``lr``, ``learning_rate``, ``lr-Adam`` are ``lr``; ``epoch`` is
    ``epoch``. Per-step tags (a ``step`` or ``batch`` word: ``train_loss_step``) are None,
    so a per-epoch chart never mixes in per-step points; so is anything else.
    """
    words = _words(tag)
    if words and words[0] in _SPLITS and words[1:] == ["epoch"]:  # Keras's per-split folders both log it
        words = ["epoch"]
    if words in (["epoch"], ["images", "per", "s"], ["seconds"]):
        return "_".join(words)
    if not words or per_step(tag):
        return None
    if words[0] == "lr" or words[:2] == ["learning", "rate"]:
        return "lr"
    rest = [w for w in words if w not in ("epoch", "epochs")]
    splits = [_SPLITS[w] for w in rest if w in _SPLITS]
    metrics = [_METRICS[w] for w in rest if w in _METRICS]
    if len(metrics) != 1 or len(splits) > 1 or len(rest) != len(splits) + 1:
        return None
    return f"{splits[0] if splits else 'train'}_{metrics[0]}"


def per_step(tag: str) -> bool:
    """Whether a tag holds per-step points (a ``step`` or ``batch`` word): kept off per-epoch records."""
    return bool({"step", "batch"} & set(_words(tag)))


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^a-z]+", name.lower()) if w]


def event_files(folder: str | Path) -> list[Path]:
    """The TensorBoard event files of the run in ``folder`` (see :func:`_event_sources`)."""
    return [path for path, _ in _event_sources(folder)]


def _event_sources(folder: str | Path) -> list[tuple[Path, str]]:
    """``(event file, split)`` of a run folder, oldest first; links are never followed.

    The files directly in ``folder`` (split ``""``), and those of its sub-folders named
    for a split, whose tags get that split: Keras writes ``logs/train`` and
    ``logs/validation`` (both tagging ``epoch_loss``), ``SummaryWriter.add_scalars("Loss",
    {"train": .., "val": ..})`` writes ``Loss_train`` and ``Loss_val`` (both tagging ``Loss``).
    """
    folder = Path(folder)
    found: list[tuple[Path, str]] = []
    try:
        subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return []
    for where, split in [(folder, ""), *((p, _split_of(p.name)) for p in subfolders)]:
        if split is None:
            continue
        try:
            files = sorted(p for p in where.glob(EVENTS_GLOB) if p.is_file() and not p.is_symlink())
        except OSError:
            continue
        found += [(p, split) for p in files]  # sorted by name, which carries the creation time
    return found


def _split_of(name: str) -> str | None:
    """``train``/``val`` for a sub-folder named for a split (``validation``, ``Loss_train``), else None."""
    words = _words(name)
    return _SPLITS[words[-1]] if words and words[-1] in _SPLITS else None


def event_stats(folder: str | Path) -> list[os.stat_result]:
    """``os.stat`` of each event file, for a version that changes when any of them does."""
    stats = []
    for path in event_files(folder):
        try:
            stats.append(path.stat())
        except OSError:
            continue
    return stats


def read_events(folder: str | Path, problems: list[str] | None = None) -> list[dict[str, Any]]:
    """Per-epoch records (like ``metrics.jsonl``'s) from the event files in ``folder``; [] if none.

    With an ``epoch`` scalar (Lightning and Keras log one, counting from 0) each value is
    filed under the epoch logged at its step (or the last one before it), as epoch + 1, the
    number of epochs done, like ``metrics.jsonl``; without one, the step is the epoch (what
    ``convscope train`` and ``SummaryWriter.add_scalar(tag, v, epoch)`` write). A record
    keeps the last value of each tag in its epoch; tags :func:`canonical_metric` does not
    know keep their own name, per-step tags are left out. A file TensorBoard cannot read is described in ``problems``
    (raised as a :class:`ConvscopeError` without it); later files win where steps repeat.
    """
    series: dict[str, dict[int, float]] = {}
    for path, split in _event_sources(folder):
        try:
            st = path.stat()
            scalars = _event_scalars(str(path), st.st_mtime_ns, st.st_size)
        except Exception as exc:  # noqa: BLE001 - TensorBoard raises many types for damaged files
            problem = f"{path.name} cannot be read by TensorBoard ({type(exc).__name__}: {str(exc)[:120]})"
            if problems is None:
                raise ConvscopeError(problem) from None
            problems.append(f"{problem}; skipped")
            continue
        for tag, points in scalars.items():
            tag = f"{split}/{tag}" if split else tag
            if per_step(tag):
                continue
            key = canonical_metric(tag) or tag
            series.setdefault(key, {}).update(points)
    epochs = series.pop("epoch", None)
    steps = sorted(epochs) if epochs else []
    records: dict[int, dict[str, Any]] = {}
    for key, points in series.items():
        for step in sorted(points):
            if not steps:
                epoch = step
            else:
                at = bisect.bisect_right(steps, step) - 1
                epoch = int(epochs[steps[max(at, 0)]]) + 1
            records.setdefault(epoch, {"epoch": epoch})[key] = points[step]
    return [records[e] for e in sorted(records)]


@functools.lru_cache(maxsize=64)
def _event_scalars(path: str, mtime_ns: int, size: int) -> dict[str, dict[int, float]]:
    """``{tag: {step: value}}`` of one event file (cached while its mtime and size stay); the
    scalars of TF1 summaries and TF2's scalar tensors both (Keras writes the latter)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    acc = EventAccumulator(
        path,
        size_guidance={"scalars": 0, "tensors": 0, "histograms": 1, "images": 1, "audio": 1, "compressedHistograms": 1},
    )
    acc.Reload()
    tags = acc.Tags()
    out = {tag: {int(e.step): float(e.value) for e in acc.Scalars(tag)} for tag in tags.get("scalars", [])}
    for tag in tags.get("tensors", []):
        if acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars":
            out[tag] = {int(e.step): float(make_ndarray(e.tensor_proto).reshape(-1)[0]) for e in acc.Tensors(tag)}
    return out
