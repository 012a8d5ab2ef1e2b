"""The trainer, checked against independent computations: plain PyTorch forward passes,
TensorBoard's own reader, F.conv2d for the snapshots, and a straight run for resume."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convscope.data import load_splits
from convscope.errors import ConvscopeError
from convscope.models import Preprocessing, load_checkpoint, load_model
from convscope.train import TrainConfig, Trainer, load_snapshot, read_metrics, train
from convscope.train.trainer import fast_normalize

KEYS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"]


def digits_config(out, **kw) -> TrainConfig:
    base = dict(model="tiny-vgg", data="digits", epochs=3, lr=0.01, batch_size=64, out=str(out), device="cpu")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "digits"
    return train(digits_config(out), progress=False, log=lambda m: None)


def test_loss_falls_and_accuracy_beats_chance(digits_run):
    h = digits_run.history
    assert [r["epoch"] for r in h] == [1, 2, 3]
    assert h[-1]["train_loss"] < h[0]["train_loss"] * 0.6
    assert h[-1]["val_acc"] > 0.5  # chance is 0.1 for ten classes
    assert digits_run.best_epoch == min(h, key=lambda r: r["val_loss"])["epoch"]


def test_metrics_jsonl_holds_one_record_per_epoch(digits_run):
    lines = (digits_run.out / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records == digits_run.history == read_metrics(digits_run.out)
    for r in records:
        assert list(r) == KEYS
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["val_acc"] <= 1
        assert r["lr"] == 0.01 and r["seconds"] > 0 and r["images_per_s"] > 0


def test_best_checkpoint_reproduces_its_recorded_validation_metrics(digits_run):
    """Rebuild from best.pt and recompute val loss/accuracy with a plain forward pass."""
    model = load_model(digits_run.best)
    meta = model.meta
    assert meta["architecture"]["zoo"] == "tiny-vgg"
    assert meta["architecture"]["kwargs"]["input_size"] == [16, 16]  # digits are 8x8, too small: resized
    assert meta["classes"] == [str(i) for i in range(10)]
    assert meta["dataset"]["name"] == "digits" and meta["dataset"]["split_seed"] == 0
    assert "seed 0" in meta["dataset"]["split"] and meta["convscope_version"]
    val = load_splits("digits", seed=0).val
    x = F.interpolate(val.images.float(), size=(16, 16), mode="bilinear", align_corners=False, antialias=False)
    x = x.round().clamp(0, 255) / 255.0
    with torch.no_grad():
        logits = model.net(x)
    best = digits_run.best_metrics
    assert float((logits.argmax(1) == val.labels).float().mean()) == pytest.approx(best["val_acc"], abs=1e-6)
    assert float(F.cross_entropy(logits, val.labels)) == pytest.approx(best["val_loss"], rel=1e-4)


def test_tensorboard_events_hold_the_logged_scalars_and_histograms(digits_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(digits_run.out), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag, key in [
        ("loss/train", "train_loss"),
        ("loss/val", "val_loss"),
        ("accuracy/train", "train_acc"),
        ("accuracy/val", "val_acc"),
        ("lr", "lr"),
    ]:
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2, 3]
        assert [e.value for e in events] == pytest.approx([r[key] for r in digits_run.history], rel=1e-6)
    assert "weights/conv_1_1.weight" in tags["histograms"] and "weights/output.bias" in tags["histograms"]
    events = acc.Histograms("weights/conv_1_1.weight")
    assert [e.step for e in events] == [1, 2, 3]
    h = events[-1].histogram_value  # epoch 3 = the weights in last.pt
    w = load_checkpoint(digits_run.last)["state_dict"]["conv_1_1.weight"].double()
    assert h.num == w.numel() == sum(h.bucket)
    assert (h.min, h.max) == pytest.approx((float(w.min()), float(w.max())), rel=1e-6)
    assert h.sum == pytest.approx(float(w.sum()), abs=1e-5)
    assert h.sum_squares == pytest.approx(float((w * w).sum()), rel=1e-5)
    counts, _ = np.histogram(w.numpy(), bins=len(h.bucket), range=(h.min, h.max))
    assert np.abs(np.array(h.bucket) - counts).sum() <= 2  # bucket edges: histc vs numpy may differ by one value


def test_snapshots_hold_first_conv_weights_and_its_maps(digits_run):
    files = sorted((digits_run.out / "snapshots").glob("epoch_*.npz"))
    assert [f.name for f in files] == [f"epoch_{e:03d}.npz" for e in range(4)]  # 0 = before training
    assert all(f.stat().st_size < 20_000 for f in files)
    snap = load_snapshot(files[-1])
    state = load_checkpoint(digits_run.last)["state_dict"]
    assert snap["layer"] == "conv_1_1" and snap["epoch"] == 3
    assert np.array_equal(snap["weight"], state["conv_1_1.weight"].numpy())
    x = torch.from_numpy(snap["image"]).float()[None] / 255.0
    expected = F.conv2d(x, state["conv_1_1.weight"], state["conv_1_1.bias"])[0]
    assert np.allclose(snap["activations"], expected.numpy(), atol=1e-5)
    first = load_snapshot(files[0])
    assert np.array_equal(first["image"], snap["image"]) and not np.array_equal(first["weight"], snap["weight"])


def test_a_second_run_into_the_same_directory_is_refused(digits_run):
    with pytest.raises(ConvscopeError, match="--resume"):
        train(digits_config(digits_run.out), progress=False, log=lambda m: None)


# -- resume ---------------------------------------------------------------------------------

RESUME_KW = dict(epochs=4, dropout=0.3, augment="shift,rotate", optimizer="adam")


def _same_run(a, b) -> None:
    sa = load_checkpoint(a.last)
    sb = load_checkpoint(b.last)
    for name, tensor in sa["state_dict"].items():
        assert torch.equal(tensor, sb["state_dict"][name]), name
    drop = ("seconds", "images_per_s")
    strip = lambda h: [{k: v for k, v in r.items() if k not in drop} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    assert torch.equal(sa["train_state"]["rng_cpu"], sb["train_state"]["rng_cpu"])


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "run"
    return train(digits_config(out, **RESUME_KW), progress=False, log=lambda m: None)


def test_resume_after_two_epochs_equals_a_straight_run(tmp_path, straight_run):
    out = tmp_path / "resumed"
    first = train(digits_config(out, **{**RESUME_KW, "epochs": 2}), progress=False, log=lambda m: None)
    assert first.epochs == 2
    resumed = train(digits_config(out, **RESUME_KW), resume=True, progress=False, log=lambda m: None)
    assert resumed.epochs == 4
    _same_run(resumed, straight_run)
    assert read_metrics(out) == resumed.history


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(tmp_path, straight_run):
    out = tmp_path / "interrupted"
    trainer = Trainer(digits_config(out, **RESUME_KW), progress=False, log=lambda m: None)
    calls = {"n": 0}

    def press_ctrl_c(module, inputs):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 30:  # epoch 2, step 7 (23 steps per epoch)
                signal.raise_signal(signal.SIGINT)

    trainer.net.register_forward_pre_hook(press_ctrl_c)
    result = trainer.fit()
    assert result.interrupted and result.interrupted_at == (2, 7) and result.epochs == 1
    state = load_checkpoint(out / "last.pt")["train_state"]
    assert state["epoch"] == 1 and state["step"] == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    resumed = train(digits_config(out, **RESUME_KW), resume=True, progress=False, log=lambda m: None)
    _same_run(resumed, straight_run)


def test_resume_refuses_to_change_what_defines_the_run(tmp_path, straight_run):
    with pytest.raises(ConvscopeError, match="--lr cannot change"):
        train(digits_config(straight_run.out, **{**RESUME_KW, "lr": 0.5}), resume=True, progress=False)
    with pytest.raises(ConvscopeError, match="nothing to resume"):
        train(digits_config(tmp_path / "none"), resume=True, progress=False)


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    # lr 0 after the first step: nothing can improve, so it stops after 1 + patience epochs
    result = train(
        digits_config(tmp_path / "es", epochs=10, patience=2, optimizer="sgd", lr=1e-12),
        progress=False,
        log=lambda m: None,
    )
    assert result.stopped_early
    losses = [r["val_loss"] for r in result.history]
    best = min(range(len(losses)), key=losses.__getitem__)
    assert len(losses) == best + 1 + 2


def test_a_non_finite_loss_stops_with_epoch_and_step(tmp_path):
    trainer = Trainer(digits_config(tmp_path / "nan"), progress=False, log=lambda m: None)
    calls = {"n": 0}

    def poison(module, inputs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 26:  # epoch 2, step 3
                return output * math.inf
        return output

    trainer.net.register_forward_hook(poison)
    with pytest.raises(ConvscopeError, match=r"epoch 2, step 3 of 23"):
        trainer.fit()
    state = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert state["train_state"]["epoch"] == 1  # the last good epoch is kept
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values())


def test_training_on_in_memory_splits(tmp_path):
    """``train(splits=...)``: a user's own data, here digits with two classes dropped."""
    full = load_splits("digits", seed=1)
    keep = lambda ds: ds.subset(torch.nonzero(ds.labels < 8).flatten())  # noqa: E731
    from convscope.data import Splits

    splits = Splits(keep(full.train), keep(full.val), keep(full.test), seed=1, description="digits 0-7")
    result = train(
        digits_config(tmp_path / "mem", data="digits-0-7", epochs=1), splits=splits, progress=False, log=lambda m: None
    )
    meta = load_checkpoint(result.last)["meta"]
    assert meta["dataset"]["name"] == "digits-0-7" and meta["dataset"]["split"] == "digits 0-7"
    assert meta["dataset"]["sizes"]["train"] == len(splits.train)
    assert load_model(result.last).net(torch.zeros(1, 1, 16, 16)).shape == (1, 10)  # classes kept as named


@pytest.mark.parametrize(
    "prep",
    [
        Preprocessing(size=(4, 4), channels=1),
        Preprocessing(size=(4, 4), channels=3, mean=(127.0,), std=(128.0,)),
        Preprocessing(size=(4, 4), channels=3, mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)),
    ],
)
def test_fast_normalize_gives_exactly_what_preprocessing_gives(prep):
    x = torch.randint(0, 256, (5, prep.channels, 4, 4), dtype=torch.uint8)
    assert torch.equal(fast_normalize(prep, prep.channels)(x), prep.normalize(x))


def test_fine_tuning_starts_from_the_checkpoint_weights(tmp_path, digits_run):
    from convscope.train.setup import prepare

    src = load_checkpoint(digits_run.best)["state_dict"]
    config = digits_config(tmp_path / "ft", model=str(digits_run.best))
    prepared = prepare(config)
    assert prepared.architecture["zoo"] == "tiny-vgg"
    state = prepared.net.state_dict()
    assert torch.equal(state["conv_2_2.weight"], src["conv_2_2.weight"])


def test_fine_tuning_on_fewer_classes_gets_a_new_head_and_keeps_the_body(tmp_path, digits_run):
    from dataclasses import replace

    from convscope.data import Splits
    from convscope.train.setup import prepare

    full = load_splits("digits", seed=0)
    eight = lambda ds: replace(ds.subset(torch.nonzero(ds.labels < 8).flatten()), classes=ds.classes[:8])  # noqa: E731
    splits = Splits(eight(full.train), eight(full.val), eight(full.test), seed=0, description="digits 0-7")
    src = load_checkpoint(digits_run.best)["state_dict"]
    prepared = prepare(digits_config(tmp_path / "ft8", model=str(digits_run.best)), splits)
    state = prepared.net.state_dict()
    assert prepared.architecture["kwargs"]["num_classes"] == 8 and state["output.weight"].shape[0] == 8
    for name in ("conv_1_1.weight", "conv_2_2.bias"):
        assert torch.equal(state[name], src[name])
    assert any("new output layer for 8 classes" in n for n in prepared.notes)
    result = train(
        digits_config(tmp_path / "ft8", model=str(digits_run.best), epochs=1),
        splits=splits,
        progress=False,
        log=lambda m: None,
    )
    assert load_model(result.best).net(torch.zeros(1, 1, 16, 16)).shape == (1, 8)


# -- hyper-parameters, divergence, one writer per run folder, leftovers ----------------------


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"lr": math.inf}, "--lr must be a positive finite number"),
        ({"lr": math.nan}, "--lr must be"),
        ({"momentum": math.nan}, "--momentum must be in"),
        ({"momentum": 1.5}, "--momentum must be in"),
        ({"weight_decay": math.inf}, "--weight-decay must be a finite"),
        ({"dropout": math.nan}, "--dropout"),
    ],
)
def test_non_finite_or_out_of_range_hyper_parameters_are_refused(tmp_path, setting, message):
    with pytest.raises(ConvscopeError, match=message):
        digits_config(tmp_path / "x", **setting)


def named_files(message: str, out) -> list[str]:
    """The paths inside ``out`` that a message names."""
    return re.findall(re.escape(str(out)) + r"/[\w.]+", message)


def test_a_diverging_adam_run_fails_and_names_only_files_that_exist(tmp_path):
    out = tmp_path / "adam"
    logged = []
    with pytest.raises(ConvscopeError, match=r"training diverged: the training loss was .* in epoch 2") as info:
        train(digits_config(out, epochs=2, lr=1e6), progress=False, log=logged.append)
    message = str(info.value)
    assert "--lr (now 1e+06)" in message and named_files(message, out) == [str(out / "last.pt")]
    assert load_checkpoint(out / "last.pt")["train_state"]["epoch"] == 2
    assert not (out / "best.pt").exists()  # no diverged epoch is kept as the best one
    assert len(logged) >= 2  # the epochs were still reported as they ended


def test_a_loss_that_turns_nan_in_the_first_epoch_names_no_missing_checkpoint(tmp_path):
    out = tmp_path / "sgd"
    with pytest.raises(ConvscopeError, match="the training loss became nan at epoch 1") as info:
        train(digits_config(out, optimizer="sgd", lr=1e6), progress=False, log=lambda m: None)
    assert not list(out.glob("*.pt"))
    assert named_files(str(info.value), out) == [] and "no checkpoint was written" in str(info.value)


def test_a_second_writer_in_the_same_folder_is_refused_until_the_first_is_done(tmp_path):
    first = Trainer(digits_config(tmp_path / "r", epochs=1), progress=False, log=lambda m: None)
    lock_file = tmp_path / "r" / ".convscope.lock"
    assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    with pytest.raises(ConvscopeError, match=rf"is being written by this process \(pid {os.getpid()}"):
        Trainer(digits_config(tmp_path / "r", epochs=1), progress=False, log=lambda m: None)
    first.fit()
    assert not lock_file.exists()  # released when fit returns
    resuming = Trainer(digits_config(tmp_path / "r", epochs=2), resume=True, progress=False, log=lambda m: None)
    with pytest.raises(ConvscopeError, match="is being written by this process"):  # a run being written
        Trainer(digits_config(tmp_path / "r", epochs=2), resume=True, progress=False, log=lambda m: None)
    assert resuming.fit().epochs == 2


def test_the_next_start_removes_temp_files_a_killed_write_left(tmp_path):
    out = tmp_path / "run"
    train(digits_config(out, epochs=1), progress=False, log=lambda m: None)
    left = []
    for folder, name in ((out, "best.pt"), (out, "last.pt"), (out / "snapshots", "epoch_002.npz")):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)  # as io_utils.atomic_path names them
        os.write(fd, b"half a file")
        os.close(fd)
        left.append(Path(tmp))
    (out / ".keep").write_text("not ours")
    logged = []
    train(digits_config(out, epochs=2), resume=True, progress=False, log=logged.append)
    assert not any(p.exists() for p in left) and (out / ".keep").exists()
    assert any("removed 3 temporary file(s)" in m for m in logged), logged


def test_without_flock_the_recorded_pid_decides(tmp_path, monkeypatch):
    """Where ``fcntl.flock`` is unavailable, a live recorded pid holds the run and a dead one is stale."""
    import subprocess
    import sys

    from convscope.train import runlock

    monkeypatch.setattr(runlock, "fcntl", None)
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        lock_file = tmp_path / runlock.LOCK_FILE
        lock_file.write_text(json.dumps({"pid": parent.pid, "command": "convscope train --out x"}))
        with pytest.raises(ConvscopeError, match=rf"another process \(pid {parent.pid}: convscope train --out x\)"):
            runlock.RunLock(tmp_path).acquire()
        lock_file.write_text(json.dumps({"pid": dead.pid}))
        with runlock.RunLock(tmp_path) as lock:
            assert lock.stale == {"pid": dead.pid}
            assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        assert not lock_file.exists()
    finally:
        parent.kill()
        parent.wait()
