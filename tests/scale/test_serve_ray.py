"""The page's dataset job on Ray: a real server on 127.0.0.1 (``convscope serve --engine ray``'s app)
with a local Ray of 2 actors, driven through the HTTP API the page uses.

The job's progress goes from 0 to the whole split through the blocks in between, the summary and
the mistakes equal the local engine's, bit for bit, and the actors read the split themselves;
cancelling the job (``DELETE /api/jobs/{id}``, what the page's cancel button sends) ends it as
cancelled and kills the actors (their pids gone), and the next pass starts a fresh pool; the
page's dataset view in Chromium shows a pass the actors ran with the local accuracy. One
Ray start for the module; the 4,000-image training split of the embedded MNIST subset keeps the
job long enough (a second or two) to watch and to cancel.
"""

from __future__ import annotations

import time

import httpx
import pytest

from convscope.analysis import evaluate, misclassified, mistakes_json, run_pass
from convscope.data import load_splits
from convscope.models import load_model
from convscope.scale import RayEngine
from convscope.server import create_app

from live_server import LiveServer, wait_for_job
from ray_processes import alive

ray = pytest.importorskip("ray")

PASS = "/api/models/default/dataset/train/pass"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(client, engine, the server's model, its address) for a server whose dataset view runs on Ray."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))  # no pass cached from elsewhere
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        engine = RayEngine(workers=2, blocks_per_worker=8)
        app = create_app(["default"], data="mnist", engine=engine)
        try:
            with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=60) as client:
                yield client, engine, app.state.registry.entry("default").model, live.url
        finally:
            engine.close()
            ray.shutdown()


def test_serve_engine_ray_gives_the_dataset_view_a_ray_engine(fake_uvicorn):
    from convscope.cli.main import main

    argv = ["serve", "--engine", "ray", "--workers", "3", "--ray-address", "10.0.0.9:6379", "--ship-data"]
    assert main([*argv, "--port", "8125"]) == 0
    app, _ = fake_uvicorn[0]
    engine = app.state.context.engine
    assert isinstance(engine, RayEngine) and (engine.workers, engine.address, engine.ship_data) == (
        3,
        "10.0.0.9:6379",
        True,
    )
    assert not engine._pools  # lazy: Ray is joined at the first pass, and the pools were closed on exit
    assert main(["serve", "--port", "8126"]) == 0
    assert fake_uvicorn[1][0].state.context.engine == "local"


def test_cancelling_the_job_cancels_the_ray_tasks(served):
    client, engine, model, _ = served
    pids = engine.pids(model)
    assert len(pids) == 2 and all(alive(p) for p in pids)
    job = client.post(PASS).json()
    deadline = time.time() + 60
    while job["done"] == 0 and job["status"] in ("queued", "running"):
        assert time.time() < deadline, job
        time.sleep(0.01)
        job = client.get(f"/api/jobs/{job['id']}").json()
    assert job["status"] == "running" and 0 < job["done"] < job["total"] == 4000, job
    client.delete(f"/api/jobs/{job['id']}")
    end = wait_for_job(client, job)
    assert end["status"] == "cancelled" and end["done"] < end["total"], end
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    assert not any(alive(p) for p in pids)
    assert client.get("/api/models/default/dataset").json()["ready"]["train"] is False


def test_the_pass_runs_on_the_actors_with_progress_and_the_local_numbers(served):
    client, engine, model, _ = served
    before = engine.stats(model)  # a fresh pool if the cancel test killed the last one
    job = client.post(PASS).json()
    seen = [job["done"] / max(1, job["total"] or 1)]
    deadline = time.time() + 120
    while job["status"] in ("queued", "running"):
        assert time.time() < deadline, job
        time.sleep(0.01)
        job = client.get(f"/api/jobs/{job['id']}").json()
        if job["total"]:
            seen.append(job["done"] / job["total"])
    assert job["status"] == "done", job
    assert seen[0] == 0 and seen[-1] == 1 and any(0 < f < 1 for f in seen), seen
    assert seen == sorted(seen)
    after = engine.stats(model)
    assert after["read"] - before["read"] == 4000 and after["shipped"] == before["shipped"]

    local = run_pass(load_model("default"), load_splits("mnist", download=False, progress=False)["train"])
    summary = client.get("/api/models/default/dataset/train/summary").json()
    expected = evaluate(local)
    for key in ("count", "accuracy", "mean_loss", "per_class_accuracy", "confusion", "errors"):
        assert summary[key] == expected[key], key
    mistakes = client.get("/api/models/default/dataset/train/mistakes", params={"limit": 5000}).json()["rows"]
    want = mistakes_json(misclassified(local), local)
    assert [(m["row"], m["index"], m["pred"], m["confidence"]) for m in mistakes] == [
        (m["row"], m["index"], m["pred"], m["confidence"]) for m in want
    ]


@pytest.mark.browser
def test_the_page_shows_the_pass_the_actors_ran(served, browser, shots):
    """The dataset view in Chromium on the Ray server: its pass (the test split) runs on the actors,
    the bar ends full and the accuracy shown is the local engine's."""
    client, engine, model, url = served
    before = engine.stats(model)
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    try:
        page.goto(url + "/?view=dataset")
        page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.dataset)", timeout=120_000)
        assert page.evaluate("document.body.dataset.dataset") == "ready", page.locator("#dataset-view").inner_text()
        page.screenshot(path=str(shots / "dataset-on-ray.png"), full_page=True)
        shown = float(page.locator("#dataset-view .big").first.get_attribute("data-value"))
        bar = page.locator("#dataset-view .job-bar span").first.evaluate("(e) => e.style.width")
    finally:
        page.close()
    after = engine.stats(model)
    test = load_splits("mnist", download=False, progress=False)["test"]
    assert after["read"] - before["read"] == len(test) == 500
    assert shown == evaluate(run_pass(load_model("default"), test, progress=False))["accuracy"]
    assert bar == "100%"
