"""Reading tensors out of a forward pass with forward hooks that are always removed.

The dataset pass needs the penultimate-layer features (the input of the last
``nn.Linear``, i.e. what the classifier head sees) and the report needs the output
maps of a few layers for one sample. Both are a forward hook on named modules; this
module does that once. Hooks are removed in ``finally`` so a failing forward never
leaves a model instrumented.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal, Sequence

import torch
from torch import nn

from ..errors import NotFound

Side = Literal["input", "output"]


def find_module(net: nn.Module, name: str) -> nn.Module:
    """The sub-module with this qualified name, or :class:`NotFound` listing valid names."""
    modules = dict(net.named_modules())
    if name not in modules or name == "":
        names = [n for n in modules if n]
        shown = ", ".join(names[:30]) + (" ..." if len(names) > 30 else "")
        raise NotFound(f"no layer named {name!r}; the model's layers are: {shown}")
    return modules[name]


def last_linear(net: nn.Module) -> str:
    """Qualified name of the last ``nn.Linear`` in registration order (the classifier head)."""
    name = None
    for n, m in net.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    if name is None:
        raise NotFound("the model has no nn.Linear layer, so its penultimate features are undefined; "
                       "name a layer explicitly (layer=...)")
    return name


@contextmanager
def capture(net: nn.Module, layers: Sequence[str], side: Side = "output") -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, every forward of ``net`` stores ``layers``' outputs (or inputs).

    Yields a dict ``{name: tensor}`` filled (detached) by each forward; a later forward
    overwrites it. For ``side="input"`` the first positional input is stored.
    """
    store: dict[str, torch.Tensor] = {}
    handles = []
    try:
        for name in layers:
            module = find_module(net, name)

            def hook(_m, args, output, _name=name):
                value = args[0] if side == "input" else output
                store[_name] = value.detach()

            handles.append(module.register_forward_hook(hook))
        yield store
    finally:
        for h in handles:
            h.remove()
