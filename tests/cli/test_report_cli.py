"""``convscope report``: the file it writes opens offline in headless Chromium with every image drawn."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.cli.main import main


def _load_helper():
    path = Path(__file__).resolve().parents[1] / "analysis" / "digits_run.py"
    spec = importlib.util.spec_from_file_location("digits_run_helper", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path, _ = _load_helper().train_digits_run(tmp_path_factory.mktemp("run"))
    return path


def report(checkpoint: Path, out: Path, embedding: str, *extra: str) -> int:
    """``convscope report`` of the digits run, quiet, its pass cached beside ``out``."""
    words = ["report", "--model", str(checkpoint), "--data", "digits", "--out", str(out), "--embedding", embedding]
    return main([*words, "--cache-dir", str(out.parent / "cache"), "-q", *extra])


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, checkpoint) -> Path:
    out = tmp_path_factory.mktemp("out") / "report.html"
    code = report(checkpoint, out, "tsne", "--device", "cpu")
    assert code == 0 and out.is_file()
    return out


@pytest.mark.browser
def test_report_renders_offline_in_chromium(report_file, browser, tmp_path):
    requests: list[str] = []
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    try:
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report_file.as_uri(), wait_until="load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        headings = page.evaluate("Array.from(document.querySelectorAll('h2')).map(h => h.textContent)")
        shot = page.screenshot(full_page=True)
    finally:
        page.close()
    (tmp_path / "report.png").write_bytes(shot)
    assert len(images) >= 7
    assert all(complete and width > 0 for _alt, complete, width in images), images
    assert {
        "Training curves",
        "Accuracy and confusion matrix",
        "True / Pred",
        "Misclassified examples",
        "Embedding (t-SNE)",
    } <= set(headings)
    external = [u for u in requests if not (u.startswith("data:") or u == report_file.as_uri())]
    assert external == [], f"the report fetched {external}"
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
    assert pixels.shape[0] > 3000 and pixels.std() > 20  # a long page with real content, not a blank


def test_cli_prints_the_accuracy(report_file, capsys, checkpoint):
    code = report(checkpoint, report_file.with_suffix(".pdf"), "none", "--limit", "50", "--samples", "8")
    out = capsys.readouterr().out
    assert code == 0 and "accuracy" in out and "on 50 test images" in out
    assert report_file.with_suffix(".pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "nope"], "unknown dataset"),
        (["--data", "digits", "--samples", "0"], "at least 1"),
        (["--data", "digits", "--model", "missing.pt"], "no such model file"),
    ],
)
def test_cli_errors_are_one_line(args, message, capsys, tmp_path):
    code = main(["report", "--model", "tiny-vgg", "--out", str(tmp_path / "r.html"), "-q", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
