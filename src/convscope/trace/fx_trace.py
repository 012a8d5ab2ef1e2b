"""The torch.fx graph of a model and how each of its nodes will be recorded.

``symbolic_trace`` (with :class:`LayerTracer`) turns ``forward`` into a graph once per
model; the graph and its naming plan are cached per module and rebuilt when a
submodule or parameter is replaced or the train/eval mode flips (pass ``cache=False``
to :func:`convscope.trace` after changing a layer's hyper-parameters in place).

Leaves are torch.nn's own layers and subclasses that keep torch.nn's ``forward``;
a subclass with its own ``forward`` (EfficientNet's ``Conv2dStaticSamePadding``:
a ``ZeroPad2d`` then ``F.conv2d``) is traced through, so its padding and its
convolution become two records and each one's arithmetic is exact. A functional op
that uses a module's weight is named after that module (``_conv_stem``), so is one
called inside a module whose class sets ``trace_as_layer = True`` (a Keras ``Add``
layer's ``torch.add``); other functional ops keep the fx node name (``add_3``,
``flatten``); the second call of a shared module is ``name#2``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import fx, nn

from .kinds import Classified, is_inplace_call

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
    module: nn.Module | None  # the called module, or the owner of a functional op's weight
    first_call: bool
    inplace: bool  # overwrites its first argument
    param_count: int  # parameters the record owns (0 on repeat calls)


@dataclass
class GraphPlan:
    """A traced graph, its per-node plan, and what the runners learn about it."""

    graph: fx.Graph
    nodes: dict[fx.Node, NodePlan]
    safe: bool | None = None  # no unannounced in-place op seen (None: not checked yet)
    compiled: Any = None  # the recording GraphModule (built by fx_run on first use)
    taps: dict[tuple, Any] = field(default_factory=dict)  # tapped GraphModules (built by taps.py)
    classified: dict[tuple, dict[fx.Node, Classified]] = field(default_factory=dict)

    def classified_for(self, key: tuple) -> dict[fx.Node, Classified]:
        """Layer descriptions depend on the input shape (adaptive pools): cached per shape."""
        if key not in self.classified and len(self.classified) >= 8:
            self.classified.pop(next(iter(self.classified)))
        return self.classified.setdefault(key, {})


# torch.fx's Tracer patches torch.nn.Module.__call__ for the whole process while it traces:
# two traces at once would see each other's modules, so symbolic tracing is serialised.
# A forward in another thread during a trace is affected too (see prepare_graph).
FX_LOCK = threading.RLock()

_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[tuple, GraphPlan | Exception]] = weakref.WeakKeyDictionary()


def fingerprint(modules: Sequence[nn.Module]) -> tuple:
    """Changes when a submodule or a parameter is replaced or the root's mode flips."""
    ids: list[int] = []
    for m in modules:
        ids.append(id(m))
        ids.extend(id(p) for p in m._parameters.values())
    return (modules[0].training, tuple(ids))


def graph_plan(
    net: nn.Module, cache: bool = True, modules: Sequence[nn.Module] | None = None, any_mode: bool = False
) -> GraphPlan:
    """The fx graph of ``net`` and its plan; raises what fx raised when it cannot trace.

    ``any_mode``: a cached graph of the other train/eval mode will do (for node names only).
    """
    key = fingerprint(modules if modules is not None else list(net.modules()))
    hit = _CACHE.get(net) if cache else None
    if hit is not None and (hit[0] == key or any_mode and hit[0][1] == key[1]):
        if isinstance(hit[1], Exception):
            raise hit[1]
        return hit[1]
    try:
        with FX_LOCK:
            graph = LayerTracer().trace(net)
        plan = GraphPlan(graph, _plan_nodes(net, graph))
    except Exception as exc:  # fx raises many types (TraceError, TypeError, RuntimeError ...)
        if cache:
            _CACHE[net] = (key, exc)
        raise
    if cache:
        _CACHE[net] = (key, plan)
    return plan


def prepare_graph(net: nn.Module) -> bool:
    """Build and cache ``net``'s graph now, before other threads use the model.

    fx's symbolic tracing swaps ``torch.nn.Module.__call__`` process-wide while it runs,
    so a forward pass running in another thread at that moment would be traced instead
    of computed. Servers and other multi-threaded callers build each model's graph once,
    when they load it, and never trace it symbolically again. Returns False when fx
    cannot trace the model (the trace then uses hooks, which are per call and safe).
    """
    try:
        graph_plan(net)
        return True
    except Exception:  # fx raises many types; the hooks fallback handles those models
        return False


def _param_owner(node: fx.Node) -> str | None:
    """Qualified name of the module whose ``weight`` this functional node reads."""
    for arg in node.all_input_nodes:
        if arg.op == "get_attr" and str(arg.target).split(".")[-1] == "weight":
            return str(arg.target).rpartition(".")[0] or None
    return None


def _layer_owner(net: nn.Module, node: fx.Node) -> str | None:
    """The module a functional op is called in, when its class says its ops are the layer
    (``trace_as_layer = True``: the Keras merge layers, so ``torch.add`` records as ``merge``)."""
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None
    path = str(next(reversed(stack.values()))[0])
    try:
        module = net.get_submodule(path)
    except AttributeError:
        return None
    return path if getattr(type(module), "trace_as_layer", False) else None


def read_parameters(net: nn.Module, node: fx.Node) -> dict[str, nn.Parameter]:
    """The parameters a functional node reads directly, by qualified name (``get_attr`` inputs:
    ConvNeXt's ``layer_scale``, a functional net's own ``nn.Parameter``)."""
    found = {}
    for arg in node.all_input_nodes:
        if arg.op == "get_attr":
            try:
                found[str(arg.target)] = net.get_parameter(str(arg.target))
            except AttributeError:  # a buffer or a plain tensor attribute
                pass
    return found


def _plan_nodes(net: nn.Module, graph: fx.Graph) -> dict[fx.Node, NodePlan]:
    """Each call node's plan; every parameter is counted once, by the first record that uses it
    (a module call owns its module's parameters, a functional node those it reads), so the
    summary's rows add up to the net's total."""
    plans: dict[fx.Node, NodePlan] = {}
    seen: set[str] = set()
    counted: set[int] = set()
    for node in graph.nodes:
        if node.op not in CALL_OPS:
            continue
        if node.op == "call_module":
            owner = str(node.target)
            module = net.get_submodule(owner)
            name, recurse = owner, True
            inplace = is_inplace_call(None, {}, module)
        else:
            owner = _param_owner(node) or _layer_owner(net, node)
            module = net.get_submodule(owner) if owner else None
            name, recurse = owner or node.name, False
            inplace = is_inplace_call(node.target, node.kwargs)
        first = owner not in seen if owner else True
        params = list(module.parameters(recurse=recurse)) if module is not None else []
        if node.op != "call_module":
            params += read_parameters(net, node).values()
        count = sum(p.numel() for p in {id(p): p for p in params}.values() if id(p) not in counted)
        counted.update(id(p) for p in params)
        plans[node] = NodePlan(name, owner, module, first, inplace, count)
        if owner:
            seen.add(owner)
    return plans
