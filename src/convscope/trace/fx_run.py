"""Running a traced graph and recording every node that produces a tensor.

Two runners share one :class:`Emitter` that turns a node's values into a record:

* :class:`RecordingInterpreter` (an ``fx.Interpreter`` over the original module)
  records node by node and watches every stored tensor's version counter. It runs the
  first time a graph is used, and always for graphs where an in-place op nobody
  announced was seen (then with every output cloned).
* the compiled runner: once the interpreter has found a graph clean, the graph is
  rewritten to return every node's value (plus a clone taken right before each
  announced in-place op) and compiled to Python by ``fx.GraphModule``; records are
  then built from that tuple. Same records, without the interpreter's per-node cost
  (see ``benchmarks/bench_trace.py``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import fx, nn

from .fx_trace import CALL_OPS, GraphPlan
from .kinds import Classified, classify_function, classify_module
from .recorder import Recorder

_INPUT = Classified("input", "input", {})


class Emitter:
    """Turns a node's output and inputs into a :class:`LayerRecord`, in program order."""

    def __init__(self, plan: GraphPlan, recorder: Recorder, key: tuple) -> None:
        self.plan = plan
        self.recorder = recorder
        self.classified = plan.classified_for(key)
        self.sources: dict[fx.Node, list[str]] = {}

    def placeholder(self, n: fx.Node, out: Any) -> None:
        if isinstance(out, torch.Tensor) and "input" not in self.recorder.names:
            self.recorder.add("input", _INPUT, [], [], out, node=n.name)
            self.sources[n] = ["input"]

    def call(self, n: fx.Node, out: Any, arguments: Callable[[], tuple[tuple, dict]],
             tensors: list[torch.Tensor], snapshot: torch.Tensor | None, arg0: Any) -> None:
        inputs = _union(self.sources.get(a, ()) for a in n.all_input_nodes)
        if not isinstance(out, torch.Tensor):
            self.sources[n] = inputs
            return
        if snapshot is not None and tensors and tensors[0] is arg0:
            tensors[0] = snapshot  # the in-place op's own input, as it was before the op
        plan = self.plan.nodes[n]
        info = self.classified.get(n)
        if info is None:
            args, kwargs = arguments()
            if n.op == "call_module":
                info = classify_module(plan.module, args, out)
            else:
                info = classify_function(n.target, args, kwargs, out, is_method=n.op == "call_method")
            self.classified[n] = info
        rec = self.recorder.add(plan.name, info, inputs, tensors, out, module=plan.module, node=n.name,
                                owner=plan.owner, first_call=plan.first_call)
        rec.param_count = plan.param_count
        self.sources[n] = [rec.name]


def _union(lists) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen[name] = None
    return list(seen)


def shape_key(x: torch.Tensor) -> tuple:
    return (tuple(x.shape), x.dtype, x.device.type)


class RecordingInterpreter(fx.Interpreter):
    """Runs the graph over the original module and records each tensor-valued node."""

    def __init__(self, net: nn.Module, plan: GraphPlan, recorder: Recorder, key: tuple) -> None:
        super().__init__(net, graph=plan.graph)
        self.plan = plan
        self.recorder = recorder
        self.emitter = Emitter(plan, recorder, key)

    def run_node(self, n: fx.Node) -> Any:
        if n.op not in CALL_OPS:
            out = super().run_node(n)
            if n.op == "placeholder":
                self.emitter.placeholder(n, out)
            return out
        args, kwargs = self.fetch_args_kwargs_from_env(n)
        arg0 = args[0] if args else None
        snapshot = self.recorder.before_inplace(arg0) if self.plan.nodes[n].inplace and args else None
        out = getattr(self, n.op)(n.target, args, kwargs)
        tensors = [self.env[a] for a in n.all_input_nodes
                   if a.op != "get_attr" and isinstance(self.env.get(a), torch.Tensor)]
        self.emitter.call(n, out, lambda: (args, kwargs), tensors, snapshot, arg0)
        return out


class CompiledRecorder:
    """The graph rewritten to return every node's value, compiled once per plan."""

    def __init__(self, net: nn.Module, plan: GraphPlan) -> None:
        graph = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        values: list[fx.Node] = []
        self.index: dict[fx.Node, int] = {}
        self.snapshot: dict[fx.Node, int] = {}
        output = None
        for n in plan.graph.nodes:
            if n.op == "output":
                output = fx.node.map_arg(n.args[0], lambda a: env[a])
                continue
            first = n.args[0] if n.args else None
            if n in plan.nodes and plan.nodes[n].inplace and isinstance(first, fx.Node):
                self.snapshot[n] = len(values)
                values.append(graph.call_method("clone", (env[first],)))
            env[n] = graph.node_copy(n, lambda a: env[a])
            self.index[n] = len(values)
            values.append(env[n])
        graph.output((output, tuple(values)))
        self.module = fx.GraphModule(net, graph)
        self.order = [n for n in plan.graph.nodes if n.op != "output"]
        self.plan = plan

    def run(self, x: torch.Tensor, recorder: Recorder, key: tuple) -> Any:
        out, values = self.module(x)
        index = self.index
        emitter = Emitter(self.plan, recorder, key)
        for n in self.order:
            v = values[index[n]]
            if n.op == "placeholder":
                emitter.placeholder(n, v)
                continue
            if n.op not in CALL_OPS:
                continue
            arg0 = values[index[n.args[0]]] if n.args and isinstance(n.args[0], fx.Node) else None
            snapshot = None
            if n in self.snapshot:
                snapshot = values[self.snapshot[n]]
                recorder.before_inplace(arg0, snapshot)
            tensors = [values[index[a]] for a in n.all_input_nodes
                       if a.op != "get_attr" and isinstance(values[index[a]], torch.Tensor)]
            emitter.call(n, v, lambda n=n: _arguments(n, values, index), tensors, snapshot, arg0)
        return out


def _arguments(n: fx.Node, values: tuple, index: dict[fx.Node, int]) -> tuple[tuple, dict]:
    resolve = lambda a: values[index[a]]  # noqa: E731
    return fx.node.map_arg(n.args, resolve), fx.node.map_arg(n.kwargs, resolve)


def run_fx(net: nn.Module, x: torch.Tensor, plan: GraphPlan, compiled: bool = True) -> tuple[Recorder, Any]:
    """Run the traced graph on ``x``; returns the records and the model's output."""
    key = shape_key(x)
    if plan.safe and compiled:
        if plan.compiled is None:
            plan.compiled = CompiledRecorder(net, plan)
        recorder = Recorder("fx")
        return recorder, plan.compiled.run(x, recorder, key)
    recorder = Recorder("fx", clone_all=plan.safe is False)
    out = RecordingInterpreter(net, plan, recorder, key).run(x)
    if plan.safe is None:
        plan.safe = not recorder.unannounced_inplace()
        if not plan.safe:
            recorder = Recorder("fx", clone_all=True)
            out = RecordingInterpreter(net, plan, recorder, key).run(x)
    return recorder, out
