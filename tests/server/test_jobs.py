"""Background jobs: progress, results, cancellation, de-duplication and bounded memory."""

from __future__ import annotations

import threading
import time

import pytest

from convscope.errors import ConvscopeError, NotFound
from convscope.server.jobs import JobManager


def wait(job, timeout=10.0):
    end = time.time() + timeout
    while not job.finished_or_failed and time.time() < end:
        time.sleep(0.01)
    assert job.finished_or_failed, job


def test_result_and_progress_are_reported():
    jobs = JobManager()

    def work(progress):
        for i in range(5):
            progress(i + 1, 5)
        return {"sum": 15}

    job = jobs.submit("demo", work)
    wait(job)
    assert job.status == "done" and (job.done, job.total) == (5, 5)
    assert jobs.get(job.id).describe()["result"] == {"sum": 15}


def test_cancel_stops_the_work_at_its_next_step():
    jobs = JobManager()
    started, steps = threading.Event(), []

    def work(progress):
        started.set()
        for i in range(1000):
            steps.append(i)
            progress(i, 1000)
            time.sleep(0.005)
        return "finished"

    job = jobs.submit("slow", work)
    started.wait(5)
    jobs.cancel(job.id)
    wait(job)
    assert job.status == "cancelled" and len(steps) < 1000 and job.result is None


def test_user_errors_fail_the_job_with_the_message_and_bugs_do_not_kill_the_pool():
    jobs = JobManager()

    def bad(progress):
        raise ConvscopeError("layer 'x' is not spatial")

    def bug(progress):
        return 1 / 0

    a, b = jobs.submit("a", bad), jobs.submit("b", bug)
    wait(a), wait(b)
    assert a.status == "failed" and a.error == "layer 'x' is not spatial"
    assert b.status == "failed" and "ZeroDivisionError" in b.error
    c = jobs.submit("c", lambda progress: 42)
    wait(c)
    assert c.result == 42


def test_same_key_shares_one_job_and_history_is_bounded():
    jobs = JobManager(keep=3)
    calls = []
    first = jobs.submit("k", lambda p: calls.append(1) or "x", key=("m", "layer", 0))
    wait(first)
    again = jobs.submit("k", lambda p: calls.append(1) or "y", key=("m", "layer", 0))
    assert again is first and calls == [1]
    for i in range(10):
        wait(jobs.submit("n", lambda p, i=i: i, key=i))
    assert len(jobs) <= 4
    with pytest.raises(NotFound):
        jobs.get("job-999999")


def test_models_are_symbolically_traced_once_when_loaded_never_while_jobs_run(monkeypatch):
    """fx patches nn.Module.__call__ process-wide while tracing, so a dataset pass running in
    a job thread during a page's first trace was computed with fx proxies (seen in CI).
    The registry builds each model's graph when it loads it; later traces reuse it."""
    from convscope.server import Registry
    from convscope.trace import fx_trace

    calls = []
    original = fx_trace.LayerTracer.trace

    def counting(self, root, *args, **kwargs):
        calls.append(type(root).__name__)
        return original(self, root, *args, **kwargs)

    monkeypatch.setattr(fx_trace.LayerTracer, "trace", counting)
    registry = Registry(["mnist-cnn"])
    registry.load_all()
    assert len(calls) == 1  # built at load, before any job could use the model
    registry.trace("mnist-cnn", registry.entry("mnist-cnn").samples[0].id)
    assert len(calls) == 1  # the page's trace reuses the graph: no process-wide patching later


def test_a_bug_in_a_job_is_logged_with_its_traceback_not_printed(caplog, capsys):
    """A failing job's traceback goes to the ``convscope.server.jobs`` logger (where a server's
    log handlers see it), not straight to stderr."""
    import logging

    jobs = JobManager()

    def bug(progress):
        return {}["missing"]

    with caplog.at_level(logging.ERROR, logger="convscope.server.jobs"):
        job = jobs.submit("buggy", bug)
        wait(job)
        jobs.shutdown()
    assert job.status == "failed" and job.error == "internal error: KeyError: 'missing'"
    (rec,) = [r for r in caplog.records if r.name == "convscope.server.jobs"]
    assert rec.levelno == logging.ERROR and job.id in rec.getMessage() and "buggy" in rec.getMessage()
    assert rec.exc_info is not None and rec.exc_info[0] is KeyError
    assert "Traceback" not in capsys.readouterr().err
