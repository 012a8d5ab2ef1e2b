"""A PyTorch Lightning callback that writes convscope's run folder, over :class:`convscope.Run`.

    from convscope.integrations.lightning import ConvscopeCallback
    trainer = lightning.Trainer(max_epochs=10, callbacks=[
        ConvscopeCallback("runs/lit", model=module.net, classes=classes, input_size=(28, 28))])
    trainer.fit(module, train_loader, val_loader)     # then: convscope serve --runs runs/

Each training step's loss (what ``training_step`` returned) is logged as ``step/loss``;
each epoch's record takes the metrics the module logged (``trainer.callback_metrics``:
``val_loss``, ``val_acc``, ``train_loss_epoch`` ... mapped onto the record's keys by
:func:`convscope.analysis.runs.canonical_metric`), the optimizer's learning rate and the
images seen. The snapshot sample is the first validation image (the first training image
without validation) unless ``sample=`` fixes one. Only the global-zero process writes.

``model``: the module whose weights ``best.pt`` holds: pass the plain ``nn.Module`` your
LightningModule wraps (a zoo net, or one ``architecture=`` names) so that
``cs.load_model("runs/lit/best.pt")`` rebuilds it; by default the LightningModule itself.
Needs ``pip install convscope[lightning]`` (``lightning``, or the older ``pytorch_lightning``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..analysis.runs import canonical_metric, per_step
from ..errors import ConvscopeError
from ..train.run_api import Run

try:
    from lightning.pytorch import Callback
except ImportError:  # only the older package name is installed
    try:
        from pytorch_lightning import Callback
    except ImportError:
        raise ConvscopeError(
            "the Lightning callback needs PyTorch Lightning: pip install convscope[lightning]"
        ) from None


class ConvscopeCallback(Callback):
    """Writes ``folder`` as :class:`convscope.Run` does; the other arguments are :class:`~convscope.Run`'s.

    The run's config records ``max_epochs`` as ``epochs`` (the training view's progress) and
    whatever ``config`` adds. The folder is locked from ``on_fit_start`` until the fit ends,
    also when it ends with an error.
    """

    def __init__(
        self,
        folder: str | Path,
        model: torch.nn.Module | None = None,
        classes: list[str] | None = None,
        *,
        config: dict[str, Any] | None = None,
        sample: Any = None,
        **run_kwargs: Any,
    ) -> None:
        self.folder = Path(folder)
        self.model, self.classes, self.config, self.sample = model, classes, dict(config or {}), sample
        self.run_kwargs = run_kwargs
        self.run: Run | None = None
        self._images = 0

    # -- the fit --------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        optimizers = trainer.optimizers
        self.run = Run(
            self.folder,
            self.model if self.model is not None else pl_module,
            self.classes,
            config={"epochs": trainer.max_epochs, "trainer": "lightning", **self.config},
            sample=self.sample,
            optimizer=optimizers[0] if optimizers else None,
            **self.run_kwargs,
        )

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._first_sample(batch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._first_sample(batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.run is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self.run.log(trainer.global_step, loss=loss)
        inputs = _inputs(batch)
        if inputs is not None:
            self._images += len(inputs)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        """After the epoch's validation (Lightning runs it first): one record of what was logged."""
        if self.run is None or trainer.sanity_checking:
            return
        metrics: dict[str, Any] = {}
        for name, value in trainer.callback_metrics.items():
            if per_step(name) or not isinstance(value, (torch.Tensor, int, float)):
                continue
            key = canonical_metric(name) or name
            if key != "epoch":
                metrics[key] = value
        self.run.epoch_end(trainer.current_epoch + 1, images=self._images or None, **metrics)
        self._images = 0

    def on_fit_end(self, trainer, pl_module) -> None:
        self._close()

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._close(ended=False)  # what was queued is written, and the folder is released; the run reads stopped

    def _close(self, ended: bool = True) -> None:
        if self.run is not None:
            run, self.run = self.run, None
            run.close(ended=ended)

    def _first_sample(self, batch: Any) -> None:
        """The snapshot sample, taken from the first batch seen (before any step trains on it)."""
        if self.run is None or self.run.has_sample:
            return
        inputs = _inputs(batch)
        if inputs is None or inputs.dim() != 4:
            return
        labels = batch[1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else None
        label = int(labels[0]) if isinstance(labels, torch.Tensor) and labels.dim() == 1 else -1
        self.run.snapshot((inputs[0], label), epoch=self.run.epoch)


def _inputs(batch: Any) -> torch.Tensor | None:
    """The images of an ``(x, y, ...)`` batch, or a bare tensor batch; None for other layouts."""
    first = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
    return first if isinstance(first, torch.Tensor) else None
