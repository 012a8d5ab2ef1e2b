"""``convscope train`` under ``torchrun --nproc_per_node=2`` (gloo on the CPU) is the same run
as one process with the same arguments: the same weights to float32 rounding, one run folder
written by rank 0 alone, and each kind of run resumes the other's ``last.pt``. ``cs.Run`` called
from every rank of a hand-written DDP loop writes one run folder too."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from convscope.cli.main import main
from convscope.models import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--model", "tiny-vgg", "--data", "digits", "--batch-size", "32", "--no-progress", "--device", "cpu"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*argv: str, launch: tuple[str, ...] = ("-m", "convscope", "train")) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        *launch,
        *argv,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def single(*argv: str) -> None:
    assert main(["train", *argv]) == 0


def weights(out: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(out / "last.pt")["state_dict"]


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def files(out: Path) -> list[str]:
    """The run folder's files, TensorBoard's host- and pid-named event file as ``events``."""
    return sorted(
        "events" if p.name.startswith("events.out.tfevents") else str(p.relative_to(out))
        for p in out.rglob("*")
        if p.is_file()
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    base = tmp_path_factory.mktemp("ddp")
    ddp, one = base / "ddp", base / "one"
    done = torchrun(*ARGS, "--epochs", "2", "--out", str(ddp))
    single(*ARGS, "--epochs", "2", "--out", str(one))
    return ddp, one, done


def test_two_processes_train_the_single_process_weights(runs):
    ddp, one, _ = runs
    a, b = weights(ddp), weights(one)
    assert a.keys() == b.keys() and not any(k.startswith("module.") for k in a)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-5, msg=name)
    # and training did move them: the comparison is not of two untouched initialisations
    first = load_checkpoint(ddp / "last.pt")["meta"]["history"][0]
    assert metrics(ddp)[-1]["train_loss"] < first["train_loss"]


def test_one_consistent_run_folder_written_by_rank_zero(runs):
    ddp, one, done = runs
    assert files(ddp) == files(one)  # one events file, no lock left, nothing from rank 1
    assert files(ddp).count("events") == 1 and "snapshots/epoch_002.npz" in files(ddp)
    got, want = metrics(ddp), metrics(one)
    assert [r["epoch"] for r in got] == [1, 2]  # one record per epoch, not one per rank
    for g, w in zip(got, want):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            assert g[key] == pytest.approx(w[key], rel=1e-5, abs=1e-6), key
    meta, meta_one = (load_checkpoint(p / "last.pt")["meta"] for p in (ddp, one))
    assert meta["config"] == {**meta_one["config"], "out": str(ddp)}
    assert done.stdout.count("run folder:") == 1  # rank 0 reports, rank 1 stays quiet
    assert done.stderr.count("epoch 2/2:") == 1


def test_resume_crosses_between_torchrun_and_one_process(runs, tmp_path):
    ddp, one, _ = runs
    ddp3, one3 = tmp_path / "ddp3", tmp_path / "one3"
    shutil.copytree(ddp, ddp3)
    shutil.copytree(one, one3)
    single("--resume", "--epochs", "3", "--out", str(ddp3), "--no-progress")  # torchrun's run, one process on
    torchrun("--resume", "--epochs", "3", "--out", str(one3), "--no-progress")  # one process's run, torchrun on
    a, b = weights(ddp3), weights(one3)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-5, msg=name)
    assert [r["epoch"] for r in metrics(ddp3)] == [r["epoch"] for r in metrics(one3)] == [1, 2, 3]
    assert files(one3) == files(ddp3)
    assert load_checkpoint(one3 / "last.pt")["meta"]["epoch"] == 3


RUN_LOOP = """
import sys
import torch
import torch.distributed as dist
import torch.nn.functional as F
import convscope as cs
from convscope.models import zoo

dist.init_process_group("gloo")
torch.manual_seed(0)
net = zoo.build("tiny-vgg", in_channels=1, num_classes=3, input_size=(16, 16))
model = torch.nn.parallel.DistributedDataParallel(net)
opt = torch.optim.SGD(net.parameters(), lr=0.1)
x, y = torch.rand(8, 1, 16, 16), torch.arange(8) % 3
with cs.Run(sys.argv[1], net, classes=["a", "b", "c"], input_size=(16, 16), sample=(x[0], 0)) as run:
    for epoch in (1, 2):
        share = slice(dist.get_rank(), None, 2)
        loss = F.cross_entropy(model(x[share]), y[share])
        opt.zero_grad(); loss.backward(); opt.step()
        run.log(epoch, loss=loss)
        total = loss.detach().clone(); dist.all_reduce(total)
        record = run.epoch_end(epoch, val_loss=float(total) / 2, lr=0.1)
        print(f"rank {dist.get_rank()} epoch {record['epoch']} val_loss {record['val_loss']:.6f}")
dist.destroy_process_group()
"""


def test_run_api_writes_one_folder_from_every_rank(tmp_path):
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent(RUN_LOOP))
    out = tmp_path / "mine"
    done = torchrun(str(out), launch=(str(script),))
    lines = sorted(line for line in done.stdout.splitlines() if line.startswith("rank "))
    assert len(lines) == 4 and lines[0].split()[2:] == lines[2].split()[2:]  # both ranks, the same records
    assert [r["epoch"] for r in metrics(out)] == [1, 2]
    assert files(out).count("events") == 1
    assert {"last.pt", "best.pt", "snapshots/epoch_000.npz", "snapshots/epoch_002.npz"} <= set(files(out))
    assert load_checkpoint(out / "last.pt")["meta"]["writer"] == "convscope.Run"


def test_torchrun_environment_is_read_and_checked(monkeypatch):
    from convscope.errors import ConvscopeError
    from convscope.train.distributed import current

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not current().active and current().is_main  # a plain process is a world of one
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", str(torch.cuda.device_count()))  # one process more than this machine's GPUs
    rank = current()
    assert rank.active and not rank.is_main
    assert torch.equal(rank.shard(torch.arange(7)), torch.tensor([1, 3, 5]))
    assert rank.device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConvscopeError, match="lower --nproc_per_node"):
        rank.device(torch.device("cuda"))
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConvscopeError, match="not in a world"):
        current()
