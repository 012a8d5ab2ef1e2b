"""Tracing with torch.fx: the graph of the forward pass, functional ops included.

``symbolic_trace`` turns ``forward`` into a graph once per model (cached); each trace
then runs that graph with an :class:`fx.Interpreter` over the *original* module (so
current weights are always used) and records every node that produces a tensor.

Leaves are torch.nn's own layers and subclasses that keep torch.nn's ``forward``;
a subclass with its own ``forward`` (EfficientNet's ``Conv2dStaticSamePadding``:
a ``ZeroPad2d`` then ``F.conv2d``) is traced through, so its padding and its
convolution become two records and each one's arithmetic is exact. A functional op
that uses a module's weight is named after that module (``_conv_stem``), other
functional ops keep the fx node name (``add_3``, ``flatten``).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from .kinds import Classified, classify_function, classify_module, is_inplace_call
from .recorder import Recorder

CALL_OPS = ("call_module", "call_function", "call_method")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def is_layer(module: nn.Module) -> bool:
    """A leaf for tracing: a torch.nn layer, or a subclass that keeps torch.nn's ``forward``."""
    if isinstance(module, _CONTAINERS):
        return False
    forward_module = getattr(type(module).forward, "__module__", "") or ""
    return forward_module.startswith("torch.nn") and type(module).forward is not nn.Module.forward


class LayerTracer(fx.Tracer):
    """fx tracer whose leaves are :func:`is_layer` modules."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_layer(m)


@dataclass
class NodePlan:
    """What a call node records as, decided once per graph."""

    name: str
    owner: str | None  # module whose parameters the node uses
    first_call: bool
    inplace: bool
    recurse: bool  # count the owner's parameters recursively (leaf module) or its own only


@dataclass
class GraphPlan:
    graph: fx.Graph
    nodes: dict[fx.Node, NodePlan]


_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, GraphPlan | Exception]]" = weakref.WeakKeyDictionary()


def _fingerprint(net: nn.Module) -> tuple:
    """Changes when a submodule is replaced or the train/eval mode flips."""
    return (net.training, tuple(id(m) for m in net.modules()))


def graph_plan(net: nn.Module, cache: bool = True) -> GraphPlan:
    """The fx graph of ``net`` and its naming plan; raises what fx raised when it cannot trace."""
    key = _fingerprint(net)
    hit = _CACHE.get(net) if cache else None
    if hit is not None and hit[0] == key:
        if isinstance(hit[1], Exception):
            raise hit[1]
        return hit[1]
    try:
        graph = LayerTracer().trace(net)
        plan = GraphPlan(graph, _plan_nodes(net, graph))
    except Exception as exc:  # fx raises many types (TraceError, TypeError, RuntimeError ...)
        if cache:
            _CACHE[net] = (key, exc)
        raise
    if cache:
        _CACHE[net] = (key, plan)
    return plan


def _param_owner(node: fx.Node) -> str | None:
    """Qualified name of the module whose ``weight`` this functional node reads."""
    for arg in node.all_input_nodes:
        if arg.op == "get_attr" and str(arg.target).split(".")[-1] == "weight":
            owner = str(arg.target).rpartition(".")[0]
            return owner or None
    return None


def _plan_nodes(net: nn.Module, graph: fx.Graph) -> dict[fx.Node, NodePlan]:
    plans: dict[fx.Node, NodePlan] = {}
    seen: set[str] = set()
    for node in graph.nodes:
        if node.op not in CALL_OPS:
            continue
        if node.op == "call_module":
            owner = str(node.target)
            name, recurse = owner, True
            inplace = is_inplace_call(None, {}, net.get_submodule(owner))
        else:
            owner = _param_owner(node)
            name, recurse = owner or node.name, False
            inplace = is_inplace_call(node.target, node.kwargs)
        plans[node] = NodePlan(name, owner, owner not in seen if owner else True, inplace, recurse)
        if owner:
            seen.add(owner)
    return plans


def _owned_params(module: nn.Module | None, recurse: bool) -> int:
    return sum(p.numel() for p in module.parameters(recurse=recurse)) if module is not None else 0


class RecordingInterpreter(fx.Interpreter):
    """Runs the graph over the original module and records each tensor-valued node."""

    def __init__(self, net: nn.Module, plan: GraphPlan, recorder: Recorder) -> None:
        super().__init__(net, graph=plan.graph)
        self.plan = plan
        self.recorder = recorder
        self.sources: dict[fx.Node, list[str]] = {}

    def run_node(self, n: fx.Node) -> Any:
        if n.op == "placeholder":
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and "input" not in self.recorder.names:
                self.recorder.add("input", Classified("input", "input", {}), [], [], out, node=n.name)
                self.sources[n] = ["input"]
            return out
        if n.op not in CALL_OPS:
            self.sources[n] = []
            return super().run_node(n)
        plan = self.plan.nodes[n]
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        snapshot = self.recorder.before_inplace(args[0]) if plan.inplace and args else None
        out = getattr(self, n.op)(n.target, args, kwargs)
        inputs = _union(self.sources.get(a, []) for a in n.all_input_nodes)
        if not isinstance(out, torch.Tensor):
            self.sources[n] = inputs
            return out
        tensors = [self.env[a] for a in n.all_input_nodes
                   if a.op != "get_attr" and isinstance(self.env.get(a), torch.Tensor)]
        if snapshot is not None and tensors and tensors[0] is args[0]:
            tensors[0] = snapshot
        if n.op == "call_module":
            module = self.module.get_submodule(n.target)
            info = classify_module(module, args, out)
        else:
            module = self.module.get_submodule(plan.owner) if plan.owner else None
            info = classify_function(n.target, args, kwargs, out, is_method=n.op == "call_method")
        count = _owned_params(module, plan.recurse) if plan.first_call else 0
        rec = self.recorder.add(plan.name, info, inputs, tensors, out, module=module, node=n.name,
                                owner=plan.owner, first_call=plan.first_call)
        rec.param_count = count
        self.sources[n] = [rec.name]
        return out


def _union(lists) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen.setdefault(name, None)
    return list(seen)


def run_fx(net: nn.Module, x: torch.Tensor, plan: GraphPlan) -> tuple[Recorder, Any]:
    """Run the traced graph on ``x``; returns the records and the model's output."""
    recorder = Recorder("fx")
    out = RecordingInterpreter(net, plan, recorder).run(x)
    if recorder.unannounced_inplace():
        recorder = Recorder("fx", clone_all=True)
        out = RecordingInterpreter(net, plan, recorder).run(x)
    return recorder, out
