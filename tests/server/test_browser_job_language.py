"""A running job's progress line follows a language switch (issue 12's leftovers).

The line under a running job ("optimising (2048 steps): 12% · 3.1 s") is written at each poll
of the job; its label used to be said once, when the job started, so after a switch the label
stayed in the old language until the job ended. Here, in headless Chromium on a real server:
a long feature visualisation of the default model is started in English, the page is switched
to Chinese while it runs, and the whole line must read Chinese (label included), and so must its
cancel button; then the job is cancelled and its "cancelled" note follows a switch back to English.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server_helpers import LiveServer, digits_dataset

pytestmark = pytest.mark.browser

CATALOGUES = Path(__file__).resolve().parents[2] / "src" / "convscope" / "server" / "static" / "i18n"
LAYER, CHANNEL, STEPS = "conv_2_2", 3, 2048


def catalogue(lang: str) -> dict:
    return json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def live(registry, tmp_path_factory):
    from convscope.server import create_app

    app = create_app(registry=registry)
    app.state.explain.cache_dir = tmp_path_factory.mktemp("features")
    app.state.explain.data = digits_dataset()
    app.state.explain.steps = 24
    registry.warm("default")
    with LiveServer(app) as server:
        yield server


def job_text_starts(page, prefix: str, timeout: float = 20_000) -> str:
    """Wait until the look-for panel's job line starts with prefix; return the line."""
    page.wait_for_function(
        "(p) => (document.querySelector('#lookfor .lookfor-vis .job-text')?.innerText || '').startsWith(p)",
        arg=prefix,
        timeout=timeout,
    )
    return page.locator("#lookfor .lookfor-vis .job-text").inner_text()


def test_running_jobs_label_follows_a_language_switch(live, browser, shots):
    en, zh = catalogue("en"), catalogue("zh-CN")
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live.url + "/?model=default&image=sample-3")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=90_000)
    page.locator(f'canvas.neuron[data-layer="{LAYER}"][data-channel="{CHANNEL}"]').click()
    page.wait_for_function("() => document.body.dataset.detail === 'ready'")
    page.click(".lookfor-offer")
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.featvis)", timeout=90_000)
    page.select_option("#lookfor-steps", str(STEPS))
    english_label = en["lookfor"]["optimising_steps"].replace("{n}", str(STEPS))
    job_text_starts(page, english_label + ": ")
    job_id = page.get_attribute("#lookfor .lookfor-vis .why-progress", "data-job")

    page.select_option("#language-select", "zh-CN")
    chinese_label = zh["lookfor"]["optimising_steps"].replace("{n}", str(STEPS))
    line = job_text_starts(page, chinese_label + "：")  # the label too, while the job still runs
    assert page.get_attribute("body", "data-featvis") == "running", line
    assert line.endswith(" 秒") and english_label not in line
    assert page.locator("#lookfor .task-cancel").inner_text() == zh["widgets"]["cancel"]
    page.locator("#lookfor").screenshot(path=str(shots / "job-language-zh.png"))

    page.click("#lookfor .task-cancel")
    page.wait_for_function("() => document.body.dataset.featvis === 'cancelled'")
    cancelled = zh["widgets"]["cancelled"].replace("{label}", chinese_label)
    assert page.locator("#lookfor .lookfor-vis .why-progress").inner_text() == cancelled
    page.select_option("#language-select", "en")
    page.wait_for_function(
        "(t) => document.querySelector('#lookfor .lookfor-vis .why-progress')?.innerText === t",
        arg=en["widgets"]["cancelled"].replace("{label}", english_label),
    )
    job = live.app.state.jobs.get(job_id)
    assert job.kind == "visualization" and job.status == "cancelled" and job.done < job.total == STEPS
    assert errors == []
