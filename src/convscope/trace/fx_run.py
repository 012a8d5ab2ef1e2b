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

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from .fx_trace import CALL_OPS, GraphPlan
from .kinds import Classified, classify_function, classify_module, function_kind, module_kind
from .recorder import Recorder
from .records import LayerRecord

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

    def call(
        self,
        n: fx.Node,
        out: Any,
        arguments: Callable[[], tuple[tuple, dict]],
        tensors: list[torch.Tensor],
        snapshot: torch.Tensor | None,
        arg0: Any,
    ) -> None:
        inputs = _union(self.sources.get(a, ()) for a in n.all_input_nodes)
        if not isinstance(out, torch.Tensor):
            # a tuple of tensors passes its inputs on to getitem; a size or a number feeds no data
            self.sources[n] = inputs if _holds_tensor(out) else []
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
        rec = self.recorder.add(
            plan.name,
            info,
            inputs,
            tensors,
            out,
            module=plan.module,
            node=n.name,
            owner=plan.owner,
            first_call=plan.first_call,
        )
        rec.param_count = plan.param_count
        self.sources[n] = [rec.name]


def _holds_tensor(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value)


def _union(lists) -> list[str]:
    seen: dict[str, None] = {}
    for names in lists:
        for name in names:
            seen[name] = None
    return list(seen)


def shape_key(x: torch.Tensor) -> tuple:
    """What decides which nodes give tensors and how they alias: shape, layout, dtype, device."""
    return (tuple(x.shape), x.stride(), x.dtype, x.device.type, torch.is_grad_enabled())


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
        tensors = [
            self.env[a] for a in n.all_input_nodes if a.op != "get_attr" and isinstance(self.env.get(a), torch.Tensor)
        ]
        self.emitter.call(n, out, lambda: (args, kwargs), tensors, snapshot, arg0)
        return out


# in-place layers whose out-of-place twin the compiled graph may call instead of cloning
_OUT_OF_PLACE = {
    nn.ReLU: F.relu,
    nn.ReLU6: F.relu6,
    nn.SiLU: F.silu,
    nn.Hardswish: F.hardswish,
    nn.Hardsigmoid: F.hardsigmoid,
}
_FRESH_KINDS = frozenset(
    {
        "conv",
        "batchnorm",
        "linear",
        "add",
        "mul",
        "concat",
        "maxpool",
        "avgpool",
        "adaptive_avgpool",
        "adaptive_maxpool",
    }
)


class CompiledRecorder:
    """The graph rewritten to return every node's value, compiled once per plan.

    Before an in-place op the rewritten graph takes a clone of the tensor it overwrites,
    or, where nothing else reads that tensor afterwards and it is a fresh layer output,
    calls the op's out-of-place twin instead (``F.relu`` for ``nn.ReLU(inplace=True)``):
    same values, one pass over memory less. The first run for an input shape builds the
    records node by node and keeps a template (which value feeds which record); later
    runs fill the template from the returned values.
    """

    def __init__(self, net: nn.Module, plan: GraphPlan) -> None:
        graph = fx.Graph()
        env: dict[fx.Node, fx.Node] = {}
        values: list[fx.Node] = []
        self.index: dict[fx.Node, int] = {}
        self.snapshot: dict[fx.Node, int] = {}
        twins = _out_of_place_twins(plan)
        output = None
        for n in plan.graph.nodes:
            if n.op == "output":
                output = fx.node.map_arg(n.args[0], lambda a: env[a])
                continue
            first = n.args[0] if n.args else None
            if n in twins:
                env[n] = graph.call_function(twins[n], (env[first],))
            else:
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
        self.templates: dict[tuple, list[Template] | None] = {}

    def run(self, x: torch.Tensor, key: tuple) -> tuple[list[LayerRecord], Any]:
        out, values = self.module(x)
        template = self.templates.get(key)
        if template is not None:
            return [_fill(t, values) for t in template], out
        records = self._record(values, key)
        if key not in self.templates:
            self.templates[key] = _template(records, values)
        return records, out

    def _record(self, values: tuple, key: tuple) -> list[LayerRecord]:
        recorder = Recorder("fx")
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
            tensors = [
                values[index[a]]
                for a in n.all_input_nodes
                if a.op != "get_attr" and isinstance(values[index[a]], torch.Tensor)
            ]
            emitter.call(n, v, lambda n=n: _arguments(n, values, index), tensors, snapshot, arg0)
        return recorder.records


def _out_of_place_twins(plan: GraphPlan) -> dict[fx.Node, Callable]:
    """In-place module calls that may run out of place: nothing reads their input afterwards.

    A shared module qualifies only if every one of its in-place calls does.
    """
    order = {n: i for i, n in enumerate(plan.graph.nodes)}
    candidates: dict[fx.Node, Callable] = {}
    refused: set[int] = set()
    for n, p in plan.nodes.items():
        if not (p.inplace and n.op == "call_module"):
            continue
        twin = _OUT_OF_PLACE.get(type(p.module))
        src = n.args[0] if n.args else None
        ok = (
            twin is not None
            and isinstance(src, fx.Node)
            and src in plan.nodes
            and not plan.nodes[src].inplace
            and _fresh(src, plan)
            and all(order[u] <= order[n] for u in src.users)
        )
        if ok:
            candidates[n] = twin
        else:
            refused.add(id(p.module))
    return {n: f for n, f in candidates.items() if id(plan.nodes[n].module) not in refused}


def _fresh(n: fx.Node, plan: GraphPlan) -> bool:
    """The node's output is a new tensor, not a view or alias of another."""
    if n.op == "call_module":
        return module_kind(plan.nodes[n].module) in _FRESH_KINDS
    return function_kind(n.target) in _FRESH_KINDS and not plan.nodes[n].inplace


Template = tuple[LayerRecord, list[int], int]


def _template(records: list[LayerRecord], values: tuple) -> list[Template] | None:
    """Records as (the record without its tensors, input value indices, output value index),
    or None if a tensor is not one of the graph's values."""
    where = {id(v): i for i, v in enumerate(values) if isinstance(v, torch.Tensor)}
    template = []
    for r in records:
        ids = [id(t) for t in r.inputs_tensors] + [id(r.output)]
        if any(i not in where for i in ids):
            return None
        template.append((replace(r, inputs_tensors=[], output=None), [where[i] for i in ids[:-1]], where[ids[-1]]))
    return template


def _fill(t: Template, values: tuple) -> LayerRecord:
    """The template's record with this run's tensors; every other field as recorded (``replace``
    copies them all, so a field added to LayerRecord is never dropped here)."""
    record, ins, out = t
    return replace(
        record,
        params=dict(record.params),
        inputs=list(record.inputs),
        inputs_tensors=[values[i] for i in ins],
        output=values[out],
    )


def _arguments(n: fx.Node, values: tuple, index: dict[fx.Node, int]) -> tuple[tuple, dict]:
    resolve = lambda a: values[index[a]]  # noqa: E731
    return fx.node.map_arg(n.args, resolve), fx.node.map_arg(n.kwargs, resolve)


def run_fx(net: nn.Module, x: torch.Tensor, plan: GraphPlan, compiled: bool = True) -> tuple[list[LayerRecord], Any]:
    """Run the traced graph on ``x``; returns the records and the model's output."""
    key = shape_key(x)
    if plan.safe and compiled:
        if plan.compiled is None:
            plan.compiled = CompiledRecorder(net, plan)
        return plan.compiled.run(x, key)
    recorder = Recorder("fx", clone_all=plan.safe is False)
    out = RecordingInterpreter(net, plan, recorder, key).run(x)
    if plan.safe is None:
        plan.safe = not recorder.unannounced_inplace()
        if not plan.safe:
            recorder = Recorder("fx", clone_all=True)
            out = RecordingInterpreter(net, plan, recorder, key).run(x)
    return recorder.records, out
