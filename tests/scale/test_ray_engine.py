"""The Ray engine against the local one: the same numbers, the same top-k lists, on real data.

One local Ray per module (2 actors); digits, a generated ``folder:`` of 240 PNGs and the
embedded MNIST subset. The actors read folder and built-in blocks themselves (paths and
positions cross, not pixels; a user's own tensors are shipped). Also: a worker killed mid-run is restarted and the result is still
exact; raising from the progress callback cancels (the actors are killed); an ``nn.Module``
built in this process is refused (only load words cross to the workers). Covers run_pass,
top_examples, the attribution audit and the CLI's --engine ray.
"""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.analysis import run_pass
from convscope.data import load_splits
from convscope.data.base import ImageDataset
from convscope.errors import ConvscopeError
from convscope.features import top_examples
from convscope.features.progress import Cancelled
from convscope.models import Model, load_model
from convscope.scale import RayEngine, plan_blocks

from ray_processes import alive

ray = pytest.importorskip("ray")

ARRAYS = ("labels", "preds", "probs", "loss", "features", "indices")


@pytest.fixture(scope="module")
def engine():
    # 4 logical CPUs on 2 cores: the 2 pool actors plus the 2 a plain engine="ray" call starts
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    eng = RayEngine(workers=2)
    yield eng
    eng.close()
    ray.shutdown()


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """240 generated 20x20 RGB PNGs in 3 classes (bright blobs at class-dependent places)."""
    root = tmp_path_factory.mktemp("blobs")
    rng = np.random.default_rng(3)
    for i in range(240):
        label = i % 3
        pixels = rng.integers(0, 60, (20, 20, 3), dtype=np.uint8)
        y, x = rng.integers(2, 14, 2)
        pixels[y : y + 5, x + label : x + label + 4] = 255
        (root / f"c{label}").mkdir(exist_ok=True)
        Image.fromarray(pixels).save(root / f"c{label}" / f"{i:03d}.png")
    return load_splits(f"folder:{root}", progress=False)["train"]


def counted_pass(engine, model, data, batch_size: int) -> dict[str, int]:
    """Check the pass over ``data`` on Ray against the local one; the items the actors read from
    disk and those sent to them as pixels meanwhile (their counters' increase)."""
    before = engine.stats(model)
    same_pass(
        run_pass(model, data, batch_size=batch_size, progress=False, engine=engine),
        run_pass(model, data, batch_size=batch_size, progress=False),
    )
    after = engine.stats(model)
    return {k: after[k] - before[k] for k in ("read", "shipped")}


def same_pass(a, b):
    for k in ARRAYS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    assert (a.classes, a.layer, a.feature_side, a.dataset, a.shard) == (
        b.classes,
        b.layer,
        b.feature_side,
        b.dataset,
        b.shard,
    )


def same_examples(a, b):
    for k in ("channels", "values", "indices", "positions", "maps"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    assert (a.layer, a.seen) == (b.layer, b.seen)


def test_blocks_are_whole_batches_covering_the_data():
    blocks = plan_blocks(181, 16, workers=2, per_worker=2)
    assert blocks[0] == (0, 48) and blocks[-1][1] == 181
    assert all(b[0] == a[1] for a, b in zip(blocks, blocks[1:]))
    assert all((stop - start) % 16 == 0 for start, stop in blocks[:-1])


def test_pass_on_digits_is_bit_identical_with_progress(engine, model):
    data = load_splits("digits")["test"]
    seen = []
    remote = run_pass(
        model,
        data,
        batch_size=16,
        progress=False,
        engine=engine,
        callback=lambda done, total: seen.append((done, total)),
    )
    same_pass(remote, run_pass(model, data, batch_size=16, progress=False))
    assert seen[-1] == (len(data), len(data)) and len(seen) == len(plan_blocks(len(data), 16, 2))
    # other batchings (each block, its own) agree to float32 rounding
    other = run_pass(model, data, batch_size=7, progress=False, engine=engine)
    np.testing.assert_allclose(other.probs, remote.probs, atol=1e-6)
    # a shard of the dataset, on the engine: the same partial as locally
    same_pass(
        run_pass(model, data, batch_size=16, shard=(1, 3), progress=False, engine=engine),
        run_pass(model, data, batch_size=16, shard=(1, 3), progress=False),
    )


def test_folder_pass_and_top_examples_are_identical(engine, model, folder):
    same_pass(
        run_pass(model, folder, layer="conv_2_1", batch_size=32, progress=False, engine=engine),
        run_pass(model, folder, layer="conv_2_1", batch_size=32, progress=False),
    )
    ticks = []
    remote = top_examples(
        model, folder, "conv_1_2", k=5, batch_size=32, engine=engine, progress=lambda d, t: ticks.append(d)
    )
    same_examples(remote, top_examples(model, folder, "conv_1_2", k=5, batch_size=32))
    assert ticks[0] == 0 and ticks[-1] == len(folder)


def test_audit_is_bit_identical(engine, model):
    from convscope.explain.audit import audit

    data = load_splits("digits")["test"].subset(list(range(48)))
    remote = audit(model, data, steps=6, batch_size=8, engine=engine)
    local = audit(model, data, steps=6, batch_size=8)
    for k in ("indices", "labels", "targets", "deletion", "insertion", "degenerate"):
        np.testing.assert_array_equal(getattr(remote, k), getattr(local, k), err_msg=k)
    assert remote.per_class() == local.per_class()


def test_mnist_subset_with_the_plain_ray_engine_string(engine, model):
    data = load_splits("mnist", download=False, progress=False)["test"]
    same_examples(
        top_examples(model, data, "relu_2_2", k=9, channels=[0, 3, 5], batch_size=50, engine="ray"),
        top_examples(model, data, "relu_2_2", k=9, channels=[0, 3, 5], batch_size=50),
    )


def test_a_killed_worker_is_restarted_and_the_result_is_still_exact(engine, model):
    data = load_splits("mnist", download=False, progress=False)["val"]
    before = engine.pids(model)
    killed = []

    def kill_one(done, total):
        if not killed:
            os.kill(before[1], signal.SIGKILL)
            killed.append(done)

    remote = run_pass(model, data, batch_size=10, progress=False, engine=engine, callback=kill_one)
    same_pass(remote, run_pass(model, data, batch_size=10, progress=False))
    after = engine.pids(model)
    assert killed and after[0] == before[0] and after[1] != before[1]  # Ray restarted the actor


def test_raising_from_the_callback_cancels_and_kills_the_actors(engine, model):
    data = load_splits("digits")["test"]
    pids = engine.pids(model)

    def cancel(done, total):
        raise Cancelled(f"stop at {done}")

    with pytest.raises(Cancelled):
        top_examples(model, data, "conv_1_1", k=3, batch_size=8, engine=engine, cancel=lambda: True, progress=None)
    with pytest.raises(Cancelled, match="stop at"):
        run_pass(model, data, batch_size=8, progress=False, engine=engine, callback=cancel)
    deadline = time.time() + 20
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)
    assert engine.pids(model) != pids  # the next call gets a fresh pool


def test_a_module_built_here_is_refused(engine):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    with pytest.raises(ConvscopeError, match="load_model"):
        run_pass(Model(net), load_splits("digits")["test"], progress=False, engine=engine)


def test_cli_examples_and_evaluate_with_engine_ray(engine, tmp_path, capsys):
    from convscope.cli.main import main
    from convscope.features import TopExamples

    common = [
        "examples",
        "--data",
        "digits",
        "--layer",
        "conv_2_2",
        "--k",
        "4",
        "--channels",
        "0-5",
        "--batch-size",
        "32",
        "--no-progress",
    ]
    assert main([*common, "--out", str(tmp_path / "local")]) == 0
    assert main([*common, "--out", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2"]) == 0
    same_examples(
        TopExamples.load(tmp_path / "ray" / "examples.npz"), TopExamples.load(tmp_path / "local" / "examples.npz")
    )
    capsys.readouterr()
    reports = []
    for extra in ([], ["--engine", "ray"]):
        assert (
            main(
                [
                    "evaluate",
                    "default",
                    "--data",
                    "digits",
                    "--json",
                    "--batch-size",
                    "64",
                    "--no-progress",
                    "--out",
                    str(tmp_path / f"eval{len(extra)}"),
                    *extra,
                ]
            )
            == 0
        )
        reports.append(json.loads(capsys.readouterr().out))
    local, remote = reports
    assert remote["confusion_matrix"] == local["confusion_matrix"] and remote["accuracy"] == local["accuracy"]
    assert remote["loss"] == pytest.approx(local["loss"], rel=1e-5)


def test_actors_read_folder_and_builtin_blocks_themselves(engine, model, folder):
    """What crosses to the actors is paths / positions, not pixels: the actors' counters of items
    read from disk against items sent as pixels, and the bytes put in the object store per block."""
    mnist = load_splits("mnist", download=False, progress=False)["val"]
    for data, per_item in ((folder, 40), (mnist, 12)):
        moved = counted_pass(engine, model, data, 32)
        assert moved == {"read": len(data), "shipped": 0}
        blocks = plan_blocks(len(data), 32, 2)
        assert len(engine.sent) == len(blocks)
        for size, (start, stop) in zip(engine.sent, blocks):
            pixels = data.images[start:stop].numel()
            assert size < 1000 + per_item * (stop - start) < pixels, (size, pixels)


def test_ship_data_sends_the_pixels_of_a_folder_instead(engine, model, folder):
    engine.ship_data = True  # read per call: the same pool, told to ship
    try:
        moved = counted_pass(engine, model, folder, 32)
    finally:
        engine.ship_data = False
    assert moved == {"read": 0, "shipped": len(folder)}
    assert sum(engine.sent) > folder.images.numel()


def test_a_users_own_tensors_are_shipped_and_still_identical(engine, model):
    digits = load_splits("digits")["test"]
    mine = ImageDataset("mine", digits.classes, digits.images.clone(), digits.labels.clone())
    assert counted_pass(engine, model, mine, 16) == {"read": 0, "shipped": len(mine)}
    assert sum(engine.sent) > mine.images.numel()
