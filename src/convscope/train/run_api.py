"""``convscope.Run``: the run folder of ``convscope train``, written from your own training loop.

In the spirit of ``torch.utils.tensorboard.SummaryWriter``::

    run = cs.Run("runs/mine", net, classes=classes, input_size=(28, 28), sample=(image, label))
    for epoch in range(1, epochs + 1):
        for step, (x, y) in enumerate(loader, start=(epoch - 1) * len(loader)):
            loss = ...; loss.backward(); opt.step()
            run.log(step, loss=loss)                 # 0-dim tensors are fine: no host sync here
        run.epoch_end(epoch, val_loss=vl, val_acc=va, lr=opt.param_groups[0]["lr"])
    run.close()                                      # or ``with cs.Run(...) as run:``

The folder is exactly what the trainer writes, through the trainer's own writers, so
the training view (``convscope serve --runs runs/``), ``convscope report`` and
``cs.load_model("runs/mine/best.pt")`` read it the same way: ``metrics.jsonl`` records
(:class:`~convscope.train.runlog.RunLog`), TensorBoard scalars and weight histograms,
``snapshots/epoch_NNN.npz`` (:mod:`~convscope.train.snapshots`), ``last.pt`` and
``best.pt`` (:func:`~convscope.models.save_checkpoint`, atomic). One background thread
(:class:`~convscope.train.background.BackgroundWriter`) does every write, in order, while
the loop goes on, and the folder is locked (:class:`~convscope.train.runlock.RunLock`)
from the constructor to :meth:`Run.close`, so a second writer is refused.

``best.pt`` rebuilds without ``trust`` when the net is a zoo architecture (recognised
from its layers) or the model was loaded from a convscope checkpoint; give
``architecture="file.py:factory"`` for your own module, or load the weights later
with ``load_model("file.py:factory@runs/mine/best.pt")``.

Under ``torchrun`` every rank may make the same ``Run`` calls: only rank 0 (``RANK=0``)
locks and writes the folder and prints; on the other ranks the calls keep the history
but write nothing. Give :meth:`Run.epoch_end` metrics already reduced across ranks
(``torch.distributed.all_reduce``) if each rank measured only its own share.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import ConvscopeError
from ..io_utils import remove_temp_files
from ..models import Model, Preprocessing, load_checkpoint, save_checkpoint, zoo
from ..models.model import guess_preprocessing
from . import distributed
from .background import BackgroundWriter
from .runlock import RunLock
from .runlog import METRICS, RunLog
from .snapshots import FOLDER as SNAPSHOTS
from .snapshots import first_conv, snapshot_arrays, write_snapshot
from .trainer import BEST, FLUSH_EVERY, LAST

RECORD_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s")
STEP_TAG = "step/"  # per-step scalars go under their own TensorBoard tags, apart from the per-epoch ones
EPOCH_MEANS = {
    "loss": "train_loss",
    "train_loss": "train_loss",
    "acc": "train_acc",
    "accuracy": "train_acc",
    "train_acc": "train_acc",
}  # logged per step -> the epoch record's mean when epoch_end gets none
NO_ARCHITECTURE = (
    "the architecture of this net is not recorded (not a zoo net; give Run(architecture="
    "'file.py:factory') to record it); load the weights with load_model('file.py:factory@{path}')"
)

Scalar = float | int | torch.Tensor


class Run:
    """One run folder written from a hand-written loop; see the module docstring.

    ``model``: a :class:`~convscope.Model`, or an ``nn.Module`` with ``classes`` and
    ``preprocessing`` (or ``input_size``; else the sample's size). ``config``: any JSON
    dict, recorded as the run's config (its ``epochs`` tells the training view when the
    run is finished). ``sample``: a fixed image (uint8 pixels ``(C,H,W)``, a float network
    input, or anything :class:`~convscope.Preprocessing` reads), or ``(image, label)``,
    whose first-convolution maps each snapshot shows. ``monitor``/``mode``: which metric of
    :meth:`epoch_end` picks ``best.pt`` (default the lowest ``val_loss``). ``optimizer``:
    its learning rate fills the record's ``lr``. ``resume``: continue the history of a run
    already in ``folder`` (your loop restores its own weights). ``architecture``: a zoo
    ``{"zoo": name, "kwargs": {...}}`` or a factory ``"pkg.module:fn"`` / ``"file.py:fn"``.
    """

    def __init__(
        self,
        folder: str | Path,
        model: Model | nn.Module,
        classes: list[str] | None = None,
        *,
        preprocessing: Preprocessing | dict[str, Any] | None = None,
        input_size: tuple[int, int] | None = None,
        config: Mapping[str, Any] | None = None,
        sample: Any = None,
        monitor: str = "val_loss",
        mode: str | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        architecture: str | dict[str, Any] | None = None,
        data: str | None = None,
        resume: bool = False,
        histograms: bool = True,
        command: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.out = Path(folder)
        self.say = log or (lambda msg: print(msg, file=sys.stderr))
        self.writes = distributed.current().is_main  # under torchrun only rank 0 touches the folder
        if not self.writes:
            self.say = lambda msg: None
        self.lock = (RunLock(self.out, command=command) if self.writes else distributed.NoLock()).acquire()
        try:  # the folder is locked first; whatever fails after must release it
            if self.lock.stale is not None:
                self.say(
                    f"{self.out}: took over the lock of pid {self.lock.stale.get('pid')}, which stopped "
                    "without releasing it"
                )
            if self.writes:
                remove_temp_files(self.out)
                remove_temp_files(self.out / SNAPSHOTS)
            wrapped = model if isinstance(model, Model) else None
            self.net = wrapped.net if wrapped is not None else model
            if not isinstance(self.net, nn.Module):
                raise ConvscopeError(f"Run needs a convscope.Model or a torch.nn.Module, not {type(model).__name__}")
            self.classes = [str(c) for c in classes] if classes is not None else (wrapped.classes if wrapped else None)
            self.preprocessing = _preprocessing(self.net, wrapped, preprocessing, input_size, sample)
            self.architecture = _architecture(self.net, wrapped, architecture, self.preprocessing)
            self.config = dict(config or {})
            self.monitor = monitor
            self.mode = mode or ("max" if monitor.endswith(("acc", "accuracy")) else "min")
            if self.mode not in ("min", "max"):
                raise ConvscopeError(f"mode must be 'min' or 'max', not {self.mode!r}")
            self.optimizer, self.data, self.histograms = optimizer, data, histograms
            self.command = command if command is not None else self.lock.command
            self.notes: list[str] = []
            if not self.architecture:
                self.notes.append(NO_ARCHITECTURE.format(path=self.out / BEST))
            self.history: list[dict[str, Any]] = []
            self.best: dict[str, Any] | None = None
            if resume:
                self._resume()
            elif self.writes and ((self.out / LAST).exists() or (self.out / METRICS).exists()):
                raise ConvscopeError(
                    f"{self.out} already holds a run; continue it with Run(..., resume=True) or choose another folder"
                )
            self._sample: tuple[torch.Tensor, torch.Tensor, int] | None = None
            self._steps: list[tuple[int, dict[str, Scalar]]] = []
            self._means: dict[str, list[Scalar]] = {}
            self._epoch_started = time.perf_counter()
            self._unmonitored = False
            self.writer = BackgroundWriter() if self.writes else distributed.NoWriter()
            self.runlog = RunLog(self.out, self.history) if self.writes else None
            self.closed = False
            for note in self.notes:
                self.say(note)
            if sample is not None:
                self.snapshot(sample, epoch=self.epoch)
        except BaseException:
            self.lock.release()
            raise

    def _resume(self) -> None:
        path = self.out / LAST
        if not path.is_file():
            raise ConvscopeError(f"nothing to resume: {path} does not exist")
        meta = load_checkpoint(path)["meta"]
        self.history = [r for r in meta.get("history") or [] if isinstance(r, dict)]
        best = meta.get("best")
        self.best = best if isinstance(best, dict) and self.monitor in best else None

    @property
    def epoch(self) -> int:
        """Epochs recorded so far (the last record's ``epoch``; 0 before the first)."""
        return int(self.history[-1]["epoch"]) if self.history else 0

    @property
    def has_sample(self) -> bool:
        """Whether a snapshot sample is fixed (``sample=`` or :meth:`snapshot`'s)."""
        return self._sample is not None

    # -- per step -----------------------------------------------------------------
    def log(self, step: int, **scalars: Scalar) -> None:
        """TensorBoard scalars ``step/NAME`` at ``step``; floats or 0-dim tensors.

        Tensors are not read here (no host sync): they are detached, copied (so a counter
        the loop keeps adding to in place is read as it was) and converted by the background
        writer, every ``FLUSH_EVERY`` steps. A logged ``loss`` (``acc``) becomes the epoch
        record's ``train_loss`` (``train_acc``), the mean over the epoch's steps, unless
        :meth:`epoch_end` is given one.
        """
        self._check_open()
        values = {k: v.detach().clone() if isinstance(v, torch.Tensor) else v for k, v in scalars.items()}
        for name, value in values.items():
            if name in EPOCH_MEANS:
                self._means.setdefault(EPOCH_MEANS[name], []).append(value)
        self._steps.append((int(step), values))
        if len(self._steps) >= FLUSH_EVERY:
            self._flush_steps()

    def _flush_steps(self) -> None:
        if self._steps:
            steps, self._steps = self._steps, []
            self.writer.submit(_write_steps, self.runlog, steps)

    # -- per epoch ----------------------------------------------------------------
    def epoch_end(self, epoch: int | None = None, *, images: int | None = None, **metrics: Scalar) -> dict[str, Any]:
        """Record epoch ``epoch`` (default: the next one) and queue its files; returns the record.

        ``metrics`` are the record's values (``val_loss``, ``val_acc``, ``train_loss``, ``lr``
        ... and any of your own); ``seconds`` is measured since the previous epoch ended and
        ``images`` (the number of training images seen) gives ``images_per_s``. Writes, in the
        background: the ``metrics.jsonl`` line and TensorBoard scalars in the trainer's
        format, weight histograms, a snapshot (when a sample is known), ``last.pt``, and
        ``best.pt`` when the monitored metric improved.
        """
        self._check_open()
        epoch = self.epoch + 1 if epoch is None else int(epoch)
        seconds = time.perf_counter() - self._epoch_started
        values = {k: _number(v, k) for k, v in metrics.items()}
        for key, logged in self._means.items():
            if key not in values and logged:
                values[key] = _mean(logged)
        self._means = {}
        if "lr" not in values and self.optimizer is not None:
            values["lr"] = float(self.optimizer.param_groups[0]["lr"])
        values.setdefault("seconds", seconds)
        if images is not None:
            values.setdefault("images_per_s", images / max(seconds, 1e-9))
        record = {"epoch": epoch, **{k: values.pop(k, None) for k in RECORD_KEYS[1:]}, **values}
        self._flush_steps()
        self.history = [r for r in self.history if r["epoch"] != epoch] + [record]
        if self.runlog is not None:
            params = (
                {n: p.detach().to("cpu", copy=True) for n, p in self.net.named_parameters()} if self.histograms else {}
            )
            self.writer.submit(self.runlog.log_epoch, dict(record), params)
        if self._sample is not None:
            self.snapshot(epoch=epoch)
        improved = self._improved(record)
        if improved:
            self.best = {
                "epoch": epoch,
                self.monitor: record[self.monitor],
                **{k: record[k] for k in ("val_loss", "val_acc") if record.get(k) is not None},
            }
        self._save(LAST)
        if improved:
            self._save(BEST)
        self._epoch_started = time.perf_counter()
        return record

    def _improved(self, record: dict[str, Any]) -> bool:
        value = record.get(self.monitor)
        if not isinstance(value, (int, float)) or not math.isfinite(value):  # absent, NaN or inf: never best
            if not self._unmonitored:
                self._unmonitored = True
                self.say(
                    f"{self.out}: epoch {record['epoch']} has no finite {self.monitor}, so best.pt is written only "
                    "for epochs that have it (choose the metric with Run(monitor=...))"
                )
            return False
        if self.best is None:
            return True
        return value < self.best[self.monitor] if self.mode == "min" else value > self.best[self.monitor]

    def snapshot(self, sample: Any = None, epoch: int | None = None) -> None:
        """Queue the first convolution's filters and maps on the fixed sample as epoch ``epoch``'s
        snapshot (default: the epochs done so far). ``sample`` (see the class) fixes it first."""
        self._check_open()
        if sample is not None:
            self._sample = _sample(sample, self.preprocessing)
        if self._sample is None:
            raise ConvscopeError("a snapshot needs a sample image: Run(..., sample=image) or run.snapshot(image)")
        if first_conv(self.net) is None or not self.writes:
            return
        image, x, label = self._sample
        arrays = snapshot_arrays(self.epoch if epoch is None else epoch, self.net, image, x, label)
        self.writer.submit(write_snapshot, self.out, arrays)

    def _save(self, name: str) -> None:
        if not self.writes:
            return
        weights = {k: v.detach().to("cpu", copy=True) for k, v in self.net.state_dict().items()}
        self.writer.submit(save_checkpoint, self.out / name, weights, copy.deepcopy(self._meta()))

    def _meta(self) -> dict[str, Any]:
        """The trainer's checkpoint metadata, from what this run knows."""
        meta = {
            "name": self.out.name,
            "architecture": self.architecture,
            "classes": self.classes,
            "preprocessing": self.preprocessing.to_dict(),
            "epoch": self.epoch,
            "metrics": self.history[-1] if self.history else None,
            "best": self.best,
            "history": self.history,
            "config": self.config,
            "command": self.command,
            "writer": "convscope.Run",
            "convscope_version": __version__,
            "torch_version": torch.__version__,
        }
        if self.data is not None:
            meta["dataset"] = {"name": self.data}
        if not self.architecture:
            meta["note"] = self.notes[0]
        return meta

    # -- the end ------------------------------------------------------------------
    def wait(self) -> None:
        """Block until every write queued so far is on disk (re-raises a failed one)."""
        self._flush_steps()
        self.writer.wait()

    def close(self, *, ended: bool = True) -> None:
        """Write everything queued, close TensorBoard and release the folder; safe to call twice.

        ``ended``: the run is over, and ``last.pt`` records it (meta ``ended``), so the training view
        reads it as finished with or without ``config={"epochs": N}``. ``ended=False`` (what leaving
        a ``with`` block on an exception does) leaves it "stopped"; a resumed run's next epoch clears it."""
        if getattr(self, "closed", True):
            return
        self.closed = True
        try:
            self._flush_steps()
            if self.runlog is None:  # a torchrun rank other than 0 wrote nothing
                return
            try:
                self.writer.close()
            except BaseException:
                self.runlog.close(quiet=True)  # TensorBoard would repeat a full disk's error
                raise
            self.runlog.close()
            if ended:
                self._mark_ended()
        finally:
            self.lock.release()

    def _mark_ended(self) -> None:
        """Set ``ended`` in ``last.pt``'s meta, keeping its weights (those of the last epoch_end, which
        the net may have moved on from) and everything else as written."""
        path = self.out / LAST
        if path.is_file():
            last = load_checkpoint(path)
            save_checkpoint(path, last["state_dict"], {**last["meta"], "ended": True}, last.get("train_state"))

    def _check_open(self) -> None:
        if self.closed:
            raise ConvscopeError(f"the run {self.out} is closed")

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(ended=exc[0] is None)

    def __repr__(self) -> str:
        return f"Run({str(self.out)!r}, {self.epoch} epochs{', closed' if self.closed else ''})"


def _write_steps(runlog: RunLog, steps: list[tuple[int, dict[str, Scalar]]]) -> None:
    """Background: the per-step scalars as TensorBoard events (tensors read here, off the loop)."""
    if runlog.writer is None:
        return
    with runlog._room(f"TensorBoard events in {runlog.out}"):
        for step, values in steps:
            for name, value in values.items():
                runlog.writer.add_scalar(STEP_TAG + name, _number(value, name), step)


def _mean(values: list[Scalar]) -> float:
    """The mean of logged step values, the tensors summed on their device (one host read)."""
    tensors = [v.reshape(()).double() for v in values if isinstance(v, torch.Tensor)]
    total = sum(float(v) for v in values if not isinstance(v, torch.Tensor))
    if tensors:
        total += float(torch.stack(tensors).sum())
    return total / len(values)


def _number(value: Any, name: str) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ConvscopeError(
                f"{name} must be a number or a one-element tensor, not a tensor of shape {tuple(value.shape)}"
            )
        return float(value.item())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConvscopeError(f"{name} must be a number, not {type(value).__name__}")
    return float(value)


def _preprocessing(net: nn.Module, wrapped: Model | None, given: Any, input_size: Any, sample: Any) -> Preprocessing:
    if isinstance(given, Preprocessing):
        return given
    if isinstance(given, dict):
        return Preprocessing.from_dict(given)
    if given is not None:
        raise ConvscopeError(f"preprocessing must be a convscope.Preprocessing or a dict, not {type(given).__name__}")
    if input_size is not None:
        return guess_preprocessing(net, tuple(input_size))
    if wrapped is not None:
        return wrapped.preprocessing
    image = sample[0] if isinstance(sample, tuple) else sample
    if isinstance(image, torch.Tensor) and image.dim() == 3:
        return guess_preprocessing(net, tuple(image.shape[-2:]))
    return guess_preprocessing(net)


def _sample(sample: Any, prep: Preprocessing) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(uint8 pixels (C,H,W), network input (C,H,W), label) of a sample as :class:`Run` takes it."""
    image, label = sample if isinstance(sample, tuple) else (sample, -1)
    label = int(label.item() if isinstance(label, torch.Tensor) else label)
    if isinstance(image, torch.Tensor) and image.dtype == torch.uint8:
        pixels = image.detach().cpu()
        return pixels, prep.normalize(pixels), label
    x = image.detach().float().cpu() if isinstance(image, torch.Tensor) else prep(image)
    if x.dim() == 4 and len(x) == 1:
        x = x[0]
    if x.dim() != 3:
        raise ConvscopeError(f"a sample is one image (C,H,W), not a tensor of shape {tuple(x.shape)}")
    return torch.from_numpy(prep.to_display(x)).permute(2, 0, 1).contiguous(), x, label


def _architecture(net: nn.Module, wrapped: Model | None, given: Any, prep: Preprocessing) -> dict[str, Any]:
    """What ``load_model`` rebuilds the net from: given, the loaded model's, a recognised zoo net, or {}."""
    if isinstance(given, dict):
        return dict(given)
    if isinstance(given, str):
        if given in zoo.ZOO:
            found = zoo_architecture(net, prep, names=[given])
            if not found:
                raise ConvscopeError(
                    f"this net is not a {given} for {prep.size[0]}x{prep.size[1]} inputs (its tensors do not match)"
                )
            return found
        if ":" not in given:
            raise ConvscopeError(
                f"architecture is a zoo name, 'pkg.module:factory' or 'file.py:factory', not {given!r}"
            )
        return {"factory": given}
    if given is not None:
        raise ConvscopeError(f"architecture must be a str or a dict, not {type(given).__name__}")
    recorded = (wrapped.meta.get("architecture") if wrapped is not None else None) or {}
    if recorded.get("zoo") or recorded.get("factory"):
        return dict(recorded)
    return zoo_architecture(net, prep)


def zoo_architecture(net: nn.Module, prep: Preprocessing, names: list[str] | None = None) -> dict[str, Any]:
    """``{"zoo": name, "kwargs": {...}}`` if ``net`` is a zoo net for ``prep``'s inputs, else {}.

    The arguments are read off its layers (input channels, classes, activation, dropout)
    and checked by building that zoo net on the ``meta`` device (no memory) and comparing
    every tensor's name and shape, so a net that only looks similar is not recorded as one.
    """
    modules = list(net.modules())
    convs = [m for m in modules if isinstance(m, nn.Conv2d)]
    linears = [m for m in modules if isinstance(m, nn.Linear)]
    activations = [n for n, cls in zoo.ACTIVATIONS.items() if any(type(m) is cls for m in modules)]
    if not convs or not linears or len(activations) != 1:
        return {}
    dropout = next((m.p for m in modules if isinstance(m, nn.Dropout)), 0.0)
    kwargs = {
        "in_channels": convs[0].in_channels,
        "num_classes": linears[-1].out_features,
        "input_size": list(prep.size),
        "activation": activations[0],
        "dropout": dropout,
    }
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    for name in names or list(zoo.ZOO):
        if type(net) is not zoo.ZOO[name].builder:
            continue
        try:
            with torch.device("meta"):
                probe = zoo.build(name, **{**kwargs, "input_size": tuple(prep.size)})
        except (RuntimeError, ValueError):
            continue
        if {k: tuple(v.shape) for k, v in probe.state_dict().items()} == shapes:
            return {"zoo": name, "kwargs": kwargs}
    return {}
