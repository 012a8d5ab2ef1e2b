"""What every detail result shares: picking one item of a batch, checking indices, JSON."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from ...errors import ConvscopeError
from ..records import LayerRecord


class Detail:
    """Base of the detail dataclasses: ``to_dict()`` turns tensors into nested lists."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


def _plain(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.tolist() if value.dim() else _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def require_kind(rec: LayerRecord, kinds: set[str] | frozenset[str], what: str) -> None:
    if rec.kind not in kinds:
        raise ConvscopeError(f"{rec.name!r} is a {rec.kind} layer, not {what}")


def check_index(value: int, size: int, what: str, rec: LayerRecord) -> int:
    """``value`` as a valid index in ``range(size)`` (negative counts from the end)."""
    if not -size <= value < size:
        raise ConvscopeError(f"{what} {value} is out of range for {rec.name!r} (size {size})")
    return value % size


def item(t: torch.Tensor, batch: int, rec: LayerRecord) -> torch.Tensor:
    """One item of a batch-first tensor, detached."""
    return t[check_index(batch, t.shape[0], "batch index", rec)].detach()
