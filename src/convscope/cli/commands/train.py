"""``convscope train``: train a zoo net (or fine-tune a checkpoint) on a dataset."""

from __future__ import annotations

import argparse
import re
import shlex
import sys

from ...errors import ConvscopeError
from ..common import add_trust_argument

EPILOG = """examples:
  convscope train --model tiny-vgg --data mnist --epochs 10 --out runs/tiny
  convscope train --model mnist-cnn --data mnist --activation sigmoid --out runs/sigmoid
  convscope train --resume --epochs 20 --out runs/tiny        # continue a run (or one stopped by Ctrl-C)
  convscope train --model runs/tiny/best.pt --data digits --out runs/ft   # fine-tune
  torchrun --nproc_per_node=4 -m convscope train --model tiny-vgg --data mnist --out runs/ddp  # 4 processes

Writes OUT/metrics.jsonl, TensorBoard events (tensorboard --logdir OUT), OUT/last.pt,
OUT/best.pt (lowest validation loss) and OUT/snapshots/epoch_NNN.npz. One process writes
a run folder at a time (OUT/.convscope.lock): a second train or --resume there is refused.
A diverging run (non-finite loss or weights, or a loss 10x above its start) stops with an error.
Under torchrun (DistributedDataParallel; gloo on CPU, nccl on CUDA) --batch-size is the global
batch, split across the processes, so the same command trains the same run; rank 0 writes it."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a CNN and write checkpoints, metrics and TensorBoard logs",
        description="Train a zoo net (or fine-tune a checkpoint) on a dataset.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Every default is None so that a resumed run can tell what was set explicitly.
    p.add_argument(
        "--model",
        "-m",
        metavar="SPEC",
        help="a zoo net (tiny-vgg, mnist-cnn, cifar-cnn), shaped to the data; or a checkpoint / "
        "'default' to fine-tune (default: tiny-vgg)",
    )
    p.add_argument("--data", "-d", help="dataset: digits, mnist, fashion-mnist, cifar10, folder:PATH (default: mnist)")
    p.add_argument(
        "--out",
        "-o",
        metavar="DIR",
        help="run folder, created if missing (default: runs/MODEL-DATA; the path is printed at the end)",
    )
    p.add_argument("--epochs", type=int, help="total number of epochs (default: 10)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], help="default: adam")
    p.add_argument("--lr", type=float, help="learning rate (default: 0.001)")
    p.add_argument("--momentum", type=float, help="SGD momentum (default: 0.9)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay (default: 0)")
    p.add_argument(
        "--schedule", choices=["constant", "cosine"], help="learning-rate schedule over the epochs (default: constant)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        help="the global batch; under torchrun each of N processes trains on 1/N of it (default: 64)",
    )
    p.add_argument("--seed", type=int, help="seed for initialisation, shuffling, augmentation, dropout (default: 0)")
    p.add_argument("--split-seed", type=int, help="seed of the train/val/test split (default: 0)")
    p.add_argument(
        "--augment",
        nargs="?",
        const="auto",
        metavar="KINDS",
        help="augment training images: a comma list of shift[=PIXELS] (a random crop of the "
        "zero-padded image), rotate[=DEGREES], flip; alone: shifts and rotations, plus flips "
        "except for digit datasets",
    )
    p.add_argument("--patience", type=int, help="stop after this many epochs without a lower validation loss")
    p.add_argument("--activation", choices=["relu", "sigmoid", "tanh"], help="zoo nets' activation (default: relu)")
    p.add_argument("--dropout", type=float, help="dropout before the last layer of zoo nets (default: 0)")
    p.add_argument(
        "--input-size",
        metavar="N|HxW",
        type=_size,
        help="resize images to this size (default: the data's own size, or the smallest the net takes)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="default: auto (CUDA when available)")
    p.add_argument("--data-root", metavar="DIR", help="dataset cache directory")
    p.add_argument(
        "--offline",
        dest="download",
        action="store_const",
        const=False,
        help="never download data (use the cache or bundled data)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (epoch summaries still print)")
    add_trust_argument(p)
    p.set_defaults(func=run)


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}")
    h = int(m.group(1))
    return (h, int(m.group(2) or h))


CONFIG_KEYS = (
    "model",
    "data",
    "out",
    "epochs",
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "batch_size",
    "seed",
    "split_seed",
    "augment",
    "patience",
    "activation",
    "dropout",
    "input_size",
    "device",
    "data_root",
    "download",
)


def run(args: argparse.Namespace) -> int:
    from ...train import TrainConfig, recorded_config, train
    from ...train.distributed import current as current_rank

    explicit = {k: getattr(args, k) for k in CONFIG_KEYS if getattr(args, k) is not None}
    if args.resume:
        if "out" not in explicit:
            raise ConvscopeError("--resume needs --out, the run directory to continue")
        config = recorded_config(explicit["out"]).resumed_with(explicit)
    else:
        explicit.setdefault("out", _default_out(explicit.get("model", "tiny-vgg"), explicit.get("data", "mnist")))
        config = TrainConfig(**explicit)
    command = "convscope " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    result = train(config, resume=args.resume, progress=not args.no_progress, command=command, trust=args.trust)
    if not current_rank().is_main:  # under torchrun rank 0 reports for the run
        return 0
    if result.interrupted:
        epoch, step = result.interrupted_at
        where = f"epoch {epoch}, step {step}" if step else f"the end of epoch {epoch}"
        print(
            f"interrupted at {where}; saved {result.last}. Continue with: "
            f"convscope train --resume --out {shlex.quote(str(result.out))}",
            file=sys.stderr,
        )
        return 130
    best = result.best_metrics
    if best is not None:
        print(
            f"best epoch {best['epoch']}: val accuracy {best['val_acc']:.4f}, val loss {best['val_loss']:.4f} "
            f"-> {result.best}"
        )
    print(f"run folder: {result.out}")
    return 0


def _default_out(model: str, data: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{model.rsplit('/', 1)[-1].removesuffix('.pt')}-{data.split(':')[0]}")
    return f"runs/{stem}"
