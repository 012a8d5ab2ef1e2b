"""Where a run writes what it measured: ``metrics.jsonl`` and TensorBoard event files.

``metrics.jsonl`` holds one JSON object per finished epoch (epoch, train_loss,
train_acc, val_loss, val_acc, lr, seconds, images_per_s), so curves can be read while
the run goes on and by tools that know nothing of TensorBoard. The event files hold
the same scalars plus a histogram of every weight tensor per epoch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..errors import ConvscopeError
from ..io_utils import out_of_room, write_text_atomic

METRICS = "metrics.jsonl"
SCALARS = {  # metrics key -> TensorBoard tag
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "lr": "lr",
    "images_per_s": "images_per_s",
}


def read_metrics(out: str | Path) -> list[dict[str, Any]]:
    """The per-epoch records of a run directory, in order (empty when none yet)."""
    path = Path(out) / METRICS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def add_histogram(writer, tag: str, values: torch.Tensor, step: int, bins: int = 64) -> None:
    """A TensorBoard histogram of ``values`` in ``bins`` equal-width buckets over [min, max].

    Counted with ``torch.histc``: about 30 times cheaper than ``SummaryWriter.add_histogram``'s
    default 'tensorflow' bucketing, which matters because it runs every epoch. TensorBoard
    reads bucket ``i`` as the values in ``(limit[i-1], limit[i]]``.
    """
    v = values.detach().float().flatten()
    lo, hi = float(v.min()), float(v.max())
    if hi > lo:
        counts = torch.histc(v, bins=bins, min=lo, max=hi)
        limits = torch.linspace(lo, hi, bins + 1)[1:]
    else:
        counts, limits = torch.tensor([float(v.numel())]), torch.tensor([hi])
    writer.add_histogram_raw(
        tag,
        min=lo,
        max=hi,
        num=v.numel(),
        sum=float(v.sum()),
        sum_squares=float((v * v).sum()),
        bucket_limits=limits.tolist(),
        bucket_counts=counts.tolist(),
        global_step=step,
    )


class RunLog:
    """Appends epoch records to ``metrics.jsonl`` and TensorBoard events in ``out``.

    ``history`` is what the run's checkpoint says happened; on resume the metrics file
    is rewritten to match it, dropping epochs logged after that checkpoint was saved,
    and TensorBoard is told to purge events after it. A full disk while logging is a
    one-line :class:`ConvscopeError` naming the file, like every other write of a run.
    """

    def __init__(self, out: str | Path, history: Iterable[dict[str, Any]] = (), tensorboard: bool = True) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        history = list(history)
        self.path = self.out / METRICS
        write_text_atomic(self.path, "".join(json.dumps(r) + "\n" for r in history))
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            _quiet_tensorboard_thread()
            with self._room(f"TensorBoard events in {self.out}"):
                self.writer = SummaryWriter(str(self.out), purge_step=len(history) + 1 if history else None)

    def log_epoch(self, record: dict[str, Any], params: dict[str, torch.Tensor]) -> None:
        """Append ``record`` and log it with a histogram of each tensor in ``params`` (CPU copies)."""
        with self._room(str(self.path)), open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            step = int(record["epoch"])
            with self._room(f"TensorBoard events in {self.out}"):
                for key, tag in SCALARS.items():
                    if record.get(key) is not None:
                        self.writer.add_scalar(tag, record[key], step)
                for name, tensor in params.items():
                    add_histogram(self.writer, f"weights/{name}", tensor, step)
                self.writer.flush()

    def close(self, quiet: bool = False) -> None:
        """Close the event file; ``quiet``: while another error is on its way, raise none of its own."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                with self._room(f"TensorBoard events in {self.out}"):
                    writer.close()
            except Exception:
                if not quiet:
                    raise

    @staticmethod
    @contextmanager
    def _room(what: str) -> Iterator[None]:
        """Turn a full disk (or ``ulimit -f``) inside the block into a one-line ConvscopeError."""
        try:
            yield
        except OSError as exc:
            why = out_of_room(exc)
            if why is None:
                raise
            raise ConvscopeError(f"{why} while writing {what}") from None


def _quiet_tensorboard_thread() -> None:
    """Keep TensorBoard's writer thread from printing a traceback when a write fails.

    The thread stores its error and TensorBoard re-raises it from the next ``flush()`` or
    ``close()`` in the caller (where :class:`RunLog` reports it in one line); the thread's
    own printout would only put a traceback on the screen. Installed once; every other
    thread's errors go to the previous hook unchanged.
    """
    previous = threading.excepthook
    if getattr(previous, "_convscope", False):
        return
    try:
        from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread
    except ImportError:  # another TensorBoard layout: its printout stays
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if isinstance(args.thread, _AsyncWriterThread) and getattr(args.thread, "exception", None) is args.exc_value:
            return
        previous(args)

    hook._convscope = True  # type: ignore[attr-defined]
    threading.excepthook = hook
