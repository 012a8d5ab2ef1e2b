"""Every command speaks one dialect: ``--model SPEC`` (the positional word still works for
evaluate and summary), ``--out`` with a default that is printed, ``--split`` defaulting to
test, ``--no-progress`` (``--quiet`` kept for report), a "did you mean" for mistyped model
and dataset names, and a busy port refused in one line before any address is printed.

The commands run for real, in-process, in a temporary working folder, on the untrained
zoo net mnist-cnn (so the output proves the --model given was the one used)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
BAR = "%|"  # what every tqdm bar line contains


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch) -> Path:
    """A working folder of its own, with a 28x28 stroke image in it."""
    monkeypatch.chdir(tmp_path)
    a = np.zeros((28, 28), np.uint8)
    a[5:23, 13:16] = 255
    Image.fromarray(a).save(tmp_path / "digit.png")
    return tmp_path


# command line (without --out), the folder or file it writes by default, a text that names the model
RUNS = {
    "attribute": (["attribute", "digit.png", "--method", "saliency"], "convscope-attribute", "of mnist-cnn"),
    "sanity": (
        ["sanity", "digit.png", "--method", "saliency", "--max-steps", "1"],
        "convscope-sanity",
        "sanity check of mnist-cnn",
    ),
    "explain": (["explain", "digit.png", "--layers", "conv1"], "convscope-explain", "-> mnist-cnn"),
    "features": (
        ["features", "--layer", "conv1", "--channels", "0", "--steps", "2"],
        "convscope-features",
        "channel 0",
    ),
    "examples": (
        ["examples", "--data", "digits", "--layer", "conv1", "--k", "1", "--channels", "0"],
        "convscope-examples",
        "top 1 of",
    ),
    "evaluate": (["evaluate", "--data", "digits"], "convscope-evaluate", "mnist-cnn on digits / test"),
    "report": (
        ["report", "--data", "digits", "--limit", "3", "--embedding", "none", "--samples", "2", "--cache-dir", "cache"],
        "report.html",
        "on 3 test images",
    ),
    "summary": (["summary"], None, "Total params"),
}


@pytest.mark.parametrize("command", list(RUNS))
def test_every_model_command_takes_model_writes_a_printed_default_out_and_can_be_quiet(command, in_tmp, capsys):
    argv, default_out, says = RUNS[command]
    assert main([*argv, "--model", "mnist-cnn", *(["--no-progress"] if command != "summary" else [])]) == 0
    out, err = capsys.readouterr()
    assert says in out
    assert BAR not in err  # --no-progress: no bar on stderr
    if default_out is not None:
        written = in_tmp / default_out
        assert written.exists() and default_out in out.splitlines()[-1 if command != "report" else 0]
        if command == "report":
            assert "mnist-cnn" in written.read_text(encoding="utf-8")


def test_progress_bars_show_without_no_progress(in_tmp, capsys):
    assert main(["features", "--model", "mnist-cnn", "--layer", "conv1", "--channels", "0", "--steps", "3"]) == 0
    assert BAR in capsys.readouterr().err


def test_demo_takes_model_and_says_when_it_records_no_dataset(in_tmp, capsys):
    assert main(["demo", "--model", "mnist-cnn"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "mnist-cnn does not record the dataset it was trained on" in err


@pytest.mark.parametrize("command", ["summary", "evaluate"])
def test_positional_model_still_works_and_two_different_models_are_refused(command, in_tmp, capsys):
    extra = ["--data", "digits", "--json", "--no-progress"] if command == "evaluate" else ["--json"]

    def facts(text: str):  # evaluate: an untrained zoo net's scores differ per load; its name and split do not
        d = json.loads(text)
        return (d["model"], d["split"], d["images"]) if command == "evaluate" else d

    assert main([command, "mnist-cnn", *extra]) == 0
    positional = facts(capsys.readouterr().out)
    assert main([command, "--model", "mnist-cnn", *extra]) == 0
    assert facts(capsys.readouterr().out) == positional
    if command == "evaluate":
        assert positional[0] == "mnist-cnn"
    assert main([command, "mnist-cnn", "--model", "tiny-vgg", *extra]) == 2
    assert "two models given ('mnist-cnn' and --model 'tiny-vgg')" in capsys.readouterr().err


def test_one_default_split_and_one_progress_switch():
    parser = build_parser()
    for argv in (["evaluate"], ["report", "--data", "digits"], ["examples", "--data", "digits", "--layer", "x"]):
        assert parser.parse_args(argv).split == "test", argv
    long_commands = (
        ["attribute", "i.png"],
        ["sanity", "i.png"],
        ["explain", "i.png"],
        ["features"],
        ["examples", "--data", "d", "--layer", "x"],
        ["evaluate"],
        ["report", "--data", "d"],
        ["train"],
    )
    for argv in long_commands:
        assert parser.parse_args([*argv, "--no-progress"]).no_progress is True, argv
        assert parser.parse_args(argv).no_progress is False, argv
    assert parser.parse_args(["report", "--data", "d", "-q"]).no_progress is True  # the old spelling
    assert parser.parse_args(["report", "--data", "d", "--quiet"]).no_progress is True


def test_a_mistyped_model_or_dataset_gets_a_suggestion_in_one_line(capsys):
    assert main(["summary", "--model", "tiny_vgg"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith("did you mean 'tiny-vgg'?"), err
    assert main(["evaluate", "--model", "mnist-cnn", "--data", "mnsit"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.endswith("did you mean 'mnist'?"), err
    assert main(["summary", "--model", "resnet-nothing"]) == 2
    assert "did you mean" not in capsys.readouterr().err  # nothing close: no guess


def test_a_busy_port_is_one_line_suggesting_the_next_before_any_address():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "convscope", "serve", "--model", "mnist-cnn", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            env=ENV,
            cwd=ROOT,
        )
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr == f"convscope serve: error: port {port} on 127.0.0.1 is in use; try --port {port + 1}\n"
    assert "http://" not in proc.stdout + proc.stderr
