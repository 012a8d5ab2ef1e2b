"""What every explanation of one model can share, so that the one-call form
``cs.attribute(net, x, method=...)`` (a new method object per call) runs as fast as a
method object the caller keeps: the resolved target layer, the output width and the
BatchNorm-folded / channels-last copy each cost a forward or a deep copy to make.

Entries are keyed weakly by the net (they die with the model) and by what the net is
now: :func:`~convscope.probe.model_version` (a replaced module or a weight changed in
place) and every module's plain settings (numbers, strings, flags such as a module's
``inplace`` or a user's own switch), so a changed model gets a new entry. They never hold
the net itself, which would keep it alive.
Thread-safe: an entry is built once (:meth:`convscope.lru.LRU.get_or_make`), so a copy is made once.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from torch import nn

from ..lru import LRU
from ..probe import model_version

T = TypeVar("T")
PER_NET = 16  # entries kept per model (layers x input shapes x copy kinds): copies of big nets are tens of MB


_PLAIN = (bool, int, float, str, type(None))


def current(net: nn.Module) -> tuple:
    """A key for the net as it is now: its tensors and modules, and their plain settings
    (``training`` left out: explanations switch it and put it back)."""
    settings = tuple(
        tuple((k, v) for k, v in vars(m).items() if k != "training" and not k.startswith("_") and isinstance(v, _PLAIN))
        for m in net.modules()
    )
    return model_version(net), settings


class PerNet:
    """``get(net, key, build)``: ``build()``'s value for (net as it is now, key), built once."""

    def __init__(self, size: int = PER_NET) -> None:
        self._size = size
        self._data: weakref.WeakKeyDictionary[nn.Module, LRU[Hashable, Any]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self, net: nn.Module, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            slot = self._data.get(net)
            if slot is None:
                slot = self._data[net] = LRU(self._size)
        return slot.get_or_make((current(net), key), build)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


SHARED = PerNet()
