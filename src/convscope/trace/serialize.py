"""A trace as plain JSON: structure, shapes, hyper-parameters and statistics, no big tensors."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from .summary import multiply_adds

if TYPE_CHECKING:
    from .core import Trace
    from .records import LayerRecord


def jsonable(value: Any) -> Any:
    """Tuples -> lists, numbers stay numbers, tensors are dropped (None), the rest as str."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not isinstance(v, torch.Tensor)}
    if isinstance(value, torch.Tensor):
        return None
    return str(value)


def tensor_stats(t: torch.Tensor) -> dict[str, float]:
    """min, max, mean and (population) std of a tensor, as floats."""
    f = t.detach().float()
    if f.numel() == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0, "std": 0.0}
    return {"min": float(f.min()), "max": float(f.max()), "mean": float(f.mean()), "std": float(f.std(unbiased=False))}


def record_to_json(rec: LayerRecord, stats: bool = True) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": rec.name,
        "kind": rec.kind,
        "op": rec.op,
        "via": rec.via,
        "params": jsonable(rec.params),
        "inputs": list(rec.inputs),
        "input_shapes": [list(t.shape) for t in rec.inputs_tensors],
        "output_shape": list(rec.output_shape),
        "weight_shape": list(rec.weight.shape) if rec.weight is not None else None,
        "has_bias": rec.bias is not None,
        "param_count": rec.param_count,
        "macs": multiply_adds(rec),
    }
    if stats and rec.output is not None:
        d["stats"] = tensor_stats(rec.output)
    return d


def trace_to_json(t: Trace, stats: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "model": t.model.name,
        "via": t.via,
        "fx_error": t.fx_error,
        "input_shape": list(t.input.shape),
        "layers": [record_to_json(r, stats) for r in t.layers],
    }
    if t.probs is not None:
        out["top"] = [[{"index": i, "class": name, "prob": p} for i, name, p in row] for row in t.top(5)]
    return out
