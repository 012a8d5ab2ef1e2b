"""A single background thread for the run's file writes, so the loop never waits on disk.

Checkpoints, snapshots and TensorBoard records are written in the order they were
submitted, by one thread, while the next epoch trains. The caller hands over copies
(never live tensors that training will change). :meth:`BackgroundWriter.wait` blocks
until everything submitted is on disk and re-raises the first error a write hit (a
full disk, say), so a run never reports success for a file it did not write.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class BackgroundWriter:
    """FIFO of write jobs run by one daemon thread."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[..., Any], tuple, dict] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="convscope-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:  # after a failure, later writes are skipped
                    fn, args, kwargs = job
                    fn(*args, **kwargs)
            except BaseException as exc:  # handed to the main thread by wait()
                self._error = exc
            finally:
                self._jobs.task_done()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._raise()
        self._jobs.put((fn, args, kwargs))

    def wait(self) -> None:
        """Block until every submitted job has run; re-raise the first failure."""
        self._jobs.join()
        self._raise()

    def close(self) -> None:
        """Finish pending jobs and stop the thread (re-raises a failure)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
