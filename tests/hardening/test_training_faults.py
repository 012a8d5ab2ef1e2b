"""Training under faults: SIGKILL mid-epoch, a checkpoint write that dies midway, a full disk."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from convscope.cli.main import main
from convscope.errors import ConvscopeError
from convscope.models import checkpoint as ckpt_mod
from convscope.models import load_checkpoint, save_checkpoint

TRAIN = [
    "train",
    "--data",
    "digits",
    "--model",
    "tiny-vgg",
    "--input-size",
    "16",
    "--batch-size",
    "16",
    "--offline",
    "--no-progress",
]


def epochs_in(metrics: Path) -> list[int]:
    if not metrics.exists():
        return []
    return [json.loads(line)["epoch"] for line in metrics.read_text().splitlines() if line.strip()]


def test_sigkill_mid_epoch_then_resume_loses_at_most_one_epoch(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "convscope", *TRAIN, "--epochs", "2", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.time() + 240
        while not (out / "last.pt").exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "no checkpoint after 240 s"
            time.sleep(0.02)
        time.sleep(0.05)  # inside epoch 2 (an epoch takes about a second here)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_log = proc.stdout.read()
    completed = [int(line.split()[1].split("/")[0]) for line in killed_log.splitlines() if line.startswith("epoch ")]
    saved = load_checkpoint(out / "last.pt")  # intact despite the kill
    saved_epoch = int(saved["train_state"]["epoch"])
    assert saved_epoch >= 1 and saved_epoch >= max(completed, default=0) - 1, (saved_epoch, completed)

    r = subprocess.run(
        [sys.executable, "-m", "convscope", "train", "--resume", "--out", str(out), "--no-progress", "--offline"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    resumed = [
        int(line.split()[1].split("/")[0]) for line in (r.stdout + r.stderr).splitlines() if line.startswith("epoch ")
    ]
    assert resumed and resumed[0] == saved_epoch + 1 and resumed[-1] == 2, r.stdout + r.stderr
    final = load_checkpoint(out / "last.pt")
    assert int(final["train_state"]["epoch"]) == 2
    # the curves hold each epoch once, in order, even though the killed run may have logged one more
    assert epochs_in(out / "metrics.jsonl") == [1, 2]


def _dying_save(after_bytes: int, error: OSError):
    real = torch.save

    def save(obj, f, *a, **k):
        real(obj, f, *a, **k)  # write the whole file, then cut it and fail, like a crash mid-write
        with open(f, "r+b") as fh:
            fh.truncate(after_bytes)
        raise error

    return save


@pytest.mark.parametrize("error", [OSError(errno.EIO, "I/O error"), OSError(errno.ENOSPC, "No space left on device")])
def test_interrupted_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, error):
    path = tmp_path / "last.pt"
    old = {"w": torch.arange(1000.0)}
    save_checkpoint(path, old, {"epoch": 1})
    before = path.read_bytes()
    monkeypatch.setattr(ckpt_mod.torch, "save", _dying_save(100, error))
    expected = ConvscopeError if error.errno == errno.ENOSPC else OSError
    with pytest.raises(expected) as info:
        save_checkpoint(path, {"w": torch.zeros(1000)}, {"epoch": 2})
    if error.errno == errno.ENOSPC:
        assert "no space left" in str(info.value) and "intact" in str(info.value)
    assert path.read_bytes() == before
    assert torch.equal(load_checkpoint(path)["state_dict"]["w"], old["w"])
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_full_disk_during_training_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ckpt_mod.torch, "save", _dying_save(10, OSError(errno.ENOSPC, "No space left on device")))
    out = tmp_path / "run"
    rc = main([*TRAIN, "--epochs", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "no space left" in err and "last.pt" in err
    assert "Traceback" not in err
    assert not list(out.glob("*.pt")) and not list(out.glob(".*.tmp"))


# -- one writer per run folder (real processes) -------------------------------------------------

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def convscope(*args: str) -> list[str]:
    return [sys.executable, "-m", "convscope", *args]


def refusal(rc: int, err: str, pid: int) -> str:
    """The one-line error of a refused writer; it must name the process that holds the run."""
    assert rc == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert "is being written by another process" in last and f"(pid {pid}," in last, err
    return last


def test_two_trainings_into_one_out_one_is_refused_and_a_dead_writers_lock_is_taken_over(tmp_path):
    out = tmp_path / "run"
    cmd = convscope(*TRAIN, "--epochs", "100", "--out", str(out))
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)
    ]
    try:
        deadline = time.time() + 150
        while all(p.poll() is None for p in procs):  # started together: one must be refused at once
            assert time.time() < deadline, "both trainings are still writing into the same --out"
            time.sleep(0.1)
        refused = next(p for p in procs if p.poll() is not None)
        writer = next(p for p in procs if p is not refused)
        refusal(refused.returncode, refused.stderr.read(), writer.pid)
        while not (out / "last.pt").exists():
            assert writer.poll() is None and time.time() < deadline, "the writer stopped before its first epoch"
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()  # SIGKILL: the lock file stays behind, its flock dies with the process
            p.wait(30)
    assert writer.returncode == -signal.SIGKILL
    epochs = epochs_in(out / "metrics.jsonl")
    assert epochs == list(range(1, len(epochs) + 1))  # one writer's epochs, in order
    assert json.loads((out / ".convscope.lock").read_text())["pid"] == writer.pid

    done = int(load_checkpoint(out / "last.pt")["train_state"]["epoch"])
    taken = subprocess.run(
        convscope("train", "--resume", "--epochs", str(done + 1), "--out", str(out), "--offline", "--no-progress"),
        capture_output=True,
        text=True,
        timeout=150,
        env=ENV,
    )
    assert taken.returncode == 0, taken.stderr
    assert f"took over the lock of pid {writer.pid}" in taken.stderr
    assert not (out / ".convscope.lock").exists()
    assert not list(out.glob(".*.tmp")) and not list((out / "snapshots").glob(".*.tmp"))
    assert epochs_in(out / "metrics.jsonl") == list(range(1, done + 2))


# -- a real full disk ---------------------------------------------------------------------------


@pytest.fixture()
def small_disk(tmp_path):
    """A folder that runs out of room: a 256 KiB tmpfs where mounting is allowed (root), else the
    child's ``ulimit -f`` of 48 KiB (EFBIG). Yields (folder, preexec_fn, the expected reason)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    if mounted:
        try:
            yield folder, None, "no space left on the device"
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    try:
        import resource
    except ImportError:
        pytest.skip("neither a tmpfs mount (needs root and CAP_SYS_ADMIN) nor RLIMIT_FSIZE is available here")

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))

    yield folder, limit, "the file size limit (ulimit -f) was reached"


def test_a_real_full_disk_ends_training_with_one_line(small_disk):
    folder, preexec, reason = small_disk
    out = folder / "run"
    r = subprocess.run(
        convscope(*TRAIN, "--epochs", "30", "--out", str(out)),
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
        preexec_fn=preexec,
    )
    err = r.stderr
    assert r.returncode == 2, err
    assert "Traceback" not in err + r.stdout and "Exception in thread" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"convscope train: error: {reason} while writing {out}/"), err
    named = Path(last.split(" while writing ", 1)[1].split(";")[0])
    assert named.parent in (out, out / "snapshots")
    assert ("previous file is intact" in last) == named.exists()
    assert not list(out.glob(".*.tmp")) and not list((out / "snapshots").glob(".*.tmp"))
    if (out / "last.pt").exists():
        assert load_checkpoint(out / "last.pt")["train_state"]["epoch"] >= 1  # what was saved is intact
