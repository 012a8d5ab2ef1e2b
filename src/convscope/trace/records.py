"""``LayerRecord``: what one step of a forward pass did, read by every view.

A record holds references, not copies: ``output`` is the tensor the layer produced
(cloned only when a later in-place op would have overwritten it), ``weight`` and
``bias`` are the layer's own parameters. Batch-first tensors throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

# Every kind a record can have. Views switch on these, never on names.
KINDS: tuple[str, ...] = (
    "input",
    "conv",
    "relu",
    "relu6",
    "silu",
    "sigmoid",
    "tanh",
    "activation",
    "maxpool",
    "avgpool",
    "adaptive_avgpool",
    "adaptive_maxpool",
    "batchnorm",
    "linear",
    "flatten",
    "add",
    "mul",
    "concat",
    "dropout",
    "softmax",
    "pad",
    "identity",
    "other",
)
ELEMENTWISE_KINDS = frozenset({"relu", "relu6", "silu", "sigmoid", "tanh", "activation"})
POOL_KINDS = frozenset({"maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"})


@dataclass
class LayerRecord:
    """One recorded step: a module call or a functional op, with its tensors.

    ``name`` is the qualified module name (``layer4.1.conv2``; ``_swish#2`` for the
    second call of a shared module) or, for functional ops, the fx node name
    (``add_3``, ``flatten``). ``inputs`` names the records that feed this one.
    """

    name: str
    kind: str
    op: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    inputs_tensors: list[torch.Tensor] = field(default_factory=list, repr=False)
    output: torch.Tensor | None = field(default=None, repr=False)
    weight: torch.Tensor | None = field(default=None, repr=False)
    bias: torch.Tensor | None = field(default=None, repr=False)
    module: nn.Module | None = field(default=None, repr=False)
    via: str = "fx"
    node: str | None = None  # the fx node name (or the hook path's own counter name)
    owner: str | None = None  # qualified name of the module whose parameters it uses
    first_call: bool = True  # False for the 2nd, 3rd ... call of a shared module
    param_count: int = 0  # parameters this record owns (0 on repeat calls of a shared module)

    @property
    def input(self) -> torch.Tensor | None:
        """The first input tensor (None for the input record)."""
        return self.inputs_tensors[0] if self.inputs_tensors else None

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self.output.shape) if self.output is not None else ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.input.shape) if self.input is not None else ()

    @property
    def macs(self) -> int:
        """Multiply-adds for one sample (conv and linear; 0 where there are none)."""
        from .summary import multiply_adds

        return multiply_adds(self)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.output_shape[1:]) or "-"
        return f"LayerRecord({self.name!r}, {self.kind}, {self.op}, out {shape}, inputs={self.inputs})"
