"""The training loop: one :class:`Trainer` per run directory.

What it guarantees:

- **Reproducible and resumable.** Epoch ``e`` shuffles and augments with its own
  generator seeded from ``(seed, e)``; the global torch RNG (dropout) is saved in every
  checkpoint. ``last.pt`` carries the optimizer state, the early-stopping counters and,
  after Ctrl-C, the position inside the epoch (its shuffle order, generator state and
  running sums), so a resumed run continues exactly where it stopped: 2 epochs plus a
  resume to 4 gives the same weights as 4 straight epochs on the CPU.
- **Safe files.** Checkpoints are ``state_dict`` + JSON metadata written atomically
  through :func:`convscope.models.save_checkpoint`; ``load_model(OUT/"best.pt")``
  rebuilds the net from ``meta["architecture"]``.
- **Cheap bookkeeping.** Per-step losses stay on the device and are read back every
  ``FLUSH_EVERY`` steps (progress bar and NaN/inf check together), so logging does not
  stall a GPU each step; a non-finite loss is still reported with its exact step. Files
  (checkpoints, snapshots, TensorBoard) are written from CPU copies by one background
  thread while the next epoch trains; :meth:`Trainer.fit` waits for them before it
  returns or raises.
- **One writer.** The run folder is locked (:class:`~convscope.train.runlock.RunLock`)
  from the start until :meth:`Trainer.fit` returns: a second ``train`` into the same
  ``--out``, or a ``--resume`` of a run being written, is refused naming the process
  that writes it. The lock's new holder deletes the temporary files a killed run left.
- **Same run under torchrun.** ``torchrun --nproc_per_node=N`` runs this same loop in N
  processes (:mod:`convscope.train.distributed`): ``batch_size`` stays the global batch,
  each rank trains on its rows of it in DistributedDataParallel, training metrics are
  summed across ranks, and only rank 0 locks, prints and writes the run folder, so the
  weights and files equal a single-process run's (to float rounding) and either kind of
  run resumes the other's ``last.pt``. Ctrl-C under torchrun stops without a mid-epoch
  checkpoint (``--resume`` continues from the last finished epoch).
- **Divergence is an error.** A non-finite loss or weights, or an epoch's training loss
  ``DIVERGED_FACTOR`` times above where it started (the first step's loss, or the loss of
  a uniform guess, ``ln K``, if that is higher) for ``DIVERGED_EPOCHS`` epochs in a row
  or at the end, stops the run with a :class:`ConvscopeError` that names the checkpoints
  that exist and what they hold; a diverged epoch is never saved as ``best.pt``.
"""

from __future__ import annotations

import copy
import math
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import __version__
from ..data import Splits, make_augment
from ..device import resolve_device
from ..errors import ConvscopeError
from ..io_utils import remove_temp_files
from ..models import Preprocessing, load_checkpoint, save_checkpoint
from . import distributed
from .background import BackgroundWriter
from .config import TrainConfig
from .evaluate import predict_logits
from .runlock import RunLock
from .runlog import RunLog
from .setup import prepare
from .snapshots import FOLDER as SNAPSHOTS
from .snapshots import snapshot_arrays, write_snapshot

LAST, BEST = "last.pt", "best.pt"
FLUSH_EVERY = 20
DIVERGED_FACTOR = 10.0
DIVERGED_EPOCHS = 3


class Diverged(ConvscopeError):
    """Training blew up; :meth:`Trainer.fit` adds which checkpoints exist before it reaches the user."""


@dataclass
class TrainResult:
    """How a run ended and where its files are."""

    out: Path
    epochs: int  # epochs completed in total (including before a resume)
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_val_loss: float
    stopped_early: bool = False
    interrupted: bool = False
    interrupted_at: tuple[int, int] | None = None  # (epoch, step) when stopped by Ctrl-C
    notes: list[str] = field(default_factory=list)

    @property
    def last(self) -> Path:
        return self.out / LAST

    @property
    def best(self) -> Path:
        return self.out / BEST

    @property
    def best_metrics(self) -> dict[str, Any] | None:
        return next((r for r in self.history if r["epoch"] == self.best_epoch), None)


def recorded_config(out: str | Path) -> TrainConfig:
    """The config a run in ``out`` was started with (read from its ``last.pt``)."""
    path = Path(out) / LAST
    if not path.is_file():
        raise ConvscopeError(f"nothing to resume: {path} does not exist")
    meta = load_checkpoint(path)["meta"]
    if "config" not in meta:
        raise ConvscopeError(f"{path} was not written by convscope train, so it cannot be resumed")
    return TrainConfig.from_dict(meta["config"])


def train(
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    splits: Splits | None = None,
    trust: bool = False,
) -> TrainResult:
    """Train (or, with ``resume``, continue) the run described by ``config``.

    Returns a :class:`TrainResult`; ``OUT/best.pt`` is the epoch with the lowest
    validation loss. Raises :class:`ConvscopeError` for user mistakes and for a loss
    that becomes NaN or infinite (naming the epoch and step). ``splits`` trains on your own
    in-memory :class:`~convscope.data.Splits` instead of loading ``config.data``. ``trust`` is
    :func:`convscope.load_model`'s, for the model fine-tuned; on ``resume`` that model's
    spec is read from ``last.pt``, so a factory spec there needs ``trust`` too.
    """
    return Trainer(config, resume=resume, progress=progress, command=command, log=log, splits=splits, trust=trust).fit()


class Trainer:
    """Holds one run's net, optimizer, data and counters; :meth:`fit` runs the epochs."""

    def __init__(
        self,
        config: TrainConfig,
        resume: bool = False,
        progress: bool = True,
        command: str | None = None,
        log: Callable[[str], None] | None = None,
        splits: Splits | None = None,
        trust: bool = False,
    ) -> None:
        self.out = Path(config.out)
        self.dist = distributed.current()
        self.progress = progress and self.dist.is_main
        self.command = command if command is not None else "convscope train " + shlex.join(sys.argv[1:])
        self.log = log or (lambda msg: tqdm.write(msg, file=sys.stderr))
        if not self.dist.is_main:  # rank 0 speaks and writes for the whole run
            self.log = lambda msg: None
        # taken before the folder is looked at, so a --resume of a run being written is refused too
        self.lock = (RunLock(self.out, command=self.command) if self.dist.is_main else distributed.NoLock()).acquire()
        try:
            self._setup(config, resume, splits, trust)
        except BaseException:
            self.lock.release()
            raise

    # -- set-up ----------------------------------------------------------------------
    def _setup(self, config: TrainConfig, resume: bool, splits: Splits | None, trust: bool) -> None:
        if self.lock.stale is not None:
            self.log(
                f"{self.out}: took over the lock of pid {self.lock.stale.get('pid')}, which stopped "
                "without releasing it"
            )
        removed = remove_temp_files(self.out) + remove_temp_files(self.out / SNAPSHOTS) if self.dist.is_main else []
        if removed:
            self.log(
                f"{self.out}: removed {len(removed)} temporary file(s) an interrupted run left "
                f"({', '.join(p.name for p in removed[:3])}{', ...' if len(removed) > 3 else ''})"
            )
        checkpoint = self._check_out_dir(config, resume)
        self.config = config
        self.device = self.dist.device(resolve_device(config.device))
        self.dist.join(self.device)
        torch.manual_seed(config.seed)
        self.prepared = prepare(config, splits, trust=trust, spec_from_file=resume)
        self.net = self.prepared.net.to(self.device)
        self.model = self.net  # what the training steps call: the net in DDP under torchrun
        self.augment = make_augment(config.augment_options())
        self.optimizer = self._make_optimizer()
        # counters (overwritten on resume)
        self.epoch = 0
        self.best_val_loss = math.inf
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.start_loss: float | None = None  # the run's first training-step loss, before any update
        self.blown_epochs = 0  # epochs in a row whose training loss is DIVERGED_FACTOR above the start
        self.history: list[dict[str, Any]] = []
        self._partial: dict[str, Any] | None = None  # mid-epoch position after Ctrl-C
        if checkpoint is not None:
            self._restore(checkpoint)
        self.model = self.dist.wrap(self.net)  # after the restore, so DDP starts from the same weights
        self._interrupt = False
        self.writer: BackgroundWriter | None = None

    def _check_out_dir(self, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
        last = self.out / LAST
        if not resume:
            if last.exists():
                raise ConvscopeError(
                    f"{self.out} already holds a run; continue it with --resume or choose another --out"
                )
            return None
        recorded = recorded_config(self.out)
        changes = {k: v for k, v in config.to_dict().items() if v != recorded.to_dict().get(k)}
        recorded.resumed_with(changes)  # raises if a setting that defines the run changed
        checkpoint = load_checkpoint(last)
        if "train_state" not in checkpoint:
            raise ConvscopeError(f"{last} holds no training state, so it cannot be resumed")
        return checkpoint

    def _make_optimizer(self) -> torch.optim.Optimizer:
        c = self.config
        if c.optimizer == "sgd":
            return torch.optim.SGD(self.net.parameters(), lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        return torch.optim.Adam(self.net.parameters(), lr=c.lr, weight_decay=c.weight_decay)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint["train_state"]
        self.net.load_state_dict(checkpoint["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch = int(state["epoch"])
        self.best_val_loss = float(state["best_val_loss"])
        self.best_epoch = state["best_epoch"]
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped_early = bool(state["stopped_early"])
        self.start_loss = state.get("start_loss")
        self.blown_epochs = int(state.get("blown_epochs", 0))
        self.history = list(checkpoint["meta"].get("history", []))
        torch.set_rng_state(state["rng_cpu"])
        if self.device.type == "cuda" and state.get("rng_cuda") is not None:
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        if state.get("step"):
            self._partial = {k: state[k] for k in ("step", "order", "generator", "running", "train_seconds")}

    # -- the run ---------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train the remaining epochs; the run folder stays locked until this returns or raises."""
        self.lock.acquire()
        try:
            return self._fit()
        except Diverged as exc:  # every file is on disk now: say which exist
            raise ConvscopeError(f"{exc}. {self._kept()}") from None
        finally:
            self.dist.unwrap(self.net)  # plain BatchNorm layers again, as they were before torchrun's swap
            self.lock.release()

    def _fit(self) -> TrainResult:
        c, splits = self.config, self.prepared.splits
        for note in self.prepared.notes:
            self.log(note)
        if self.epoch >= c.epochs or self.stopped_early:
            why = "stopped early" if self.stopped_early else f"already trained {self.epoch} epochs"
            self.log(f"{self.out}: {why}; nothing to do (raise --epochs to train more)")
            return self._result()
        runlog = RunLog(self.out, self.history) if self.dist.is_main else None
        self.writer = BackgroundWriter() if self.dist.is_main else None
        sample = splits.val.images[0], splits.val.labels[0]
        sample_x = self.prepared.preprocessing.normalize(sample[0])

        def snapshot(epoch: int) -> None:
            if self.writer is None:
                return
            arrays = snapshot_arrays(epoch, self.net, sample[0], sample_x, int(sample[1]))
            if arrays is not None:
                self.writer.submit(write_snapshot, self.out, arrays)

        if self.epoch == 0 and self._partial is None:
            snapshot(0)
        previous = self._install_sigint()
        interrupted_at = None
        try:
            while self.epoch < c.epochs and not self.stopped_early:
                e = self.epoch + 1
                lr = self._set_lr(e)
                start = time.perf_counter()
                train_stats = self._train_epoch(e)
                if train_stats is None:
                    interrupted_at = (e, self._partial_step)
                    break
                logits = predict_logits(self.net, splits.val, self.prepared.preprocessing, self.device)
                val_loss = float(F.cross_entropy(logits, splits.val.labels))
                val_acc = float((logits.argmax(1) == splits.val.labels).float().mean())
                record = {"epoch": e, **train_stats, "val_loss": val_loss, "val_acc": val_acc, "lr": lr}
                record["seconds"] = time.perf_counter() - start
                record = {
                    k: record[k]
                    for k in (
                        "epoch",
                        "train_loss",
                        "train_acc",
                        "val_loss",
                        "val_acc",
                        "lr",
                        "seconds",
                        "images_per_s",
                    )
                }
                self._check_weights(e)
                blown = record["train_loss"] > DIVERGED_FACTOR * self._loss_reference()
                self.blown_epochs = self.blown_epochs + 1 if blown else 0
                self.history.append(record)
                if runlog is not None:
                    weights = {n: p.detach().to("cpu", copy=True) for n, p in self.net.named_parameters()}
                    self.writer.submit(runlog.log_epoch, dict(record), weights)
                snapshot(e)
                improved = val_loss < self.best_val_loss and not blown
                if improved:
                    self.best_val_loss, self.best_epoch, self.bad_epochs = val_loss, e, 0
                else:
                    self.bad_epochs += 1
                self.stopped_early = c.patience is not None and self.bad_epochs >= c.patience
                self.epoch = e
                self._save(LAST, with_state=True)
                if improved:
                    self._save(BEST, with_state=False)
                self.log(
                    f"epoch {e}/{c.epochs}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.4f}"
                    f" | val loss {val_loss:.4f} acc {val_acc:.4f}{' (best)' if improved else ''}"
                    f" | {record['images_per_s']:.0f} img/s"
                )
                if self.blown_epochs >= DIVERGED_EPOCHS or (blown and (e == c.epochs or self.stopped_early)):
                    raise Diverged(
                        f"training diverged: the training loss was {record['train_loss']:.3g} in epoch {e}, "
                        f"over {DIVERGED_FACTOR:g} times its start ({self._loss_reference():.3g}), for "
                        f"{self.blown_epochs} epoch(s) in a row; lower --lr (now {c.lr:g})"
                    )
                if self.stopped_early:
                    self.log(
                        f"early stop: validation loss has not improved for {c.patience} epochs "
                        f"(best {self.best_val_loss:.4f} at epoch {self.best_epoch})"
                    )
                if self._interrupt:
                    interrupted_at = (e, 0)
                    break
        finally:
            signal_restore(previous)
            self._close_files(runlog)  # every file of this run is on disk before we return or raise
        result = self._result()
        if interrupted_at is not None:
            result.interrupted, result.interrupted_at = True, interrupted_at
        return result

    def _close_files(self, runlog: RunLog | None) -> None:
        """Wait for every queued write, then close TensorBoard; the first failure is the one raised."""
        if runlog is None:  # a rank other than 0 wrote nothing
            return
        try:
            self.writer.close()
        except BaseException:
            runlog.close(quiet=True)  # TensorBoard would repeat a full disk's error
            raise
        runlog.close()

    def _loss_reference(self) -> float:
        """Where the loss started: the first step's, or a uniform guess's (``ln K``) if higher."""
        return max(self.start_loss or 0.0, math.log(max(len(self.prepared.classes), 2)))

    def _check_weights(self, epoch: int) -> None:
        finite = torch.stack([torch.isfinite(p).all() for p in self.net.parameters()]).all()
        if not bool(finite):
            raise Diverged(
                f"the weights became NaN or infinite in epoch {epoch}; "
                f"lower --lr (now {self.config.lr:g}) or check the data"
            )

    def _kept(self) -> str:
        """Which checkpoints a stopped run left, and what each holds (only files that exist)."""
        kept = []
        if (self.out / LAST).is_file():
            what = "the diverged state" if self.blown_epochs else "the last good epoch"
            kept.append(f"{self.out / LAST} holds epoch {self.epoch}, {what}")
        if (self.out / BEST).is_file() and self.best_epoch is not None:
            kept.append(f"{self.out / BEST} holds epoch {self.best_epoch} (val loss {self.best_val_loss:.4g})")
        return "; ".join(kept) if kept else f"no checkpoint was written in {self.out}"

    def _set_lr(self, epoch: int) -> float:
        c = self.config
        lr = c.lr if c.schedule == "constant" else c.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / c.epochs))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _epoch_generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)

    def _train_epoch(self, epoch: int) -> dict[str, float] | None:
        """One pass over the training split; None when Ctrl-C stopped it (state saved).

        Under torchrun every rank walks the same global batches and trains on its rows of each.
        """
        data, prep, bs = self.prepared.splits.train, self.prepared.preprocessing, self.config.batch_size
        n_steps = math.ceil(len(data) / bs)
        if self._partial is not None:
            p, self._partial = self._partial, None
            step0, order = int(p["step"]), p["order"]
            generator = torch.Generator()
            generator.set_state(p["generator"])
            loss_sum, correct, seen = p["running"]
            seconds = float(p["train_seconds"])
        else:
            generator = self._epoch_generator(epoch)
            order = torch.randperm(len(data), generator=generator)
            step0, loss_sum, correct, seen, seconds = 0, 0.0, 0.0, 0.0, 0.0
        self.model.train()
        bar = tqdm(
            total=n_steps,
            initial=step0,
            desc=f"epoch {epoch}/{self.config.epochs}",
            unit="batch",
            disable=not self.progress,
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        normalize = fast_normalize(prep, data.channels)
        # per step only detached references (mean loss, hits, rows); read back together at a flush
        pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []
        seen_here, started = 0, time.perf_counter()
        try:
            for step in range(step0, n_steps):
                batch = order[step * bs : (step + 1) * bs]
                x = data.images[batch]
                if self.augment is not None:  # the whole global batch, so the generator advances alike
                    x = self.augment(x, generator)
                x, idx = self.dist.shard(x), self.dist.shard(batch)
                x = normalize(x).to(self.device, non_blocking=True)
                y = data.labels[idx].to(self.device, non_blocking=True)
                logits = self.model(x)
                loss = F.cross_entropy(logits, y) if len(idx) else logits.sum()  # a rank's empty share adds 0
                self.optimizer.zero_grad(set_to_none=True)
                (loss * self.dist.loss_scale(len(idx), len(batch)) if self.dist.active else loss).backward()
                self.optimizer.step()
                pending.append((loss.detach(), (logits.detach().argmax(1) == y).sum(), len(idx)))
                seen_here += len(batch)
                if len(pending) >= FLUSH_EVERY or step + 1 == n_steps or self._interrupt:
                    first_step = step + 2 - len(pending)
                    losses, hits, counts = self._flush(pending)
                    if self.start_loss is None and step0 == 0 and epoch == 1:
                        self.start_loss = losses[0]
                    for i, (value, n) in enumerate(zip(losses, counts)):
                        if not math.isfinite(value):
                            raise Diverged(
                                f"the training loss became {value} at epoch {epoch}, step {first_step + i} of "
                                f"{n_steps}; lower --lr (now {self.config.lr:g}) or check the data"
                            )
                        loss_sum += value * n
                        seen += n
                    correct += hits
                    pending.clear()
                    bar.update(step + 1 - bar.n)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
                if self._interrupt:
                    seconds += time.perf_counter() - started
                    self._save_partial(epoch, step + 1, order, generator, (loss_sum, correct, seen), seconds)
                    return None
        finally:
            bar.close()
        seconds += time.perf_counter() - started
        return {
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "images_per_s": seen_here / max(time.perf_counter() - started, 1e-9),
        }

    def _flush(self, pending: list[tuple[torch.Tensor, torch.Tensor, int]]) -> tuple[list[float], int, list[int]]:
        """Read back the pending steps: each step's mean loss and rows over all ranks, and the hits.

        Alone, the losses are exactly the steps' own float32 means (``x * n / n`` is exact in float64).
        """
        counts = torch.tensor([p[2] for p in pending], dtype=torch.float64, device=self.device)
        table = torch.stack(
            [
                torch.stack([p[0] for p in pending]).double() * counts,
                torch.stack([p[1] for p in pending]).double(),
                counts,
            ],
            1,
        )
        table = self.dist.sum(table).cpu()
        n = table[:, 2]
        return (table[:, 0] / n).tolist(), int(table[:, 1].sum()), [int(v) for v in n.tolist()]

    # -- files -----------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        p, splits = self.prepared, self.prepared.splits
        return {
            "name": self.out.name,
            "architecture": p.architecture,
            "classes": p.classes,
            "preprocessing": p.preprocessing.to_dict(),
            "dataset": {
                "name": self.config.data,
                "note": splits.train.note,
                "split_seed": splits.seed,
                "split": splits.description,
                "sizes": {s: len(splits[s]) for s in ("train", "val", "test")},
            },
            "epoch": self.epoch,
            "metrics": self.history[-1] if self.history else None,
            "best": (
                {
                    "epoch": self.best_epoch,
                    "val_loss": self.best_val_loss,
                    "val_acc": next(r["val_acc"] for r in self.history if r["epoch"] == self.best_epoch),
                }
                if self.best_epoch is not None
                else None
            ),
            "history": self.history,
            "config": self.config.to_dict(),
            "command": self.command,
            "convscope_version": __version__,
            "torch_version": torch.__version__,
        }

    def _train_state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": 0,
            "optimizer": _cpu_copy(self.optimizer.state_dict()),
            "best_val_loss": self.best_val_loss,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "start_loss": self.start_loss,
            "blown_epochs": self.blown_epochs,
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
        }

    def _save(self, name: str, with_state: bool, extra_state: dict[str, Any] | None = None) -> None:
        """Queue a checkpoint write of CPU copies of the current state (rank 0 only)."""
        if self.writer is None:
            return
        state = None
        if with_state:
            state = {**self._train_state(), **(extra_state or {})}
        weights = _cpu_copy(self.net.state_dict())
        self.writer.submit(save_checkpoint, self.out / name, weights, copy.deepcopy(self._meta()), state)

    def _save_partial(
        self,
        epoch: int,
        step: int,
        order: torch.Tensor,
        generator: torch.Generator,
        running: tuple[float, float, float],
        seconds: float,
    ) -> None:
        """Ctrl-C inside an epoch: save the exact position so ``--resume`` continues from it."""
        self._partial_step = step
        self._save(
            LAST,
            with_state=True,
            extra_state={
                "step": step,
                "order": order,
                "generator": generator.get_state(),
                "running": [float(v) for v in running],
                "train_seconds": seconds,
            },
        )

    def _result(self) -> TrainResult:
        return TrainResult(
            self.out,
            self.epoch,
            list(self.history),
            self.best_epoch,
            self.best_val_loss,
            stopped_early=self.stopped_early,
            notes=list(self.prepared.notes),
        )

    # -- Ctrl-C ----------------------------------------------------------------------
    def _install_sigint(self) -> Any:
        """First Ctrl-C: finish the current step, save, stop. A second one aborts at once."""
        if threading.current_thread() is not threading.main_thread() or self.dist.active:
            return None  # under torchrun a stop must be every rank's: Ctrl-C ends the processes

        def handler(signum, frame):
            if self._interrupt:
                raise KeyboardInterrupt
            self._interrupt = True
            self.log("Ctrl-C: saving a resumable checkpoint after this step (press again to abort)")

        return signal.signal(signal.SIGINT, handler)


def fast_normalize(prep: Preprocessing, channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """:meth:`Preprocessing.normalize` with its constants made once, for the hot loop.

    Returns exactly the same numbers: ``(x - 0) / s`` is computed as ``x / s`` (subtracting
    zero is exact), which with a single scale is the two operations a hand-written loop
    does (``x.float() / 255``) instead of building two tensors and three operations per batch.
    """
    means = list(prep.mean) * channels if len(prep.mean) == 1 else list(prep.mean)
    stds = list(prep.std) * channels if len(prep.std) == 1 else list(prep.std)
    if len(means) != channels or len(stds) != channels:
        return prep.normalize  # let it raise its own clear error
    if not any(means) and len(set(stds)) == 1:
        scale = stds[0]
        return lambda x: x.float() / scale
    mean = torch.tensor(means, dtype=torch.float32).view(channels, 1, 1)
    std = torch.tensor(stds, dtype=torch.float32).view(channels, 1, 1)
    return lambda x: (x.float() - mean) / std


def _cpu_copy(obj: Any) -> Any:
    """A copy of nested dicts/lists/tuples with every tensor copied to the CPU (training
    keeps changing the originals in place while the background thread writes)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return copy.copy(obj)


def signal_restore(previous: Any) -> None:
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
