"""convscope.lru.LRU: bounded by count and cost, least recently used out first, made once."""

from __future__ import annotations

import threading
import time

import pytest

from convscope.lru import LRU


def test_least_recently_used_goes_first_and_reads_count_as_use():
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recent
    lru.put("c", 3)
    assert lru.keys() == ["a", "c"] and "b" not in lru and lru.get("b") is None
    assert lru.get_or_make("a", lambda: 99) == 1 and lru.keys() == ["c", "a"]
    lru.clear()
    assert len(lru) == 0 and list(lru) == []


def test_cost_bounds_the_total_but_the_newest_entry_stays():
    lru: LRU[str, bytes] = LRU(10, cost=len, max_cost=10)
    lru.put("a", b"x" * 4)
    lru.put("b", b"x" * 4)
    lru.put("c", b"x" * 4)  # 12 > 10: "a" goes
    assert lru.keys() == ["b", "c"]
    lru.put("b", b"x")  # replacing an entry re-weighs it: 1 + 4
    lru.put("big", b"x" * 50)  # over budget alone: kept, everything older dropped
    assert lru.keys() == ["big"]
    with pytest.raises(ValueError):
        LRU(0)


def test_concurrent_callers_of_one_key_make_it_once_other_keys_are_not_blocked():
    lru: LRU[str, str] = LRU(4)
    calls: list[str] = []
    slow_started, release = threading.Event(), threading.Event()

    def slow() -> str:
        calls.append("slow")
        slow_started.set()
        assert release.wait(10)
        return "made"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(lru.get_or_make("k", slow))) for _ in range(4)]
    for t in threads:
        t.start()
    assert slow_started.wait(10)
    t0 = time.monotonic()
    assert lru.get_or_make("other", lambda: "quick") == "quick"  # served while "k" is being made
    assert time.monotonic() - t0 < 1.0
    release.set()
    for t in threads:
        t.join(10)
    assert results == ["made"] * 4 and calls == ["slow"]


def test_a_failed_make_stores_nothing_and_the_next_caller_tries_again():
    lru: LRU[str, int] = LRU(2)

    def broken() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        lru.get_or_make("k", broken)
    assert "k" not in lru and lru.get_or_make("k", lambda: 7) == 7
