"""Which 4-D records hold channels-last (B, H, W, C) tensors, read off a trace.

ConvNeXt's blocks ``permute`` a (B, C, H, W) map to (B, H, W, C), run LayerNorm and Linear
layers over the last axis, and permute back. Shapes alone cannot tell such a tensor from a
map; the trace can: a record is channels-last when its output *is* its channels-first input
permuted by (0, 2, 3, 1) (value for value), or when its first input is channels-last and it
keeps the (B, H, W) axes (LayerNorm, Linear, GELU, a layer-scale multiplication). A
permutation by (0, 3, 1, 2) of a channels-last input is a map again.
"""

from __future__ import annotations

import torch

BHWC, BCHW = "BHWC", "BCHW"
TO_LAST, TO_FIRST = (0, 2, 3, 1), (0, 3, 1, 2)


def layouts(trace) -> dict[str, str]:
    """``{record name: "BCHW" | "BHWC"}`` for every record with a 4-D tensor output."""
    found: dict[str, str] = {}
    for rec in trace.layers:
        out = rec.output
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            continue
        src = rec.inputs[0] if rec.inputs else None
        inp = rec.input
        was = found.get(src) if src is not None else None
        if was is not None and isinstance(inp, torch.Tensor) and inp.dim() == 4:
            if is_permute(inp, out, TO_LAST if was == BCHW else TO_FIRST):
                found[rec.name] = BHWC if was == BCHW else BCHW
                continue
            if was == BHWC and out.shape[:3] == inp.shape[:3]:
                found[rec.name] = BHWC
                continue
        found[rec.name] = BCHW
    return found


def is_permute(inp: torch.Tensor, out: torch.Tensor, dims: tuple[int, ...]) -> bool:
    """Whether ``out`` equals ``inp.permute(dims)`` exactly (shape and values)."""
    moved = inp.permute(dims)
    return moved.shape == out.shape and torch.equal(moved, out)


def is_relayout(rec, found: dict[str, str]) -> bool:
    """Whether the record only moves axes between the two layouts (a permute; ``found``: :func:`layouts`)."""
    src = found.get(rec.inputs[0]) if rec.inputs else None
    return src is not None and rec.name in found and src != found[rec.name]


def as_map(t: torch.Tensor, layout: str) -> torch.Tensor:
    """A (B, C, H, W) view of a 4-D tensor in ``layout``."""
    return t.permute(TO_FIRST) if layout == BHWC else t
