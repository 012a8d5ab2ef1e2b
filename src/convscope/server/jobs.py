"""Long work off the request thread: feature visualisation, dataset passes, sanity checks.

A request that would take seconds submits a job and returns its id at once; the page
polls ``GET /api/jobs/{id}`` for progress and the result, and ``DELETE`` cancels it.
Every long computation in convscope reports through a ``progress(done, total)``
callback; the job's callback raises :class:`JobCancelled` once cancellation is asked
for, which stops the computation at its next step. Jobs with the same ``key`` are
shared (two clicks on the same channel run one optimisation), and only the most recent
finished jobs are kept, so memory stays bounded.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConvscopeError, NotFound

if TYPE_CHECKING:
    from fastapi import APIRouter

    from .context import ServerContext

Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)


class JobCancelled(Exception):
    """Raised inside a job's computation when the user cancelled it."""


@dataclass
class Job:
    """One unit of background work and what the page needs to know about it."""

    id: str
    kind: str
    key: Hashable | None = None
    status: str = "queued"  # queued, running, done, failed, cancelled
    done: int = 0
    total: int = 0
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def progress(self, done: int, total: int) -> None:
        """The callback handed to the computation; it is also the cancellation point."""
        self.done, self.total = int(done), int(total)
        if self._cancel.is_set():
            raise JobCancelled(self.id)

    def cancel(self) -> None:
        self._cancel.set()
        if self.status == "queued":
            self.status = "cancelled"

    @property
    def finished_or_failed(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    def describe(self, with_result: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "done": self.done,
            "total": self.total,
            "error": self.error,
            "seconds": round((self.finished or time.time()) - self.started, 3),
        }
        if with_result and self.status == "done" and _jsonable(self.result):
            d["result"] = self.result
        return d


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (dict, list, str, int, float, bool))


class JobManager:
    """A small thread pool with progress, cancellation, de-duplication and bounded history."""

    def __init__(self, workers: int = 2, keep: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convscope-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._by_key: dict[Hashable, str] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._keep = keep

    def submit(self, kind: str, work: Callable[[Progress], Any], key: Hashable | None = None) -> Job:
        """Run ``work(progress)`` in the background; an equal ``key`` reuses a live or finished job."""
        with self._lock:
            if key is not None and key in self._by_key:
                existing = self._jobs.get(self._by_key[key])
                if existing is not None and existing.status not in ("failed", "cancelled"):
                    return existing
            job = Job(id=f"job-{next(self._ids)}", kind=kind, key=key)
            self._jobs[job.id] = job
            if key is not None:
                self._by_key[key] = job.id
            self._trim()
        self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Progress], Any]) -> None:
        if job.status == "cancelled":
            job.finished = time.time()
            return
        job.status = "running"
        try:
            job.result = work(job.progress)
            job.status = "done"
        except JobCancelled:
            job.status = "cancelled"
        except ConvscopeError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # a bug: keep the server alive, say what happened
            log.exception("job %s (%s) failed", job.id, job.kind)  # the traceback, in the log before "failed"
            job.status, job.error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        finally:
            if job._cancel.is_set() and job.status == "running":
                job.status = "cancelled"
            job.finished = time.time()

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are kept for a while, then forgotten)")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        job.cancel()
        return job

    def _trim(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished_or_failed]
        for job in finished[: max(0, len(finished) - self._keep)]:
            self._jobs.pop(job.id, None)
            if job.key is not None and self._by_key.get(job.key) == job.id:
                self._by_key.pop(job.key, None)

    def __len__(self) -> int:
        return len(self._jobs)

    def shutdown(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


def router(ctx: ServerContext) -> APIRouter:
    """``GET /api/jobs/{id}`` (progress, then the result) and ``DELETE`` (cancel) for ``ctx.jobs``,
    the pool every view submits background work to; running jobs are cancelled when the server stops."""
    from fastapi import APIRouter

    jobs = ctx.jobs
    r = APIRouter(tags=["jobs"])
    r.add_event_handler("shutdown", jobs.shutdown)

    @r.get("/api/jobs/{job_id}", summary="A background job's progress, then its result")
    def job_status(job_id: str) -> dict[str, Any]:
        return jobs.get(job_id).describe()

    @r.delete("/api/jobs/{job_id}", summary="Cancel a background job (it stops at its next step)")
    def job_cancel(job_id: str) -> dict[str, Any]:
        return jobs.cancel(job_id).describe(with_result=False)

    return r
