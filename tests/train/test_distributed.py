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
from convscope.models import load_checkpoint, load_model

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


def say(line):
    # one write per line: the ranks share one pipe, and print() under PYTHONUNBUFFERED writes the
    # text and its newline apart, so two ranks' lines could run into one (seen once in CI)
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

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
        say(f"rank {dist.get_rank()} epoch {record['epoch']} val_loss {record['val_loss']:.6f}")
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


# A factory the user types on the command line (no --trust needed for a typed spec): a small
# conv net with BatchNorm after its convolutions and after its flatten, for the 8x8 digits. The
# layers before a BatchNorm have no bias, as in ResNet: BatchNorm cancels it, so its gradient is
# float rounding alone, which Adam scales up to full steps that differ between any two runs.
BN_NET = """
from torch import nn
from convscope.models import Model, Preprocessing


def build():
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64, 32, bias=False), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10),
    )
    return Model(net, classes=[str(i) for i in range(10)], preprocessing=Preprocessing((8, 8), channels=1))
"""


@pytest.fixture(scope="module")
def bn_runs(tmp_path_factory) -> tuple[Path, Path]:
    """2 epochs of the BN net on digits, by torchrun and by one process; 1437 training images in
    global batches of 32 end in a batch of 29, split 15 and 14 between the ranks."""
    base = tmp_path_factory.mktemp("ddp-bn")
    (base / "bn_net.py").write_text(textwrap.dedent(BN_NET))
    args = [*ARGS, "--model", f"{base / 'bn_net.py'}:build", "--epochs", "2"]
    ddp, one = base / "ddp", base / "one"
    torchrun(*args, "--out", str(ddp))
    single(*args, "--out", str(one))
    return ddp, one


def test_batchnorm_under_torchrun_sees_the_global_batch(bn_runs):
    ddp, one = bn_runs
    a, b = weights(ddp), weights(one)
    stats = [k for k in a if k.endswith(("running_mean", "running_var"))]
    assert len(stats) == 6 and a.keys() == b.keys()
    for name in a:  # weights, biases, and the running statistics the eval-mode net normalises with
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5, msg=name)
    assert not torch.equal(a["1.running_var"], torch.ones(8))  # the statistics did move
    # the checkpoint is a plain BatchNorm net's: it loads into the factory's own modules
    loaded = load_model(ddp / "last.pt", trust=True).net
    assert {type(m) for m in loaded.modules()} >= {torch.nn.BatchNorm2d, torch.nn.BatchNorm1d}
    assert set(loaded.state_dict()) == set(a)


# Every rank builds the same layers and data, runs its rows through GlobalBatchNorm and the
# whole batch through plain BatchNorm, and checks its share of the output and of the input
# gradient, the rank-summed parameter gradients and the running statistics against it.
GLOBAL_BN = """
import sys
import torch
import torch.distributed as dist
from torch import nn
from convscope.train.syncbn import GlobalBatchNorm


def say(line):
    # one write per line: the ranks share one pipe, and print() under PYTHONUNBUFFERED writes the
    # text and its newline apart, so two ranks' lines could run into one (seen once in CI)
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
worst = 0.0
for kind, shape, momentum in [
    (nn.BatchNorm2d, (5, 3, 4, 4), 0.1),   # 3 rows and 2: an uneven split
    (nn.BatchNorm2d, (1, 3, 4, 4), 0.1),   # 1 row: rank 1 has none at all
    (nn.BatchNorm1d, (7, 6), None),        # after a flatten, cumulative running averages
]:
    torch.manual_seed(0)
    plain = kind(shape[1], momentum=momentum)
    with torch.no_grad():
        plain.weight.uniform_(0.5, 1.5); plain.bias.uniform_(-0.5, 0.5)
    ours = GlobalBatchNorm.from_module(kind(shape[1], momentum=momentum))
    ours.load_state_dict(plain.state_dict())
    for step in range(3):
        x = torch.randn(*shape) * 3 + 1
        target = torch.randn(*shape)
        x.requires_grad_(True)
        want = plain(x)
        (want * target).sum().backward()
        mine = x.detach()[rank::world].clone().requires_grad_(True)
        y = ours(mine)
        (y * target[rank::world]).sum().backward()
        grads = torch.cat([ours.weight.grad, ours.bias.grad])
        dist.all_reduce(grads)
        checks = {
            "output": (y, want[rank::world]),
            "x.grad": (mine.grad, x.grad[rank::world]),
            "param grads": (grads, torch.cat([plain.weight.grad, plain.bias.grad])),
            "running_mean": (ours.running_mean, plain.running_mean),
            "running_var": (ours.running_var, plain.running_var),
            "num_batches_tracked": (ours.num_batches_tracked.float(), plain.num_batches_tracked.float()),
        }
        for name, (a, b) in checks.items():
            assert a.shape == b.shape, (kind.__name__, step, name, a.shape, b.shape)
            diff = float((a.detach() - b.detach()).abs().max()) if a.numel() else 0.0
            worst = max(worst, diff)
            assert diff <= 1e-5, (kind.__name__, shape, step, name, diff)
        for t in (x, ours.weight, ours.bias, plain.weight, plain.bias):
            t.grad = None
    ours.eval(); plain.eval()
    probe = torch.randn(*shape)
    assert float((ours(probe) - plain(probe)).detach().abs().max()) <= 1e-5, "eval mode uses the running stats"
say(f"rank {rank} ok, largest difference {worst:.3g}")
dist.destroy_process_group()
"""


def test_global_batchnorm_normalises_every_ranks_rows_together(tmp_path):
    script = tmp_path / "bn.py"
    script.write_text(textwrap.dedent(GLOBAL_BN))
    done = torchrun(launch=(str(script),))
    assert sorted(line.split(",")[0] for line in done.stdout.splitlines()) == ["rank 0 ok", "rank 1 ok"]


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


@pytest.mark.parametrize("device", ["cpu", "cuda"])  # the CUDA swap is only built here, never run
def test_batchnorm_swap_keeps_the_tensors_and_restores_plain_modules(device):
    from convscope.train.syncbn import GlobalBatchNorm, globalize, restore

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten())
    net.add_module("head", torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)))
    plain, keys = dict(net.named_modules()), list(net.state_dict())
    tensors = {k: v.data_ptr() for k, v in net.state_dict().items()}
    assert globalize(net, torch.device(device)) == 2
    swapped = torch.nn.SyncBatchNorm if device == "cuda" else GlobalBatchNorm
    assert type(net[1]) is swapped and type(net.head[1]) is swapped
    assert list(net.state_dict()) == keys and {k: v.data_ptr() for k, v in net.state_dict().items()} == tensors
    net.double()  # a later .to() replaces the buffers: restore must hand the originals the new ones
    restore(net)
    assert net[1] is plain["1"] and net.head[1] is plain["head.1"]
    assert net[1].running_var.dtype == torch.float64 and net.head[1].weight.dtype == torch.float64
    assert list(net.state_dict()) == keys
