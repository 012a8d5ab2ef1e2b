"""Element-wise activations, batch-norm, flatten, linear and softmax, as formulas.

* activations: ``relu(x) = max(0, x)``, ``relu6(x) = min(max(0, x), 6)``,
  ``silu(x) = x / (1 + e^{-x})``, ``sigmoid(x) = 1 / (1 + e^{-x})``, ``tanh``;
* batch-norm: ``y = gamma (x - mean) / sqrt(var + eps) + beta = x * scale + shift``
  with ``scale = gamma / sqrt(var + eps)`` and ``shift = beta - mean * scale``;
* flatten: flat index ``i`` <-> ``(c, h, w)`` (row-major: ``i = (c*H + h)*W + w``);
* linear: ``logit_i = sum_j w_ij x_j + b_i``; the terms ``w_ij x_j`` are the
  contributions (``top_contributions``: the largest in size, and the sums of all
  positive and all negative ones);
* softmax: ``p_i = e^{l_i} / sum_j e^{l_j}``; when ``e^{l_i}`` would overflow, every
  logit is shifted by the largest (``shift``), which leaves ``p`` unchanged
  (``softmax_rest``: what a table of some classes leaves out).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ...errors import ConvscopeError
from ..records import ELEMENTWISE_KINDS, LayerRecord
from .base import Detail, check_index, item, require_kind

FORMULAS: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = {
    "relu": ("max(0, x)", lambda x: torch.where(x > 0, x, torch.zeros_like(x))),
    "relu6": (
        "min(max(0, x), 6)",
        lambda x: torch.where(x > 0, torch.where(x < 6, x, torch.full_like(x, 6.0)), torch.zeros_like(x)),
    ),
    "silu": ("x / (1 + exp(-x))", lambda x: x / (1 + torch.exp(-x))),
    "sigmoid": ("1 / (1 + exp(-x))", lambda x: 1 / (1 + torch.exp(-x))),
    "tanh": ("(exp(x) - exp(-x)) / (exp(x) + exp(-x))", torch.tanh),
}


@dataclass
class Elementwise(Detail):
    kind: str
    formula: str | None
    input: torch.Tensor
    output: torch.Tensor  # what the layer produced
    recomputed: torch.Tensor | None  # the formula applied to the input (None for unknown activations)


def activation(rec: LayerRecord, batch: int = 0) -> Elementwise:
    """Input and output of an element-wise activation, and the formula recomputed."""
    require_kind(rec, ELEMENTWISE_KINDS, "an element-wise activation")
    x = item(rec.input, batch, rec)
    formula, fn = FORMULAS.get(rec.kind, (None, None))
    if fn is not None:
        recomputed = fn(x)
    elif rec.module is not None:  # other activations: the layer itself, on a copy
        with torch.no_grad():
            recomputed = rec.module(x.clone()[None])[0]
    else:
        recomputed = None
    return Elementwise(rec.kind, formula, x, item(rec.output, batch, rec), recomputed)


@dataclass
class BatchNormAffine(Detail):
    """Batch-norm as one affine map per channel: ``output = input * scale + shift``."""

    mean: torch.Tensor  # (C,)
    var: torch.Tensor
    gamma: torch.Tensor
    beta: torch.Tensor
    eps: float
    scale: torch.Tensor  # gamma / sqrt(var + eps)
    shift: torch.Tensor  # beta - mean * scale
    batch_statistics: bool  # mean/var from this batch (train mode) rather than running averages

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``x * scale + shift`` with channels on axis 1 (batch) or 0 (one item)."""
        axis = 1 if x.dim() in (2, 4) else 0
        shape = [1] * x.dim()
        shape[axis] = -1
        return x * self.scale.view(shape) + self.shift.view(shape)


def batchnorm(rec: LayerRecord) -> BatchNormAffine:
    """The per-channel scale and shift a batch-norm record applied."""
    require_kind(rec, {"batchnorm"}, "a batch-norm layer")
    p = rec.params
    x = rec.input.detach()
    c = x.shape[1]
    if p.get("batch_statistics") or p.get("running_mean") is None:
        dims = [d for d in range(x.dim()) if d != 1]
        mean, var = x.mean(dims), x.var(dims, unbiased=False)
    else:
        mean, var = p["running_mean"].detach(), p["running_var"].detach()
    gamma = rec.weight.detach() if rec.weight is not None else torch.ones(c, dtype=x.dtype, device=x.device)
    beta = rec.bias.detach() if rec.bias is not None else torch.zeros(c, dtype=x.dtype, device=x.device)
    scale = gamma / torch.sqrt(var + p["eps"])
    return BatchNormAffine(
        mean, var, gamma, beta, float(p["eps"]), scale, beta - mean * scale, bool(p.get("batch_statistics"))
    )


def _flat_shape(rec: LayerRecord) -> tuple[int, ...]:
    require_kind(rec, {"flatten"}, "a flatten layer")
    shape = rec.input.shape
    start = rec.params.get("start_dim", 1) % len(shape)
    end = rec.params.get("end_dim", -1) % len(shape)
    return tuple(shape[max(start, 1) : end + 1]) if start <= 1 else tuple(shape[start : end + 1])


def flatten_index(rec: LayerRecord, i: int) -> tuple[int, ...]:
    """Flat feature ``i`` -> its position in the un-flattened input, e.g. ``(c, h, w)``."""
    shape = _flat_shape(rec)
    i = check_index(i, math.prod(shape), "flat index", rec)
    out = []
    for size in reversed(shape):
        out.append(i % size)
        i //= size
    return tuple(reversed(out))


def flatten_position(rec: LayerRecord, position: tuple[int, ...]) -> int:
    """``(c, h, w)`` (or any un-flattened position) -> flat feature index."""
    shape = _flat_shape(rec)
    if len(position) != len(shape):
        raise ConvscopeError(f"{rec.name!r} flattens {len(shape)} axes {shape}, got position {tuple(position)}")
    i = 0
    for p, size in zip(position, shape):
        i = i * size + check_index(p, size, "position", rec)
    return i


@dataclass
class LinearDetail(Detail):
    input: torch.Tensor  # (in,)
    weight: torch.Tensor  # (out, in)
    contributions: torch.Tensor  # (out, in) = weight * input
    sums: torch.Tensor  # (out,) = contributions.sum(1)
    bias: torch.Tensor  # (out,)
    output: torch.Tensor  # (out,) = sums + bias


def linear(rec: LayerRecord, batch: int = 0, position: tuple[int, ...] | None = None) -> LinearDetail:
    """Each input's contribution ``w_ij * x_j`` to each output, their sums, bias and outputs. A
    Linear applied at every position of a (B, H, W, C) input (ConvNeXt's MLP) is shown at one
    ``position`` (default: the first)."""
    require_kind(rec, {"linear"}, "a linear layer")
    x = item(rec.input, batch, rec)
    if x.dim() > 1:
        position = tuple(position) if position is not None else (0,) * (x.dim() - 1)
        if len(position) != x.dim() - 1:
            raise ConvscopeError(
                f"{rec.name!r} reads input of shape {tuple(rec.input.shape)}: "
                f"a position needs {x.dim() - 1} indices, got {list(position)}"
            )
        x = x[tuple(check_index(p, n, "position", rec) for p, n in zip(position, x.shape))]
    w = rec.weight.detach()
    contributions = w * x[None, :]
    sums = contributions.sum(1)
    bias = rec.bias.detach() if rec.bias is not None else torch.zeros_like(sums)
    return LinearDetail(x, w, contributions, sums, bias, sums + bias)


@dataclass
class TopContributions(Detail):
    unit: int
    indices: torch.Tensor  # (k,) the inputs j with the largest |w_ij x_j|, largest first (ties: lower j)
    weights: torch.Tensor  # (k,) w_ij
    inputs: torch.Tensor  # (k,) x_j
    products: torch.Tensor  # (k,) w_ij x_j
    positive: float  # the sum of every positive contribution (not only the top k)
    negative: float  # the sum of every negative one; positive + negative = sums[i]
    count: int  # how many inputs the unit reads


def top_contributions(lin: LinearDetail, unit: int, k: int) -> TopContributions:
    """The ``k`` contributions to output ``unit`` that are largest in size, and the sums of all
    positive and all negative ones (what a view lists, and what the rest adds up to)."""
    n_out = lin.output.shape[0]
    if not 0 <= unit < n_out:
        raise ConvscopeError(f"unit {unit} is out of range: the layer has {n_out} outputs")
    prod = lin.contributions[unit]
    order = prod.abs().argsort(descending=True, stable=True)[: max(0, k)]
    return TopContributions(
        unit,
        order,
        lin.weight[unit, order],
        lin.input[order],
        prod[order],
        float(prod[prod > 0].sum()),
        float(prod[prod < 0].sum()),
        int(prod.numel()),
    )


@dataclass
class SoftmaxDetail(Detail):
    logits: torch.Tensor  # (classes,)
    shift: float  # subtracted from every logit before exp (0 unless exp would overflow)
    exp: torch.Tensor  # exp(logits - shift)
    sum: float  # exp.sum()
    probs: torch.Tensor  # exp / sum


def softmax(source: Any, batch: int = 0) -> SoftmaxDetail:
    """``exp(logit_i)``, their sum and the probabilities.

    ``source`` is a softmax record (its input are the logits), a :class:`Trace` (its
    logits), or a tensor of logits (classes,) or (batch, classes).
    """
    if isinstance(source, LayerRecord):
        require_kind(source, {"softmax"}, "a softmax layer")
        logits = item(source.input, batch, source)
    elif isinstance(source, torch.Tensor):
        logits = source[batch] if source.dim() == 2 else source
    elif getattr(source, "logits", None) is not None:
        logits = source.logits[batch]
    else:
        raise ConvscopeError("softmax() needs a softmax record, a trace with logits, or a logits tensor")
    logits = logits.detach().double()
    top = float(logits.max())
    shift = top if top > 700 else 0.0  # exp(709.8) is the largest finite double
    e = torch.exp(logits - shift)
    total = float(e.sum())
    return SoftmaxDetail(logits, shift, e, total, e / total)


@dataclass
class SoftmaxRest(Detail):
    count: int  # classes left out
    exp: float  # the sum of their exp(logit - shift)
    prob: float  # the sum of their probabilities


def softmax_rest(sm: SoftmaxDetail, shown: Sequence[int]) -> SoftmaxRest | None:
    """The classes not in ``shown`` taken together (None when every class is shown), so a
    table of the top classes still adds up to ``sum`` and to 1."""
    rest = torch.ones(sm.probs.shape[0], dtype=torch.bool)
    rest[torch.as_tensor(list(shown), dtype=torch.long)] = False
    if not rest.any():
        return None
    return SoftmaxRest(int(rest.sum()), float(sm.exp[rest].sum()), float(sm.probs[rest].sum()))


@dataclass
class FlattenMap(Detail):
    """Which un-flattened shape a flatten layer reads: ``i = (c*H + h)*W + w`` for (C, H, W)."""

    input_shape: tuple[int, ...]  # one item's shape, e.g. (C, H, W)
    size: int  # number of flat features


def flatten_map(rec: LayerRecord) -> FlattenMap:
    """The shape behind a flatten layer (see :func:`flatten_index` for single features)."""
    shape = _flat_shape(rec)
    return FlattenMap(tuple(int(s) for s in shape), math.prod(shape))


@dataclass
class Merge(Detail):
    """An addition, product or concatenation of earlier layers' outputs."""

    kind: str  # 'add', 'mul' or 'concat'
    inputs: list[str]  # the records that feed it
    operands: list[torch.Tensor]  # their values for this batch item
    output: torch.Tensor
    recomputed: torch.Tensor | None  # sum / product / concatenation of the operands (None with a constant operand)
    ranges: list[tuple[int, int]] | None  # concat: [start, stop) of each operand along the joined axis


def merge(rec: LayerRecord, batch: int = 0) -> Merge:
    """Operands and result of ``x + y``, ``x * y`` or ``torch.cat``."""
    require_kind(rec, {"add", "mul", "concat"}, "an addition, product or concatenation")
    operands = [item(t, batch, rec) for t in rec.inputs_tensors]
    output = item(rec.output, batch, rec)
    ranges = None
    recomputed = None
    if rec.kind == "concat":
        dim = int(rec.params.get("dim", 1)) % rec.output.dim() - 1  # the axis within one item
        stops = torch.tensor([o.shape[dim] for o in operands]).cumsum(0).tolist()
        ranges = [(stop - o.shape[dim], stop) for o, stop in zip(operands, stops)]
        if stops and stops[-1] == output.shape[dim]:
            recomputed = torch.cat(operands, dim)
    elif len(operands) >= 2 and all(o.shape == output.shape for o in operands):
        recomputed = operands[0]
        for o in operands[1:]:
            recomputed = recomputed + o if rec.kind == "add" else recomputed * o
    return Merge(rec.kind, list(rec.inputs), operands, output, recomputed, ranges)
