"""The window behind each pooling output.

For max/average pooling with kernel ``k``, stride ``s``, padding ``p`` and dilation
``d``, output ``[c, y, x]`` reads input rows ``y*s_h - p_h + i*d_h`` (``i < k_h``) and
likewise columns. Positions outside the input are padding: ignored by max pooling
(PyTorch pads with -inf), zeros for average pooling, where the divisor is

* ``divisor_override`` when given, else
* with ``count_include_pad``: the window clipped to the padded input
  (``min(start + k, H + p) - start`` per axis, the part that ``ceil_mode`` may push
  past the padding does not count), else the number of positions inside the input.

Adaptive pooling to ``(O_h, O_w)`` reads rows ``floor(y*H/O_h) .. ceil((y+1)*H/O_h) - 1``.
The arg-max is the first maximal position in row-major order, as ``F.max_pool2d``
reports with ``return_indices=True`` (a flat index ``row * W + col``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..records import POOL_KINDS, LayerRecord
from .base import Detail, check_index, item, require_kind


@dataclass
class PoolWindow(Detail):
    """One output of a pooling layer and the input window it came from."""

    channel: int
    y: int
    x: int
    op: str  # 'max' or 'avg'
    rows: torch.Tensor  # (k_h,) input rows (outside 0..H-1: padding)
    cols: torch.Tensor  # (k_w,)
    inside: torch.Tensor  # (k_h, k_w) bool
    values: torch.Tensor  # (k_h, k_w) input values; padding shows as -inf (max) or 0 (avg)
    value: float  # the pooled output
    argmax: tuple[int, int] | None  # (row, col) in the input, max pooling only
    divisor: int | None  # average pooling only: value = values.sum() / divisor


@dataclass
class PoolWindows(Detail):
    """All outputs of a pooling layer at once (for checking and for whole-map views)."""

    op: str
    values: torch.Tensor  # (C, H_out, W_out) recomputed outputs
    argmax: torch.Tensor | None  # (C, H_out, W_out) flat input index row * W + col (max only)
    divisor: torch.Tensor | None  # (H_out, W_out) (avg only)


def _op(rec: LayerRecord) -> str:
    return "max" if rec.kind in ("maxpool", "adaptive_maxpool") else "avg"


def _axis(rec: LayerRecord, axis: int, size_in: int, size_out: int, device: torch.device):
    """Window positions ``(O, k)``, in-input mask and the count-include-pad divisor per output."""
    p = rec.params
    o = torch.arange(size_out, device=device)
    if rec.kind.startswith("adaptive"):
        start = (o * size_in) // size_out
        end = -((-(o + 1) * size_in) // size_out)  # ceil
        k = int((end - start).max())
        pos = start[:, None] + torch.arange(k, device=device)[None, :]
        inside = pos < end[:, None]
        return pos, inside, inside.sum(1)
    k, s, d = p["kernel_size"][axis], p["stride"][axis], p["dilation"][axis]
    pad = p["padding"][axis]
    start = o * s - pad
    pos = start[:, None] + torch.arange(k, device=device)[None, :] * d
    inside = (pos >= 0) & (pos < size_in)
    include_pad = ((start + k).clamp(max=size_in + pad) - start).clamp(min=0)
    return pos, inside, include_pad


def _divisor(rec: LayerRecord, inside_h, inside_w, pad_h, pad_w) -> torch.Tensor:
    p = rec.params
    if p.get("divisor_override"):
        return torch.full((len(pad_h), len(pad_w)), int(p["divisor_override"]), device=pad_h.device)
    if rec.kind == "avgpool" and p.get("count_include_pad", True):
        return pad_h[:, None] * pad_w[None, :]
    return inside_h.sum(1)[:, None] * inside_w.sum(1)[None, :]


def _gather(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, inside: torch.Tensor, fill: float):
    """x (C, H, W) at rows (O_h, k_h) x cols (O_w, k_w) -> (C, O_h, O_w, k_h, k_w), ``fill`` outside."""
    h, w = x.shape[-2:]
    r = rows.clamp(0, h - 1)
    c = cols.clamp(0, w - 1)
    g = x[:, r][:, :, :, c]  # (C, O_h, k_h, O_w, k_w)
    g = g.permute(0, 1, 3, 2, 4)
    return torch.where(inside, g, torch.full_like(g, fill))


def pool_windows(rec: LayerRecord, batch: int = 0) -> PoolWindows:
    """Recompute every output of a pooling layer from its windows."""
    require_kind(rec, POOL_KINDS, "a pooling layer")
    x = item(rec.input, batch, rec)
    (h, w), (oh, ow) = x.shape[-2:], rec.output.shape[-2:]
    rows, in_h, pad_h = _axis(rec, 0, h, oh, x.device)
    cols, in_w, pad_w = _axis(rec, 1, w, ow, x.device)
    inside = in_h[:, None, :, None] & in_w[None, :, None, :]  # (O_h, O_w, k_h, k_w)
    op = _op(rec)
    if op == "max":
        win = _gather(x, rows, cols, inside, float("-inf")).flatten(-2)
        values, best = win.max(-1)
        kw = cols.shape[1]
        r = torch.gather(rows[None, :, None, :].expand(x.shape[0], -1, ow, -1), 3, (best // kw)[..., None])[..., 0]
        c = torch.gather(cols[None, None, :, :].expand(x.shape[0], oh, -1, -1), 3, (best % kw)[..., None])[..., 0]
        return PoolWindows("max", values, r * w + c, None)
    win = _gather(x, rows, cols, inside, 0.0)
    divisor = _divisor(rec, in_h, in_w, pad_h, pad_w)
    return PoolWindows("avg", win.sum(dim=(-2, -1)) / divisor, None, divisor)


def pool_window(rec: LayerRecord, c: int, y: int, x: int, batch: int = 0) -> PoolWindow:
    """The input window behind output ``[c, y, x]``: values, arg-max (max) or mean (avg)."""
    require_kind(rec, POOL_KINDS, "a pooling layer")
    inp = item(rec.input, batch, rec)
    c = check_index(c, inp.shape[0], "channel", rec)
    (h, w), (oh, ow) = inp.shape[-2:], rec.output.shape[-2:]
    y = check_index(y, oh, "output row", rec)
    x = check_index(x, ow, "output column", rec)
    rows, in_h, pad_h = _axis(rec, 0, h, oh, inp.device)
    cols, in_w, pad_w = _axis(rec, 1, w, ow, inp.device)
    r, cc = rows[y], cols[x]
    inside = in_h[y][:, None] & in_w[x][None, :]
    op = _op(rec)
    fill = float("-inf") if op == "max" else 0.0
    values = _gather(inp[c : c + 1], r[None], cc[None], inside, fill)[0, 0, 0]
    if op == "max":
        best = int(values.flatten().argmax())
        kw = values.shape[1]
        return PoolWindow(
            c,
            y,
            x,
            "max",
            r,
            cc,
            inside,
            values,
            float(values.flatten()[best]),
            (int(r[best // kw]), int(cc[best % kw])),
            None,
        )
    divisor = int(_divisor(rec, in_h[y : y + 1], in_w[x : x + 1], pad_h[y : y + 1], pad_w[x : x + 1])[0, 0])
    return PoolWindow(c, y, x, "avg", r, cc, inside, values, float(values.sum()) / divisor, None, divisor)


def adaptive_bounds(size_in: int, size_out: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of adaptive pooling windows along one axis (end exclusive)."""
    return [(math.floor(o * size_in / size_out), math.ceil((o + 1) * size_in / size_out)) for o in range(size_out)]
