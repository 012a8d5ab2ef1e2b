"""``convscope serve --runs tb_logs/``: folders that hold only TensorBoard event files are runs.

The events are written here the way the tools people use write them (``SummaryWriter``
per epoch, Lightning's per-step layout with an ``epoch`` scalar, Keras's ``train`` and
``validation`` folders of TF2 tensor scalars), and read back through the training view's API.
"""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.tensorboard import SummaryWriter

from convscope.analysis.runs import canonical_metric, read_events


def client(root):
    from fastapi.testclient import TestClient

    from convscope.server import create_app
    from convscope.server.registry import Registry

    return TestClient(create_app(registry=Registry(["default"]), runs=root))


def write_plain(folder, epochs=3):
    """A hand-written loop's SummaryWriter, one point per epoch."""
    with SummaryWriter(str(folder)) as w:
        for e in range(1, epochs + 1):
            w.add_scalar("Loss/train", 1.0 / e, e)
            w.add_scalar("Loss/val", 1.2 / e, e)
            w.add_scalar("Accuracy/val", 0.5 + 0.1 * e, e)
            w.add_scalar("lr", 0.01, e)
            w.add_scalar("grad_norm", 3.0 * e, e)


def write_lightning_style(folder):
    """What Lightning's TensorBoardLogger writes: global steps, an ``epoch`` scalar counting from 0."""
    with SummaryWriter(str(folder)) as w:
        for step in range(10):
            epoch = step // 5
            w.add_scalar("train_loss_step", 2.0 - 0.1 * step, step)
            w.add_scalar("epoch", epoch, step)
            if step % 5 == 4:
                w.add_scalar("val_loss", 1.5 - 0.5 * epoch, step)
                w.add_scalar("val_acc", 0.6 + 0.2 * epoch, step)
                w.add_scalar("train_loss_epoch", 1.9 - 0.5 * epoch, step)
                w.add_scalar("epoch", epoch, step)


def write_keras_style(folder):
    """Keras's TensorBoard callback: ``train/`` and ``validation/``, TF2 tensor scalars ``epoch_loss``."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    for split, losses in (("train", [0.9, 0.6]), ("validation", [1.0, 0.8])):
        writer = EventFileWriter(str(folder / split))
        for step, loss in enumerate(losses):
            value = summary_pb2.Summary.Value(
                tag="epoch_loss",
                metadata=metadata.create_summary_metadata("", ""),
                tensor=tensor_util.make_tensor_proto(np.float32(loss)),
            )
            writer.add_event(
                event_pb2.Event(step=step, wall_time=1.0 + step, summary=summary_pb2.Summary(value=[value]))
            )
        writer.close()


def test_tag_names_map_onto_the_record_keys():
    cases = {
        "loss/train": "train_loss",
        "Loss/val": "val_loss",
        "train/loss_epoch": "train_loss",
        "val_acc_epoch": "val_acc",
        "validation/epoch_accuracy": "val_acc",
        "epoch_loss": "train_loss",
        "lr-Adam": "lr",
        "learning_rate": "lr",
        "epoch": "epoch",
        "train_loss_step": None,
        "test_loss": None,
        "top5_acc": None,
        "step/loss": None,
    }
    assert {tag: canonical_metric(tag) for tag in cases} == cases


def test_event_folders_are_listed_and_drawn_like_metrics_jsonl(tmp_path):
    root = tmp_path / "tb_logs"
    write_plain(root / "plain")
    write_lightning_style(root / "lit" / "version_0")
    write_keras_style(root / "keras")
    with client(root) as c:
        runs = {r["name"]: r for r in c.get("/api/runs").json()["runs"]}
        assert sorted(runs) == ["keras", "lit/version_0", "plain"]
        assert (runs["plain"]["epochs"], runs["lit/version_0"]["epochs"]) == (3, 2)
        assert runs["lit/version_0"]["best_val_acc"] == pytest.approx(0.8)

        plain = c.get("/api/runs/plain/metrics").json()
        curves = plain["curves"]
        assert curves["epoch"] == [1, 2, 3] and plain["problems"] == []
        assert curves["train_loss"] == pytest.approx([1.0, 0.5, 1 / 3])
        assert curves["val_loss"] == pytest.approx([1.2, 0.6, 0.4])
        assert curves["val_acc"] == pytest.approx([0.6, 0.7, 0.8]) and curves["lr"] == pytest.approx([0.01] * 3)
        assert curves["grad_norm"] == pytest.approx([3.0, 6.0, 9.0])  # unknown tags keep their name

        lit = c.get("/api/runs/lit/version_0/metrics").json()["curves"]
        assert lit["epoch"] == [1, 2]  # epoch 0 and 1 done, like metrics.jsonl's numbering
        assert lit["val_loss"] == pytest.approx([1.5, 1.0]) and lit["train_loss"] == pytest.approx([1.9, 1.4])
        assert "train_loss_step" not in lit  # per-step points stay off the per-epoch chart

        keras = c.get("/api/runs/keras/metrics").json()["curves"]
        assert keras["epoch"] == [0, 1]
        assert keras["train_loss"] == pytest.approx([0.9, 0.6]) and keras["val_loss"] == pytest.approx([1.0, 0.8])


def test_new_events_change_the_version_and_a_damaged_file_costs_only_itself(tmp_path):
    root = tmp_path / "tb"
    write_plain(root / "a", epochs=2)
    with client(root) as c:
        first = c.get("/api/runs/a/metrics").json()
        assert c.get(f"/api/runs/a/metrics?since={first['version']}").json()["changed"] is False
        with SummaryWriter(str(root / "a")) as w:  # a second writer (a restart) appends epoch 3
            w.add_scalar("Loss/val", 0.3, 3)
        again = c.get(f"/api/runs/a/metrics?since={first['version']}").json()
        assert again["changed"] is True and again["curves"]["epoch"] == [1, 2, 3]
        assert again["curves"]["val_loss"][2] == pytest.approx(0.3)

        (root / "a" / "events.out.tfevents.9999999999.host.1.0").write_bytes(b"\x00garbage" * 10)
        body = c.get("/api/runs/a/metrics").json()  # TensorBoard reads it as a truncated record
        assert body["curves"]["epoch"] == [1, 2, 3] and body["run"]["epochs"] == 3


def test_a_folder_without_event_files_is_no_run(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with client(tmp_path) as c:
        assert c.get("/api/runs").json()["runs"] == []
    assert read_events(tmp_path / "empty") == []
