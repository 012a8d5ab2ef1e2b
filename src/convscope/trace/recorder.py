"""The store both tracing paths write records into.

Records keep references to the tensors a forward pass produced, so nothing is copied,
with one exception: an op that overwrites its input in place (``nn.ReLU(inplace=True)``,
``x += y``) would silently change an earlier record's output. Before such an op runs,
:meth:`Recorder.before_inplace` swaps every reference to that tensor for a clone. As a
safety net each stored tensor's version counter is checked after the pass; an in-place
change nobody announced makes the caller run again with ``clone_all=True``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .kinds import Classified
from .records import LayerRecord


class Recorder:
    """Collects :class:`LayerRecord` objects in execution order for one forward pass."""

    def __init__(self, via: str, clone_all: bool = False) -> None:
        self.via = via
        self.clone_all = clone_all
        self.records: list[LayerRecord] = []
        self.names: set[str] = set()
        self._producer: dict[int, LayerRecord] = {}  # id(output tensor) -> record
        self._holders: dict[int, list[tuple[LayerRecord, int]]] = {}  # slot -1: output, i: inputs_tensors[i]
        self._seen: dict[int, tuple[torch.Tensor, int]] = {}  # id -> (tensor, version when stored)
        self._alive: list[Any] = []  # keeps originals alive so ids stay unique while tracing

    # -- writing -------------------------------------------------------------------
    def unique(self, name: str) -> str:
        base, k = name, 2
        while name in self.names:
            name, k = f"{base}#{k}", k + 1
        return name

    def add(
        self,
        name: str,
        info: Classified,
        inputs: list[str],
        tensors: list[torch.Tensor],
        output: torch.Tensor,
        module: nn.Module | None = None,
        node: str | None = None,
        owner: str | None = None,
        first_call: bool = True,
    ) -> LayerRecord:
        name = self.unique(name)
        self.names.add(name)
        stored_inputs = [self._stored(t) for t in tensors]
        stored_output = output.detach().clone() if self.clone_all else output
        rec = LayerRecord(
            name=name,
            kind=info.kind,
            op=info.op,
            params=dict(info.params),
            inputs=inputs,
            inputs_tensors=stored_inputs,
            output=stored_output,
            weight=info.weight,
            bias=info.bias,
            module=module,
            via=self.via,
            node=node,
            owner=owner,
            first_call=first_call,
        )
        self.records.append(rec)
        if self.clone_all:
            self._alive.append(output)
        self._producer[id(output)] = rec
        self._hold(stored_output, rec, -1)
        for i, t in enumerate(stored_inputs):
            self._hold(t, rec, i)
        return rec

    def _stored(self, t: torch.Tensor) -> torch.Tensor:
        if not self.clone_all:
            return t
        producer = self._producer.get(id(t))
        return producer.output if producer is not None else t.detach().clone()

    def _hold(self, t: torch.Tensor, rec: LayerRecord, slot: int) -> None:
        holders = self._holders.setdefault(id(t), [])
        if not holders:
            self._seen[id(t)] = (t, t._version)
        holders.append((rec, slot))

    def producer(self, t: Any) -> LayerRecord | None:
        """The record whose output is this very tensor object, if any."""
        return self._producer.get(id(t)) if isinstance(t, torch.Tensor) else None

    def before_inplace(self, t: Any, snapshot: torch.Tensor | None = None) -> torch.Tensor | None:
        """``t`` is about to be overwritten: records keep (and the caller gets) a clone of its value.

        ``snapshot`` is that clone when the caller already took it (the compiled runner
        takes it inside the graph, right before the op).
        """
        if not isinstance(t, torch.Tensor):
            return None
        holders = self._holders.pop(id(t), None) or []
        self._seen.pop(id(t), None)
        if snapshot is None:
            snapshot = t.detach().clone()  # also the in-place op's own recorded input
        for rec, slot in holders:
            if slot < 0:
                rec.output = snapshot
            else:
                rec.inputs_tensors[slot] = snapshot
        self._holders[id(snapshot)] = holders
        self._seen[id(snapshot)] = (snapshot, snapshot._version)
        self._alive.append(t)
        return snapshot

    def unannounced_inplace(self) -> bool:
        """True when a stored tensor changed after it was stored (an in-place op we missed)."""
        return any(t._version != v for t, v in self._seen.values())
