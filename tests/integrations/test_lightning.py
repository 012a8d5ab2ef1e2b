"""The Lightning callback under a real ``lightning.Trainer`` on the CPU, on the digits data:
its run folder is the trainer's format, drawn by the training view, and its best.pt loads;
Lightning's own TensorBoardLogger folder beside it is drawn from its event files."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pl = pytest.importorskip(
    "lightning.pytorch", reason="the Lightning callback is an extra: pip install convscope[lightning]"
)

from convscope.data import load_splits  # noqa: E402
from convscope.integrations.lightning import ConvscopeCallback  # noqa: E402
from convscope.models import Preprocessing, load_checkpoint, load_model, zoo  # noqa: E402
from convscope.train import read_metrics  # noqa: E402

PREP = Preprocessing(size=(16, 16), channels=1, mean=(0.0,), std=(255.0,))
KEYS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"]


class Digits(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = zoo.build("tiny-vgg", in_channels=1, num_classes=10, input_size=(16, 16))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        self.log("train_acc", (logits.argmax(1) == y).float().mean(), on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


def loaders():
    splits = load_splits("digits", seed=0)
    sets = [splits[s].conform(PREP) for s in ("train", "val")]
    data = [torch.utils.data.TensorDataset(PREP.normalize(d.images), d.labels) for d in sets]
    return (
        torch.utils.data.DataLoader(data[0], batch_size=64, shuffle=True),
        torch.utils.data.DataLoader(data[1], batch_size=512),
        sets[1],
    )


def test_a_lightning_fit_writes_a_run_the_training_view_draws(tmp_path):
    from fastapi.testclient import TestClient
    from lightning.pytorch.loggers import TensorBoardLogger

    from convscope.server import create_app
    from convscope.server.registry import Registry

    torch.manual_seed(0)
    train_loader, val_loader, val_set = loaders()
    module = Digits()
    callback = ConvscopeCallback(
        tmp_path / "runs" / "lit", model=module.net, classes=val_set.classes, preprocessing=PREP, log=lambda m: None
    )
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=TensorBoardLogger(tmp_path / "runs", name="tb"),
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=5,
    )
    trainer.fit(module, train_loader, val_loader)
    folder = tmp_path / "runs" / "lit"

    records = read_metrics(folder)
    assert [list(r) for r in records] == [KEYS, KEYS] and [r["epoch"] for r in records] == [1, 2]
    final = trainer.callback_metrics  # the last epoch's values, as Lightning computed them
    assert records[-1]["val_loss"] == pytest.approx(float(final["val_loss"]))
    assert records[-1]["val_acc"] == pytest.approx(float(final["val_acc"]))
    assert records[-1]["train_loss"] == pytest.approx(float(final["train_loss_epoch"]))
    assert records[-1]["train_acc"] == pytest.approx(float(final["train_acc"]))
    assert all(r["lr"] == 0.05 and r["images_per_s"] > 0 for r in records)
    assert not (folder / ".convscope.lock").exists()

    model = load_model(folder / "best.pt")  # the wrapped zoo net: rebuilt without trust
    best = min(records, key=lambda r: r["val_loss"])
    assert model.meta["best"]["epoch"] == best["epoch"] and model.meta["config"]["epochs"] == 2
    last = load_model(folder / "last.pt")  # the final weights reproduce the last recorded validation loss
    with torch.no_grad():
        logits = last.net(last.preprocessing.normalize(val_set.images))
    assert float(F.cross_entropy(logits, val_set.labels)) == pytest.approx(records[-1]["val_loss"], rel=1e-5)
    assert load_checkpoint(folder / "last.pt")["meta"]["history"] == records
    snapshots = sorted(p.name for p in (folder / "snapshots").iterdir())
    assert snapshots == ["epoch_000.npz", "epoch_001.npz", "epoch_002.npz"]

    with TestClient(create_app(registry=Registry(["default"]), runs=tmp_path / "runs")) as client:
        runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
        assert sorted(runs) == ["lit", "tb/version_0"]
        assert runs["lit"]["status"] == "finished" and runs["lit"]["epochs"] == 2
        ours = client.get("/api/runs/lit/metrics").json()["curves"]
        theirs = client.get("/api/runs/tb/version_0/metrics").json()["curves"]
    assert ours["val_loss"] == pytest.approx([r["val_loss"] for r in records])
    # Lightning's own event files, read back through TensorBoard: the same per-epoch values
    assert theirs["epoch"] == [1, 2]
    assert theirs["val_loss"] == pytest.approx(ours["val_loss"], rel=1e-6)
    assert theirs["train_loss"] == pytest.approx(ours["train_loss"], rel=1e-6)


class FailsInEpochTwo(Digits):
    def training_step(self, batch, batch_idx):
        if self.current_epoch == 1:
            raise RuntimeError("boom in epoch 2")
        return super().training_step(batch, batch_idx)


def test_a_fit_that_raises_is_not_recorded_as_ended(tmp_path):
    """on_exception closes the run (the folder is released) without marking it ended, while
    on_fit_end does (cs.Run.close): a crashed fit does not read 'finished' with its one epoch."""
    torch.manual_seed(0)
    train_loader, val_loader, val_set = loaders()
    module = FailsInEpochTwo()
    folder = tmp_path / "lit"
    callback = ConvscopeCallback(
        folder, model=module.net, classes=val_set.classes, preprocessing=PREP, log=lambda m: None
    )
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=False,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    with pytest.raises(RuntimeError, match="boom in epoch 2"):
        trainer.fit(module, train_loader, val_loader)
    meta = load_checkpoint(folder / "last.pt")["meta"]
    assert [r["epoch"] for r in meta["history"]] == [1] and "ended" not in meta
    assert not (folder / ".convscope.lock").exists()
