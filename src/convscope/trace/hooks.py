"""The fallback when torch.fx cannot trace a model: hooks plus a torch-function mode.

Data-dependent control flow (``if x.mean() > 0:``) stops ``symbolic_trace``; an
ordinary forward pass has no such problem. Here every layer (:func:`is_layer`) gets a
forward pre-hook and hook, and a :class:`~torch.overrides.TorchFunctionMode` sees the
torch operations *between* layers (``x + y``, ``torch.cat``, ``F.relu``, ``x.view``),
so residual additions and concatenations still appear as records with two inputs.
Edges come from tensor identity: an input is fed by the record whose output is that
very tensor object.

Hooks act only on the tracing thread's forward (:func:`convscope.probe.observe`), and the
torch-function mode is thread-local, so other threads may run the same model meanwhile.

What this path cannot see: work done outside torch (NumPy, Python numbers), the
internals of layers (they are one record each, as on the fx path), and which branch
was *not* taken; the graph is the one this input took, not the model's code.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..probe import observe
from .fx_trace import is_layer
from .kinds import Classified, classify_function, classify_module, function_name, is_inplace_call
from .recorder import Recorder

# torch calls that look at a tensor rather than compute a new layer
_NOT_LAYERS = frozenset(
    {
        "get",
        "size",
        "dim",
        "numel",
        "item",
        "detach",
        "tolist",
        "to",
        "cpu",
        "cuda",
        "float",
        "double",
        "half",
        "type",
        "contiguous",
        "clone",
        "requires_grad_",
        "data_ptr",
        "is_contiguous",
        "stride",
        "storage_offset",
        "element_size",
        "setitem",
        "len",
        "bool",
        "int",
        "index",
        "is_floating_point",
        "numpy",
        "eq",
        "ne",
        "gt",
        "lt",
        "ge",
        "le",
    }
)


def outermost_layers(net: nn.Module) -> dict[nn.Module, str]:
    """Layers to hook, by qualified name; layers inside a layer are part of it."""
    found: dict[nn.Module, str] = {}

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            qualified = f"{prefix}.{name}" if prefix else name
            if is_layer(child):
                found.setdefault(child, qualified)
            else:
                visit(child, qualified)

    if is_layer(net):
        found[net] = type(net).__name__
    else:
        visit(net, "")
    return found


class _HookTracer(TorchFunctionMode):
    """Records module calls (via hooks) and torch ops between them (via this mode)."""

    def __init__(self, net: nn.Module, recorder: Recorder) -> None:
        super().__init__()
        self.net = net
        self.recorder = recorder
        self.layers = outermost_layers(net)
        self.param_owner = {id(p): name.rpartition(".")[0] for name, p in net.named_parameters()}
        self.param_ids = {id(p) for p in net.parameters()} | {id(b) for b in net.buffers()}
        self.depth = 0
        self.pending: list[tuple[list[torch.Tensor], torch.Tensor | None]] = []
        self.counts: dict[str, int] = {}
        self.seen_owners: set[str] = set()

    # -- inputs ------------------------------------------------------------------------
    def _tensor_args(self, args: Any) -> list[torch.Tensor]:
        flat: list[torch.Tensor] = []

        def walk(a: Any) -> None:
            if isinstance(a, torch.Tensor):
                if id(a) not in self.param_ids:
                    flat.append(a)
            elif isinstance(a, (list, tuple)):
                for b in a:
                    walk(b)

        walk(args)
        return flat

    def _sources(self, tensors: list[torch.Tensor]) -> list[str]:
        names: dict[str, None] = {}
        for t in tensors:
            rec = self.recorder.producer(t)
            if rec is not None:
                names.setdefault(rec.name, None)
        return list(names)

    # -- module hooks ----------------------------------------------------------------------
    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        self.depth += 1
        if self.depth > 1:
            return
        tensors = self._tensor_args(args)
        snapshot = self.recorder.before_inplace(args[0]) if is_inplace_call(None, {}, module) and args else None
        sources = self._sources(tensors)
        if snapshot is not None and tensors and tensors[0] is args[0]:
            tensors[0] = snapshot
        self.pending.append((tensors, sources))

    def hook(self, module: nn.Module, args: tuple, output: Any) -> None:
        self.depth -= 1
        if self.depth > 0:
            return
        tensors, sources = self.pending.pop()
        if not isinstance(output, torch.Tensor):
            return
        name = self.layers[module]
        first = name not in self.seen_owners
        self.seen_owners.add(name)
        rec = self.recorder.add(
            name,
            classify_module(module, args, output),
            sources,
            tensors,
            output,
            module=module,
            owner=name,
            first_call=first,
        )
        rec.param_count = sum(p.numel() for p in module.parameters()) if first else 0

    # -- functional ops between layers -------------------------------------------------------
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.depth > 0:
            return func(*args, **kwargs)
        name = function_name(func)
        tensors = self._tensor_args(list(args) + list(kwargs.values()))
        inplace = is_inplace_call(func, kwargs) and bool(tensors)
        snapshot = self.recorder.before_inplace(args[0]) if inplace and args else None
        sources = self._sources(tensors)
        out = func(*args, **kwargs)
        if (
            not isinstance(out, torch.Tensor)
            or out.dim() == 0
            or not tensors
            or name in _NOT_LAYERS
            or (not inplace and any(out is t for t in tensors))
        ):
            return out
        if snapshot is not None and tensors[0] is args[0]:
            tensors[0] = snapshot
        owner = (
            next(
                (self.param_owner[id(a)] for a in args if id(a) in self.param_owner and isinstance(a, nn.Parameter)),
                None,
            )
            or None
        )
        module = self.net.get_submodule(owner) if owner else None
        first = owner not in self.seen_owners if owner else True
        if owner:
            self.seen_owners.add(owner)
        rec = self.recorder.add(
            owner or self._fx_like_name(name),
            classify_function(func, args, kwargs, out),
            sources,
            tensors,
            out,
            module=module,
            owner=owner,
            first_call=first,
        )
        rec.param_count = sum(p.numel() for p in module.parameters(recurse=False)) if module and first else 0
        return out

    def _fx_like_name(self, base: str) -> str:
        k = self.counts.get(base, 0)
        self.counts[base] = k + 1
        return base if k == 0 else f"{base}_{k}"


def run_hooks(net: nn.Module, x: torch.Tensor, clone_all: bool = False) -> tuple[Recorder, Any]:
    """One forward pass of ``net`` on ``x`` observed by hooks; hooks are removed in any case."""
    recorder = Recorder("hooks", clone_all=clone_all)
    tracer = _HookTracer(net, recorder)
    recorder.add("input", Classified("input", "input", {}), [], [], x)
    with observe(tracer.layers, tracer.hook, tracer.pre_hook), tracer:
        out = net(x)
    if recorder.unannounced_inplace() and not clone_all:
        return run_hooks(net, x, clone_all=True)
    return recorder, out
