"""The training history behind a checkpoint, for training curves.

``convscope train`` writes ``OUT/metrics.jsonl`` (one JSON object per epoch with
``epoch``, ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ...) beside its
checkpoints ``OUT/best.pt`` and ``OUT/last.pt``. A checkpoint's metadata may also carry
the history (``meta["metrics"]`` or ``meta["history"]``). This module finds either.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import ConvscopeError

METRICS_FILE = "metrics.jsonl"


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Per-epoch records of a ``metrics.jsonl``, sorted by epoch; a re-run epoch keeps its last record.

    Lines without an ``epoch`` (batch-level or event records) are skipped, and so is a
    truncated last line (the trainer may be writing it right now).
    """
    path = Path(path)
    if not path.is_file():
        raise ConvscopeError(f"no such metrics file: {path}")
    by_epoch: dict[int, dict[str, Any]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ConvscopeError(f"{path}:{number} is not JSON") from None
        if isinstance(record, dict) and isinstance(record.get("epoch"), (int, float)):
            by_epoch[int(record["epoch"])] = record
    return [by_epoch[e] for e in sorted(by_epoch)]


def run_history(checkpoint: str | Path | None = None, meta: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The per-epoch history of the run a checkpoint belongs to, or ``[]`` if there is none.

    Looks for ``metrics.jsonl`` in the checkpoint's folder first, then in ``meta``.
    """
    if checkpoint is not None:
        candidate = Path(checkpoint).parent / METRICS_FILE
        if Path(checkpoint).is_file() and candidate.is_file():
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
