"""``cs.Run`` from a hand-written loop: the files are the trainer's format, checked against
independent computations (the loop's own numbers, TensorBoard's reader, a plain forward
pass) and read by the training view's API, ``convscope report``'s history and load_model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import convscope as cs
from convscope.analysis.runs import run_history
from convscope.data import load_splits
from convscope.errors import ConvscopeError
from convscope.models import Preprocessing, load_checkpoint, load_model, zoo
from convscope.train import TrainConfig, Trainer, load_snapshot, read_metrics

KEYS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s"]
PREP = Preprocessing(size=(16, 16), channels=1, mean=(0.0,), std=(255.0,))  # digits are 8x8; tiny-vgg takes 16+


def digits():
    splits = load_splits("digits", seed=0)
    return splits.train.conform(PREP), splits.val.conform(PREP)


def hand_loop(folder: Path, epochs: int = 2, **run_kwargs):
    """The loop a person writes, with cs.Run added; returns what the loop itself measured."""
    train_set, val_set = digits()
    torch.manual_seed(0)
    net = zoo.build("tiny-vgg", in_channels=1, num_classes=10, input_size=(16, 16))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    sample = (val_set.images[0], int(val_set.labels[0]))
    seen: dict[str, list] = {"losses": [], "val": [], "weights": []}
    with cs.Run(
        folder,
        net,
        classes=train_set.classes,
        preprocessing=PREP,
        sample=sample,
        optimizer=opt,
        config={"epochs": epochs, "model": "tiny-vgg", "data": "digits"},
        data="digits",
        **run_kwargs,
    ) as run:
        step = 0
        for epoch in range(1, epochs + 1):
            net.train()
            losses = []
            for s in range(0, len(train_set), 64):
                x = PREP.normalize(train_set.images[s : s + 64])
                loss = F.cross_entropy(net(x), train_set.labels[s : s + 64])
                opt.zero_grad()
                loss.backward()
                opt.step()
                run.log(step, loss=loss)  # a 0-dim tensor that still holds its graph
                losses.append(loss.item())
                step += 1
            net.eval()
            with torch.no_grad():
                logits = net(PREP.normalize(val_set.images))
            val_loss = F.cross_entropy(logits, val_set.labels)
            val_acc = (logits.argmax(1) == val_set.labels).float().mean()
            record = run.epoch_end(epoch, val_loss=val_loss, val_acc=val_acc, images=len(train_set))
            seen["losses"].append(losses)
            seen["val"].append((float(val_loss), float(val_acc)))
            seen["weights"].append(net.conv_1_1.weight.detach().clone())
            assert record["epoch"] == epoch
    return net, seen, val_set


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    net, seen, val_set = hand_loop(root / "mine")
    return root, root / "mine", net, seen, val_set


def test_metrics_jsonl_is_the_trainer_format_with_the_loops_numbers(written):
    _, folder, _, seen, _ = written
    records = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert records == read_metrics(folder)
    assert [list(r) for r in records] == [KEYS, KEYS]
    for r, losses, (val_loss, val_acc) in zip(records, seen["losses"], seen["val"]):
        assert r["train_loss"] == pytest.approx(sum(losses) / len(losses), rel=1e-6)  # the mean of the logged steps
        assert r["val_loss"] == pytest.approx(val_loss) and r["val_acc"] == pytest.approx(val_acc)
        assert r["lr"] == 0.05 and r["seconds"] > 0 and r["images_per_s"] == pytest.approx(1437 / r["seconds"])
        assert r["train_acc"] is None  # never logged, and not made up
    assert records[1]["val_loss"] < records[0]["val_loss"]
    assert not (folder / ".convscope.lock").exists()  # released by the with block


def test_tensorboard_holds_epoch_scalars_and_every_step(written):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, folder, _, seen, _ = written
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss/val")] == [
        (1, pytest.approx(seen["val"][0][0])),
        (2, pytest.approx(seen["val"][1][0])),
    ]
    steps = [v for epoch in seen["losses"] for v in epoch]
    assert [e.step for e in acc.Scalars("step/loss")] == list(range(len(steps)))
    assert [e.value for e in acc.Scalars("step/loss")] == pytest.approx(steps, rel=1e-6)
    assert "weights/conv_1_1.weight" in acc.Tags()["histograms"]


def test_snapshots_hold_the_first_conv_before_and_after_each_epoch(written):
    _, folder, net, seen, val_set = written
    assert sorted(p.name for p in (folder / "snapshots").iterdir()) == [f"epoch_00{e}.npz" for e in (0, 1, 2)]
    for epoch, weight in zip((1, 2), seen["weights"]):
        snap = load_snapshot(folder / "snapshots" / f"epoch_00{epoch}.npz")
        assert snap["layer"] == "conv_1_1" and torch.equal(torch.from_numpy(snap["weight"]), weight)
    snap = load_snapshot(folder / "snapshots" / "epoch_002.npz")
    x = PREP.normalize(val_set.images[:1])
    maps = F.conv2d(x, net.conv_1_1.weight, net.conv_1_1.bias)[0]
    assert torch.allclose(torch.from_numpy(snap["activations"]), maps.detach(), atol=1e-5)
    assert snap["label"] == int(val_set.labels[0]) and (snap["image"] == val_set.images[0].numpy()).all()


def test_best_pt_loads_without_trust_and_reproduces_its_validation_loss(written):
    _, folder, _, seen, val_set = written
    model = load_model(folder / "best.pt")  # a zoo net, recognised from its layers
    assert model.meta["architecture"]["zoo"] == "tiny-vgg" and model.classes == [str(i) for i in range(10)]
    best = min(range(2), key=lambda i: seen["val"][i][0])
    assert model.meta["best"]["epoch"] == best + 1
    with torch.no_grad():
        logits = model.net(model.preprocessing.normalize(val_set.images))
    assert float(F.cross_entropy(logits, val_set.labels)) == pytest.approx(seen["val"][best][0], rel=1e-5)
    last = load_checkpoint(folder / "last.pt")["meta"]
    assert last["history"] == read_metrics(folder) and last["config"]["epochs"] == 2
    assert run_history(folder / "best.pt", model.meta) == read_metrics(folder)  # what `convscope report` draws


def test_the_training_view_lists_and_draws_the_run(written):
    from fastapi.testclient import TestClient

    from convscope.server import create_app
    from convscope.server.registry import Registry

    root, _, _, seen, _ = written
    with TestClient(create_app(registry=Registry(["default"]), runs=root)) as client:
        runs = client.get("/api/runs").json()["runs"]
        assert [(r["name"], r["epochs"], r["total_epochs"], r["status"], r["model"]) for r in runs] == [
            ("mine", 2, 2, "finished", "tiny-vgg")
        ]
        body = client.get("/api/runs/mine/metrics").json()
        assert body["curves"]["epoch"] == [1, 2] and body["snapshots"] == [0, 1, 2]
        assert body["curves"]["val_loss"] == pytest.approx([v for v, _ in seen["val"]])
        snap = client.get("/api/runs/mine/snapshots/2").json()
        assert snap["layer"] == "conv_1_1" and snap["weight"]["shape"] == [10, 1, 3, 3]


def test_the_readmes_run_without_a_config_is_named_by_its_architecture(tmp_path):
    """The README's loop gives Run no config: the training view's row still names the zoo net it
    recognised (it said '?'), and closing the run cleanly records that it ended, so it reads
    'finished' without an epoch count (it read 'stopped'); a with-block left on an exception does not."""
    from fastapi.testclient import TestClient

    from convscope.server import create_app
    from convscope.server.registry import Registry

    net = zoo.build("tiny-vgg", in_channels=1, num_classes=10, input_size=(16, 16))
    with cs.Run(tmp_path / "plain", net, classes=[str(i) for i in range(10)], preprocessing=PREP) as run:
        run.epoch_end(1, val_loss=1.0, val_acc=0.5)
        at_epoch = {k: v.clone() for k, v in net.state_dict().items()}
        with torch.no_grad():
            next(net.parameters()).add_(1.0)  # moved on after the epoch: last.pt keeps the epoch's weights
    with pytest.raises(RuntimeError, match="boom"):
        with cs.Run(tmp_path / "crashed", net, classes=[str(i) for i in range(10)], preprocessing=PREP) as run:
            run.epoch_end(1, val_loss=1.0, val_acc=0.5)
            raise RuntimeError("boom")
    with TestClient(create_app(registry=Registry(["default"]), runs=tmp_path)) as client:
        rows = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    row = rows["plain"]
    assert (row["name"], row["model"], row["total_epochs"], row["status"]) == ("plain", "tiny-vgg", None, "finished")
    assert rows["crashed"]["status"] != "finished"
    last = load_checkpoint(tmp_path / "plain" / "last.pt")
    assert last["meta"]["ended"] is True and last["meta"]["history"][0]["val_loss"] == 1.0
    assert all(torch.equal(last["state_dict"][k], v) for k, v in at_epoch.items())


def test_a_second_writer_is_refused_and_resume_continues_the_history(tmp_path):
    net = zoo.build("tiny-vgg", in_channels=1, num_classes=10, input_size=(16, 16))
    run = cs.Run(tmp_path / "r", net, classes=list("0123456789"), preprocessing=PREP, log=lambda m: None)
    with pytest.raises(ConvscopeError, match="is being written by this process"):
        cs.Run(tmp_path / "r", net, preprocessing=PREP)
    with pytest.raises(ConvscopeError, match="is being written by"):  # convscope train takes the same lock
        Trainer(TrainConfig(model="tiny-vgg", data="digits", epochs=1, out=str(tmp_path / "r")), progress=False)
    run.epoch_end(val_loss=2.0, train_loss=2.1)
    run.close()
    run.close()  # twice is fine
    with pytest.raises(ConvscopeError, match="closed"):
        run.log(0, loss=1.0)
    with pytest.raises(ConvscopeError, match="already holds a run; continue it with Run"):
        cs.Run(tmp_path / "r", net, preprocessing=PREP)
    with cs.Run(tmp_path / "r", net, preprocessing=PREP, resume=True, log=lambda m: None) as again:
        assert again.epoch == 1
        again.epoch_end(val_loss=2.5)  # worse: best.pt stays at epoch 1
    assert [r["epoch"] for r in read_metrics(tmp_path / "r")] == [1, 2]
    assert load_checkpoint(tmp_path / "r" / "best.pt")["meta"]["best"] == {"epoch": 1, "val_loss": 2.0}


def test_a_step_tensor_is_read_as_it_was_when_logged(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(3))
    net(torch.zeros(1, 1, 8, 8))
    counter = torch.zeros(())
    with cs.Run(tmp_path / "c", net, input_size=(8, 8), log=lambda m: None, monitor="val_acc") as run:
        for step in range(3):
            counter += 1.5  # the loop changes it in place after logging
            run.log(step, correct=counter)
        for acc in (0.5, 0.4):
            run.epoch_end(val_acc=acc)
    events = EventAccumulator(str(tmp_path / "c"), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.value for e in events.Scalars("step/correct")] == [1.5, 3.0, 4.5]
    assert load_checkpoint(tmp_path / "c" / "best.pt")["meta"]["best"]["epoch"] == 1  # mode max for an accuracy


def test_a_users_own_module_needs_its_factory(tmp_path):
    factory = tmp_path / "mynet.py"
    factory.write_text(
        "import torch.nn as nn\n\ndef build():\n"
        "    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))\n"
    )
    namespace: dict = {}
    exec(factory.read_text(), namespace)
    net = namespace["build"]()
    messages: list[str] = []
    with cs.Run(tmp_path / "plain", net, classes=list("0123456789"), input_size=(16, 16), log=messages.append) as run:
        run.epoch_end(val_loss=1.0)
    assert any("load_model('file.py:factory@" in m for m in messages)
    with pytest.raises(
        ConvscopeError,
        match=r"does not say which architecture it holds; give it with its weights: "
        r"load_model\('file.py:factory@",
    ):
        load_model(tmp_path / "plain" / "best.pt")
    loaded = load_model(f"{factory}:build@{tmp_path / 'plain' / 'best.pt'}")
    assert all(torch.equal(a, b) for a, b in zip(loaded.net.state_dict().values(), net.state_dict().values()))

    with cs.Run(
        tmp_path / "named",
        net,
        classes=list("0123456789"),
        input_size=(16, 16),
        architecture=f"{factory}:build",
        log=lambda m: None,
    ) as run:
        run.epoch_end(val_loss=1.0)
    with pytest.raises(ConvscopeError, match="trust=True"):  # a factory named in a file is code
        load_model(tmp_path / "named" / "best.pt")
    model = load_model(tmp_path / "named" / "best.pt", trust=True)
    assert model.classes == list("0123456789") and model.preprocessing.size == (16, 16)


def test_values_that_are_not_numbers_are_one_line_errors(tmp_path):
    net = zoo.build("tiny-vgg", in_channels=1, num_classes=10, input_size=(16, 16))
    with cs.Run(tmp_path / "e", net, preprocessing=PREP, log=lambda m: None) as run:
        with pytest.raises(ConvscopeError, match="val_loss must be a number or a one-element tensor"):
            run.epoch_end(val_loss=torch.ones(3))
        with pytest.raises(ConvscopeError, match="needs a sample image"):
            run.snapshot()
        record = run.epoch_end(val_loss=math.inf)
    assert record["val_loss"] == math.inf and not (tmp_path / "e" / "best.pt").exists()
