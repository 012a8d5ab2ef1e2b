"""Putting a model in the state an explanation needs, and putting it back exactly.

An explanation runs the net in eval mode with every parameter's ``requires_grad`` off
(we only ever differentiate with respect to inputs or layer activations, so parameter
gradients would be wasted graph). Several explanations may run at once on the same net
(two threads, or a server answering two requests): the state is reference-counted per
net, so the first to enter saves the flags and the last to leave restores them. A naive
save/restore per call would let one thread restore ``requires_grad=True`` while the
other is still running, or leave the model frozen for good.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from torch import nn

_LOCK = threading.Lock()
# id(net) -> [users, [(module, training)], [(param, requires_grad)]]
_STATE: dict[int, list] = {}


@contextmanager
def explaining(net: nn.Module) -> Iterator[nn.Module]:
    """Eval mode and frozen parameters for the duration of the block, restored on exit."""
    key = id(net)
    with _LOCK:
        entry = _STATE.get(key)
        if entry is None:
            modes = [(m, m.training) for m in net.modules()]
            flags = [(p, p.requires_grad) for p in net.parameters()]
            entry = _STATE[key] = [0, modes, flags]
            net.eval()
            for p, _ in flags:
                p.requires_grad_(False)
        entry[0] += 1
    try:
        yield net
    finally:
        with _LOCK:
            entry[0] -= 1
            if entry[0] == 0:
                del _STATE[key]
                for m, training in entry[1]:
                    m.training = training
                for p, flag in entry[2]:
                    p.requires_grad_(flag)
