"""The training view in headless Chromium while a real ``convscope train`` runs on digits.

The run starts after the page is open: the run appears, its curves grow epoch by epoch
without a reload, the drawn values are the metrics file's, the epoch slider shows each
snapshot, and a second run can be drawn on the same plot. Screenshots go to
``$CONVSCOPE_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_words import train_words

from server_helpers import LiveServer

pytestmark = pytest.mark.browser
EPOCHS = 3


def points(page, chart: str, key: str, run: str) -> list[float]:
    return page.evaluate(
        f"""[...document.querySelectorAll('svg.{chart} g.series[data-key="{key}"][data-run="{run}"] circle')]
            .map(c => +c.dataset.value)"""
    )


def training_view(browser, url: str):
    """The training view in a new page, and the list its console errors and page errors go to."""
    page = browser.new_page(viewport={"width": 1300, "height": 820})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/?view=training")
    return page, errors


def test_curves_update_live_while_training_runs(browser, tmp_path):
    from convscope.server import create_app

    runs = tmp_path / "runs"
    runs.mkdir()
    app = create_app(["default"], runs=runs)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with LiveServer(app) as server:
        page, errors = training_view(browser, server.url)
        page.wait_for_function("() => document.body.dataset.training === 'empty'")
        assert "no training runs" in page.locator(".runs-side").inner_text()
        proc = subprocess.Popen(
            # 40x40 inputs: epochs of a few seconds even on an idle machine, so the
            # page (polling every 1.5 s) must show the curves growing mid-run
            [sys.executable, "-m", "convscope", *train_words(runs / "x", EPOCHS, "--input-size", "40", device=None)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            seen = set()
            # the page polls: the run appears, then its curves grow one epoch at a time
            page.wait_for_function("() => document.body.dataset.training === 'ready'", timeout=120_000)
            while proc.poll() is None or len(seen) == 0 or max(seen) < EPOCHS:
                n = len(points(page, "chart-loss", "val_loss", "x"))
                seen.add(n)
                if n >= EPOCHS:
                    break
                page.wait_for_timeout(300)
                assert proc.poll() in (None, 0), proc.stdout.read().decode()
            out = proc.communicate(timeout=180)[0].decode()
            assert proc.returncode == 0, out
        finally:
            if proc.poll() is None:
                proc.kill()
        assert seen & set(range(1, EPOCHS)), f"the curves never showed an intermediate epoch count: {seen}"
        page.wait_for_function("() => document.querySelector('.run-row .run-status').textContent === 'finished'")
        metrics = [json.loads(line) for line in (runs / "x" / "metrics.jsonl").read_text().splitlines()]
        assert points(page, "chart-loss", "train_loss", "x") == pytest.approx([m["train_loss"] for m in metrics])
        assert points(page, "chart-acc", "val_acc", "x") == pytest.approx([m["val_acc"] for m in metrics])
        # snapshots: the slider follows the latest epoch, and goes back to the initial weights
        page.wait_for_function(f"() => document.body.dataset.snapshot === '{EPOCHS}'")
        assert page.locator("canvas.kernel").count() == 10 and page.locator("canvas.act").count() == 10
        page.locator(".epoch-slider").fill("0")
        page.wait_for_function("() => document.body.dataset.snapshot === '0'")
        assert "initial weights" in page.locator(".epoch-label").inner_text()
        shots = os.environ.get("CONVSCOPE_SCREENSHOTS")
        # compare: a second run drawn on the same plots
        shutil.copytree(runs / "x", runs / "y")
        lines = (runs / "y" / "metrics.jsonl").read_text().splitlines()[:2]
        (runs / "y" / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        page.wait_for_selector('.run-row[data-run="y"]')
        page.locator('.run-row[data-run="y"] input[type=checkbox]').check()
        page.wait_for_function(
            """() => document.querySelectorAll('svg.chart-loss g.series[data-run="y"] circle').length === 4"""
        )
        assert len(points(page, "chart-loss", "val_loss", "y")) == 2
        assert len(points(page, "chart-loss", "val_loss", "x")) == EPOCHS
        if shots:
            page.locator(".epoch-slider").fill(str(EPOCHS))
            page.wait_for_function(f"() => document.body.dataset.snapshot === '{EPOCHS}'")
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / "training.png"))
        assert not errors, errors
        page.close()


def write_metrics(folder: Path, epochs, garbled_after: int | None = None) -> list[dict]:
    """A run's metrics.jsonl as the trainer writes it, one line per epoch; optionally a
    garbled line (a write cut short by a full disk) after epoch ``garbled_after``."""
    folder.mkdir(parents=True)
    records = [
        {"epoch": e, "train_loss": 2.0 / e, "val_loss": 2.5 / e, "train_acc": 0.5 + e / 20, "val_acc": 0.4 + e / 20}
        for e in epochs
    ]
    lines = []
    for r in records:
        lines.append(json.dumps(r))
        if r["epoch"] == garbled_after:
            lines.append('{"epoch": 2, "train_loss": 0.9')
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return records


def test_damaged_runs_show_their_warnings_and_hide_no_other_run(browser, tmp_path, monkeypatch, shots):
    """A run with a garbled metrics.jsonl line and a run that cannot be described at all are
    listed with what is wrong, as text under the run; the other runs still show and draw.

    The undescribable run is sorted first: the page used to select it, and its metrics
    request failed, so the whole view showed an error instead of any curve."""
    from convscope.server import create_app
    from convscope.server.routes_runs import RunIndex

    runs = tmp_path / "runs"
    write_metrics(runs / "broken", [1, 2])
    damaged = write_metrics(runs / "damaged", [1, 3], garbled_after=1)
    good = write_metrics(runs / "good", [1, 2, 3])
    # no file of ours makes describe() fail (it skips what it cannot read), so the disk does:
    # reading the run folder is refused, as on a share that went away
    describe = RunIndex.describe

    def refusing(self, run, *args, **kwargs):
        if run.name == "broken":
            raise PermissionError(13, "Permission denied", str(run.path / "metrics.jsonl"))
        return describe(self, run, *args, **kwargs)

    monkeypatch.setattr(RunIndex, "describe", refusing)
    with LiveServer(create_app(["default"], runs=runs)) as server:
        page, errors = training_view(browser, server.url)
        page.wait_for_function("() => ['ready', 'error', 'empty'].includes(document.body.dataset.training)")
        assert page.evaluate("document.body.dataset.training") == "ready", page.locator(".runs-side").inner_text()
        rows = page.locator(".run-row")
        assert [rows.nth(i).get_attribute("data-run") for i in range(rows.count())] == ["broken", "damaged", "good"]
        broken = page.locator('.run-row[data-run="broken"]')
        assert broken.locator(".run-status").inner_text() == "error"
        assert broken.locator(".run-warning").all_inner_texts() == [
            f"⚠ cannot be read: PermissionError: [Errno 13] Permission denied: '{runs / 'broken' / 'metrics.jsonl'}'"
        ]
        assert page.locator('.run-row[data-run="damaged"] .run-warning').all_inner_texts() == [
            "⚠ metrics.jsonl:2 is not JSON; skipped"
        ]
        assert page.locator('.run-row[data-run="good"] .run-warning').count() == 0
        # the first run that can be drawn is: the damaged one, with the epochs it has
        page.wait_for_function(
            """() => document.querySelectorAll('svg.chart-loss g.series[data-run="damaged"] circle').length === 4"""
        )
        assert points(page, "chart-loss", "val_loss", "damaged") == pytest.approx([r["val_loss"] for r in damaged])
        assert page.locator(".run-row.active").get_attribute("data-run") == "damaged"
        page.screenshot(path=str(shots / "training-warnings.png"))
        # the good run draws all its epochs; the broken one offers nothing to select
        page.locator('.run-row[data-run="good"]').click()
        page.wait_for_function(
            """() => document.querySelectorAll('svg.chart-acc g.series[data-run="good"] circle').length === 6"""
        )
        assert points(page, "chart-acc", "val_acc", "good") == pytest.approx([r["val_acc"] for r in good])
        page.locator('.run-row[data-run="broken"]').click()
        page.wait_for_timeout(1600)  # one more poll of the list (every 1.5 s)
        assert page.locator(".run-row.active").get_attribute("data-run") == "good"
        assert page.evaluate("document.body.dataset.training") == "ready"
        assert page.locator('.run-row[data-run="broken"] input[type=checkbox]').count() == 0
        assert not errors, errors
        page.close()
