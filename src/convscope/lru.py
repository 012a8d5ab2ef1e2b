"""A small thread-safe least-recently-used map, the one bounded cache the server's views share.

Traces, method objects, top-example passes, uploads and attributions are each costly to
make and large to keep, so every cache of them holds a few and drops the one used least
recently. :meth:`LRU.get_or_make` makes a missing value once even when several threads
ask for it together (the others wait for that key only; other keys are served
meanwhile), and never holds the map's lock while making.

An optional ``cost`` bounds what entries weigh together (the pixels of decoded uploads)
as well as how many there are; the newest entry is always kept, even alone over budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most ``size`` entries (and, with ``cost``, at most ``max_cost`` of it in all)."""

    def __init__(self, size: int, cost: Callable[[V], int] | None = None, max_cost: int | None = None) -> None:
        if size < 1:
            raise ValueError(f"an LRU holds at least one entry, not {size}")
        self.size = size
        self._cost, self._max_cost = cost, max_cost
        self._items: OrderedDict[K, V] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()
        self._making: dict[K, threading.Lock] = {}

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value (now the most recently used), or ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: K, value: V) -> V:
        """Store ``value`` as the most recently used entry, dropping the least recent past the bounds."""
        with self._lock:
            if key in self._items:
                self._total -= self._weigh(self._items.pop(key))
            self._items[key] = value
            self._total += self._weigh(value)
            while len(self._items) > 1 and (
                len(self._items) > self.size or (self._max_cost is not None and self._total > self._max_cost)
            ):
                self._total -= self._weigh(self._items.popitem(last=False)[1])
        return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The cached value, else ``make()``'s, stored. Concurrent callers for one key wait for
        the first one's ``make``; if it raises, nothing is stored and the next caller tries."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._making.setdefault(key, threading.Lock())
        with gate:
            try:
                with self._lock:
                    if key in self._items:
                        self._items.move_to_end(key)
                        return self._items[key]
                return self.put(key, make())
            finally:
                with self._lock:
                    if self._making.get(key) is gate:
                        del self._making[key]

    def _weigh(self, value: V) -> int:
        return int(self._cost(value)) if self._cost is not None else 0

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._total = 0

    def keys(self) -> list[K]:
        """The keys, least recently used first (a snapshot)."""
        with self._lock:
            return list(self._items)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __repr__(self) -> str:
        return f"LRU(size={self.size}, entries={len(self)})"
