"""Progress reporting and cancellation for long feature computations.

Long work (activation maximisation, a pass over a dataset) takes two optional
callables so a web server can run it off the request thread, show progress and stop
it: ``progress(done, total)`` after each unit of work, and ``cancel() -> bool``,
checked as often; when it returns True the work stops with :class:`Cancelled`.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressFn = Callable[[int, int], None] | None
CancelFn = Callable[[], bool] | None


class Cancelled(Exception):
    """The caller's ``cancel()`` asked the computation to stop."""


def tick(progress: ProgressFn, cancel: CancelFn, done: int, total: int) -> None:
    """Report ``done`` of ``total`` and honour a cancellation request."""
    if cancel is not None and cancel():
        raise Cancelled(f"cancelled after {done} of {total}")
    if progress is not None:
        progress(done, total)
