"""Trace records that no module produces, as layers: the fx side of :mod:`convscope.probe`'s names.

A functional op (``F.conv2d`` with the net's own ``nn.Parameter``, a residual ``add_1``, a
``cat``) is a record of the trace, named by its fx node, but no module hook can reach it. To
capture it, the net's cached traced graph (:func:`.fx_trace.graph_plan`) is copied with an
``nn.Identity`` inserted right after each wanted node (its users read the identity's output),
and compiled to an ``fx.GraphModule`` that shares the net's layers and parameters. Module hooks
on the identity then see, and may replace, the node's output exactly as for a module layer;
the graph computes what the net's forward computes. Tapped graphs are cached on the plan, so
they follow it: rebuilt when a submodule or parameter is replaced or the train/eval mode flips.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import torch
from torch import fx, nn

from .. import probe
from ..probe import LayerRef
from .fx_run import run_fx
from .fx_trace import GraphPlan, graph_plan

_LOCK = threading.Lock()
_MAX_TAPS = 8  # tapped graphs kept per plan (layer menus pick one node at a time)


def _node_records(plan: GraphPlan, net: nn.Module) -> dict[str, fx.Node]:
    """Record name -> fx node, for the call nodes that are named after themselves, not a module."""
    modules = dict(net.named_modules())
    return {
        p.name: n for n, p in plan.nodes.items() if n.op != "call_module" and p.owner is None and p.name not in modules
    }


def _as_ref(name: str, shape: tuple[int, ...]) -> LayerRef:
    base, sep, k = name.rpartition("#")
    if sep and k.isdigit():
        return LayerRef(base, int(k) - 1, shape)
    return LayerRef(name, 0, shape)


class FxLayers:
    """The :class:`convscope.probe.GraphLayers` of nets torch.fx can trace (nothing for the others)."""

    def names(self, net: nn.Module) -> list[str]:
        try:
            plan = graph_plan(net, any_mode=True)
        except Exception:  # noqa: BLE001 - fx cannot trace this forward: it has module layers only
            return []
        return list(_node_records(plan, net))

    def records(self, net: nn.Module, x: torch.Tensor) -> list[LayerRef]:
        try:
            plan = graph_plan(net)
            with torch.no_grad():
                records, _ = run_fx(net, x, plan)
        except Exception:  # noqa: BLE001 - a model fx cannot run is listed by its module calls
            return []
        return [_as_ref(r.name, tuple(r.output.shape)) for r in records if r.name != "input"]

    def tapped(self, net: nn.Module, names: Sequence[str]) -> tuple[nn.Module, dict[str, nn.Module]]:
        plan = graph_plan(net)
        key = tuple(sorted(set(names)))
        with _LOCK:
            if key not in plan.taps:
                if len(plan.taps) >= _MAX_TAPS:
                    plan.taps.pop(next(iter(plan.taps)))
                plan.taps[key] = _tap(net, plan, key)
            return plan.taps[key]


def _tap(net: nn.Module, plan: GraphPlan, names: Sequence[str]) -> tuple[fx.GraphModule, dict[str, nn.Module]]:
    nodes = _node_records(plan, net)
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    graph.output(graph.graph_copy(plan.graph, env))
    gm = fx.GraphModule(net, graph)
    taps: dict[str, nn.Module] = {}
    for i, name in enumerate(names):
        node = env[nodes[name]]
        attr = f"_convscope_tap_{i}"
        taps[name] = nn.Identity()
        gm.add_submodule(attr, taps[name])
        with graph.inserting_after(node):
            tap = graph.call_module(attr, (node,))
        node.replace_all_uses_with(tap, delete_user_cb=lambda user, tap=tap: user is not tap)
    gm.recompile()
    return gm, taps


probe.use_graph_layers(FxLayers())
