"""Details of the layers that big modern nets add between convolutions, recomputed from a record:
LayerNorm over the channels at one position, axis moves (permute / view / reshape), means over
axes, and broadcast products (squeeze-excitation gates, ConvNeXt's layer scale). Each carries
``recomputed``, PyTorch's own op redone on the record's input, which equals ``output``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import ConvscopeError
from ..records import LayerRecord
from .base import Detail, check_index, item


@dataclass
class LayerNormDetail(Detail):
    """``output = (x − mean) / sqrt(var + eps) · gamma + beta`` over the last axis at ``position``."""

    position: tuple[int, ...]
    input: torch.Tensor  # (C,) the values normalised together
    mean: float
    var: float  # biased, as LayerNorm uses
    eps: float
    normalized: torch.Tensor  # (C,)
    gamma: torch.Tensor | None
    beta: torch.Tensor | None
    recomputed: torch.Tensor  # (C,)
    output: torch.Tensor  # (C,) the trace's


def layer_norm(rec: LayerRecord, position: tuple[int, ...] = (), batch: int = 0) -> LayerNormDetail:
    """A LayerNorm module's arithmetic at one position of its leading axes (``()`` for (B, C))."""
    m = rec.module
    if not isinstance(m, nn.LayerNorm) or len(m.normalized_shape) != 1:
        raise ConvscopeError(f"{rec.name!r} is not a LayerNorm over one axis")
    x, out = item(rec.input, batch, rec), item(rec.output, batch, rec)
    if len(position) != x.dim() - 1:
        raise ConvscopeError(f"{rec.name!r} needs a position of {x.dim() - 1} indices, got {list(position)}")
    position = tuple(check_index(p, n, "position", rec) for p, n in zip(position, x.shape))
    v = x[position].float()
    mean, var = v.mean(), v.var(unbiased=False)
    normalized = (v - mean) / torch.sqrt(var + m.eps)
    gamma = m.weight.detach().float() if m.weight is not None else None
    beta = m.bias.detach().float() if m.bias is not None else None
    y = normalized * (gamma if gamma is not None else 1) + (beta if beta is not None else 0)
    return LayerNormDetail(
        position, v, float(mean), float(var), float(m.eps), normalized, gamma, beta, y, out[position].float()
    )


@dataclass
class Relayout(Detail):
    """A permute / view / reshape: the same numbers, other axes (``dims`` for a permute)."""

    op: str
    input_shape: list[int]
    output_shape: list[int]
    dims: list[int] | None  # output axis i is input axis dims[i] (batch included); None for view/reshape
    recomputed_equal: bool


def relayout(rec: LayerRecord) -> Relayout:
    """Which axes moved where: a permute's ``dims`` found by redoing it, or a view / reshape."""
    inp, out = rec.input, rec.output
    if not isinstance(inp, torch.Tensor) or inp.numel() != out.numel():
        raise ConvscopeError(f"{rec.name!r} does not keep its input's numbers (not a permute, view or reshape)")
    dims = None
    if inp.dim() == out.dim() and inp.dim() <= 6:
        dims = next(
            (
                list(p)
                for p in itertools.permutations(range(inp.dim()))
                if inp.permute(p).shape == out.shape and torch.equal(inp.permute(p), out)
            ),
            None,
        )
    same = dims is not None or torch.equal(inp.reshape(out.shape), out)
    if not same:
        raise ConvscopeError(f"{rec.name!r} is neither a permutation nor a reshape of its input")
    return Relayout(rec.op, list(inp.shape[1:]), list(out.shape[1:]), dims, True)


@dataclass
class Reduction(Detail):
    """A mean over ``dims`` (of one item: batch axis excluded): each output is the sum over
    ``count`` inputs divided by ``count``."""

    dims: list[int]
    count: int
    keepdim: bool
    recomputed: torch.Tensor
    output: torch.Tensor


def reduction(rec: LayerRecord, batch: int = 0) -> Reduction:
    """The axes a ``mean`` reduced, found from the shapes, and the mean redone."""
    x, out = item(rec.input, batch, rec), item(rec.output, batch, rec)
    candidates = []
    for r in range(1, x.dim() + 1):
        for dims in itertools.combinations(range(x.dim()), r):
            for keep in (True, False):
                if x.mean(dims, keepdim=keep).shape == out.shape:
                    candidates.append((list(dims), keep))
    for dims, keep in candidates:
        redone = x.mean(dims, keepdim=keep)
        if torch.allclose(redone, out, rtol=1e-5, atol=1e-6):
            count = int(torch.tensor([x.shape[d] for d in dims]).prod())
            return Reduction(dims, count, keep, redone, out)
    raise ConvscopeError(f"{rec.name!r} is not a mean over some axes of its input")


@dataclass
class Broadcast(Detail):
    """``output = a × b`` with the smaller operand repeated along its size-1 axes."""

    operands: list[str]  # record names, or parameter names (``1.layer_scale``)
    shapes: list[list[int]]  # each operand's shape for one item (a parameter's own shape)
    repeated: list[list[int]]  # per operand, the output axes it is repeated along
    recomputed: torch.Tensor
    output: torch.Tensor


def broadcast_product(rec: LayerRecord, parameters: dict[str, torch.Tensor] | None = None, batch: int = 0) -> Broadcast:
    """A product whose operands differ in shape (``parameters``: operands that are the net's own
    parameters, by name, such as a layer scale; the trace does not record those as inputs)."""
    if rec.kind != "mul":
        raise ConvscopeError(f"{rec.name!r} is a {rec.kind} layer, not a product")
    out = item(rec.output, batch, rec)
    names = list(rec.inputs) + list(parameters or {})
    values = [item(t, batch, rec) for t in rec.inputs_tensors] + [p.detach() for p in (parameters or {}).values()]
    if len(values) < 2:
        raise ConvscopeError(f"{rec.name!r} multiplies by a constant the trace does not hold")
    redone = values[0]
    for v in values[1:]:
        redone = redone * v
    shapes = [list(v.shape) for v in values]
    repeated = [[d for d in range(out.dim()) if _size(v, d, out.dim()) == 1 and out.shape[d] > 1] for v in values]
    return Broadcast(names, shapes, repeated, redone, out)


def _size(v: torch.Tensor, d: int, dims: int) -> int:
    """The size of ``v`` along output axis ``d`` under right-aligned broadcasting."""
    i = d - (dims - v.dim())
    return v.shape[i] if i >= 0 else 1


def node_parameters(net: nn.Module, rec: LayerRecord) -> dict[str, torch.Tensor]:
    """The parameters a functional record reads directly (its fx node's ``get_attr`` inputs)."""
    from ..fx_trace import graph_plan, read_parameters

    try:
        plan = graph_plan(net, any_mode=True)
    except Exception:  # noqa: BLE001 - a hooks-traced net: no graph, no parameter operands
        return {}
    node = next((n for n, p in plan.nodes.items() if p.name == rec.name.split("#")[0] and n.op != "call_module"), None)
    return read_parameters(net, node) if node is not None else {}
