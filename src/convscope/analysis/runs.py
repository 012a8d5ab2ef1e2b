"""The training history behind a checkpoint, for training curves.

``convscope train`` writes ``OUT/metrics.jsonl`` (one JSON object per epoch with
``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ...) beside its
checkpoints ``OUT/best.pt`` and ``OUT/last.pt``. A checkpoint's metadata may also carry
the history (``meta["metrics"]`` or ``meta["history"]``). This module finds either.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from ..errors import ConvscopeError
from ..io_utils import resolve_inside

METRICS_FILE = "metrics.jsonl"


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
