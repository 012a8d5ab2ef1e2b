"""convscope's trainer against a minimal hand-written PyTorch loop, side by side.

All three train the same net (Tiny VGG shaped to the data) on the same split with the same
batch size, optimizer and number of steps, and all evaluate on the validation split
after every epoch. The third column is the hand-written loop with :class:`convscope.Run`
added (``run.log`` every step with the loss tensor, ``run.epoch_end`` every epoch), the
run folder a person gets from their own loop. Each side is timed from "nothing loaded" (dataset read and split,
net built) to "last epoch done", so convscope pays for everything it does on top:
the progress bar, per-step loss/accuracy bookkeeping and NaN checks, metrics.jsonl,
TensorBoard scalars and weight histograms, snapshots and two checkpoints per epoch.
Runs alternate (hand, convscope, Run, hand, ...) and the median of ``--repeats`` is kept,
so background load hits every side alike.

convscope's extra work is mostly a fixed cost per epoch (files), so its share shrinks
as epochs grow; ``--repeat-data 15`` shows an MNIST-sized epoch (60,000 images).

    python benchmarks/bench_train.py                       # mnist subset, CPU, 5 epochs x 3 repeats
    python benchmarks/bench_train.py --repeat-data 15 --epochs 2
    python benchmarks/bench_train.py --device cuda --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from convscope.data import Splits, load_splits  # noqa: E402
from convscope.models import zoo  # noqa: E402
from convscope.train import Run, TrainConfig, train  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load(args: argparse.Namespace) -> Splits:
    """The dataset's seeded split; with ``--repeat-data K`` each epoch sees the training images K times."""
    splits = load_splits(args.data, seed=0, download=False)
    if args.repeat_data > 1:
        splits.train = splits.train.subset(torch.arange(len(splits.train)).repeat(args.repeat_data))
    return splits


def hand_loop(args: argparse.Namespace, device: torch.device, out: Path | None = None) -> float:
    """The loop a person writes by hand; returns its wall time in seconds. With ``out``, the
    same loop with :class:`convscope.Run` writing its run folder there."""
    start = time.perf_counter()
    splits = load(args)
    train_set, val_set = splits.train, splits.val
    c, h, w = train_set.images.shape[1:]
    torch.manual_seed(0)
    net = zoo.build("tiny-vgg", in_channels=c, num_classes=len(train_set.classes), input_size=(h, w)).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    run = None
    if out is not None:
        run = Run(
            out,
            net,
            train_set.classes,
            input_size=(h, w),
            sample=(val_set.images[0], int(val_set.labels[0])),
            optimizer=opt,
            monitor="val_acc",
            config={"epochs": args.epochs},
            log=lambda m: None,
        )
    step = 0
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(epoch))
        net.train()
        for s in range(0, len(order), args.batch_size):
            idx = order[s : s + args.batch_size]
            x = (train_set.images[idx].float() / 255.0).to(device, non_blocking=True)
            y = train_set.labels[idx].to(device, non_blocking=True)
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if run is not None:
                run.log(step, loss=loss)
            step += 1
        net.eval()
        correct = 0
        with torch.no_grad():
            for s in range(0, len(val_set), 512):
                x = (val_set.images[s : s + 512].float() / 255.0).to(device)
                correct += int((net(x).argmax(1).cpu() == val_set.labels[s : s + 512]).sum())
        if run is not None:
            run.epoch_end(epoch, val_acc=correct / len(val_set), images=len(train_set))
        print(
            f"  {'Run' if run else 'hand'} epoch {epoch}: loss {loss.item():.4f} val acc {correct / len(val_set):.4f}",
            file=sys.stderr,
        )
    if run is not None:
        run.close()  # every file on disk, as train() returns with its files written
    sync(device)
    return time.perf_counter() - start


def convscope_run(args: argparse.Namespace, device: torch.device, out: Path) -> float:
    config = TrainConfig(
        model="tiny-vgg",
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        out=str(out),
        device=device.type,
        download=False,
    )
    start = time.perf_counter()
    train(config, progress=not args.no_progress, log=lambda m: None, splits=load(args))
    sync(device)
    return time.perf_counter() - start


def count_ops(args: argparse.Namespace, device: torch.device) -> None:
    """Tensor operations dispatched by each side (all threads), per run and per training step."""
    from torch.profiler import ProfilerActivity, profile

    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in [
            ("hand-written PyTorch", lambda: hand_loop(args, device)),
            ("convscope train()", lambda: convscope_run(args, device, Path(tmp) / "ops")),
            ("hand + cs.Run", lambda: hand_loop(args, device, Path(tmp) / "ops-run")),
        ]:
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                run()
            counts[name] = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
    steps = args.epochs * -(-len(load(args).train) // args.batch_size)
    for name, n in counts.items():
        print(f"{name:<22}{n:>10} aten operations ({n / steps:.1f} per training step, {steps} steps)")
    hand, ours, run = counts.values()
    print(
        f"convscope extra: {(ours - hand) / steps:.1f} operations per step (setup, validation and file writes included)"
    )
    print(f"cs.Run extra: {(run - hand) / steps:.1f} operations per step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default="mnist", help="a 28x28-or-larger dataset (default: mnist; offline: the 5,000-image subset)"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--repeat-data",
        type=int,
        default=1,
        metavar="K",
        help="show each training image K times per epoch (K=15: an MNIST-sized 60,000-image epoch)",
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="turn convscope's progress bar off")
    parser.add_argument(
        "--count-ops",
        action="store_true",
        help="instead of timing, count the tensor operations each side dispatches (a measure of "
        "per-step overhead that does not depend on the machine's load)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.count_ops:
        count_ops(args, device)
        return
    n_train = len(load(args).train)
    with tempfile.TemporaryDirectory() as tmp:
        # warm-up: imports (TensorBoard), allocator, CUDA context, one epoch each
        warm = argparse.Namespace(**{**vars(args), "epochs": 1})
        hand_loop(warm, device)
        convscope_run(warm, device, Path(tmp) / "warm")
        hand_loop(warm, device, Path(tmp) / "warm-run")
        hand, ours, runs = [], [], []
        for r in range(args.repeats):
            hand.append(hand_loop(args, device))
            ours.append(convscope_run(args, device, Path(tmp) / f"run{r}"))
            runs.append(hand_loop(args, device, Path(tmp) / f"api{r}"))
    images = args.epochs * n_train
    t_hand, t_ours, t_run = statistics.median(hand), statistics.median(ours), statistics.median(runs)
    print(
        f"\n{args.data}: {n_train} training images per epoch (repeat-data {args.repeat_data}) x {args.epochs} "
        f"epochs, batch {args.batch_size}, "
        f"tiny-vgg, {device.type}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"median of {args.repeats}"
    )
    print(f"{'loop':<22}{'seconds':>10}{'images/s':>12}   all runs (s)")
    print(
        f"{'hand-written PyTorch':<22}{t_hand:>10.2f}{images / t_hand:>12.0f}   {', '.join(f'{t:.2f}' for t in hand)}"
    )
    print(f"{'convscope train()':<22}{t_ours:>10.2f}{images / t_ours:>12.0f}   {', '.join(f'{t:.2f}' for t in ours)}")
    print(f"{'hand + cs.Run':<22}{t_run:>10.2f}{images / t_run:>12.0f}   {', '.join(f'{t:.2f}' for t in runs)}")
    print(f"convscope overhead: {100 * (t_ours / t_hand - 1):+.1f}% (time ratio {t_ours / t_hand:.3f}; target <= +5%)")
    print(f"cs.Run overhead: {100 * (t_run / t_hand - 1):+.1f}% (time ratio {t_run / t_hand:.3f}; target <= +5%)")


if __name__ == "__main__":
    main()
