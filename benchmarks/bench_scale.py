"""Images per second of the dataset-level work on the local engine and on Ray (1 and 2 actors).

Times :func:`convscope.analysis.run_pass` and :func:`convscope.features.top_examples` of
the default model over the embedded MNIST subset (repeated ``--repeat-data`` times) on
this machine: the local engine, then a :class:`convscope.scale.RayEngine` with 1 and 2
actors. Three ways the data reaches the actors (:mod:`convscope.data.items`): ``shipped``
(the images as arrays, what a user's own tensors get), ``positions`` (the built-in set's
positions: each actor reads the set itself) and ``folder`` (the same images written as PNG
files, a ``folder:``: each actor decodes its block's paths itself); the bytes put in Ray's
object store per image are printed for each. The Ray pool is warmed first (Ray started, actors loaded the model), so what is
timed is the steady state; the start-up is printed on its own. Also measured: the merge
of the partials alone, and Ray's overhead per image, ``t_ray1 / n - t_local / n`` (the
1-actor run does the same arithmetic as the local one, plus blocks, object store and
scheduling). Each figure is the median of ``--repeats``; every result is checked equal to
the local one, so the speed is never bought with a different answer.

    python benchmarks/bench_scale.py                      # 20,000 images, 3 repeats
    python benchmarks/bench_scale.py --repeat-data 10 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from convscope.analysis import merge, run_pass  # noqa: E402
from convscope.data import load_splits  # noqa: E402
from convscope.data.base import ImageDataset  # noqa: E402
from convscope.features import merge as merge_examples  # noqa: E402
from convscope.features import top_examples  # noqa: E402
from convscope.models import load_model  # noqa: E402
from convscope.scale import RayEngine  # noqa: E402


def repeated(ds: ImageDataset, times: int, keep_origin: bool) -> ImageDataset:
    """``ds`` ``times`` over; with its origin (the positions repeat, so actors read the same set), or none."""
    images = ds.images.repeat(times, 1, 1, 1)
    return ImageDataset(
        ds.name,
        ds.classes,
        images,
        ds.labels.repeat(times),
        indices=ds.indices.repeat(times),
        origin=ds.origin if keep_origin else None,
    )


def as_folder(ds: ImageDataset, root: Path, model) -> ImageDataset:
    """``ds`` written as PNG files (a class folder each) and loaded back as a ``folder:``."""
    from PIL import Image

    from convscope.data import load_folder

    for i, (img, label) in enumerate(zip(ds.images, ds.labels)):
        (root / ds.classes[label]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy()).save(root / ds.classes[label] / f"{i:06d}.png")
    return load_folder(root, model.preprocessing, progress=False)


def timed(fn, arg, repeats: int) -> tuple[float, object]:
    """Median seconds of ``fn(arg)`` and its last result."""
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(arg)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat-data", type=int, default=5, help="copies of the 4,000 training images (default 5)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--layer", default="conv_2_2", help="layer for top_examples (default conv_2_2)")
    args = ap.parse_args()
    load_before = f"{os.getloadavg()[0]:.2f}"

    import ray

    model = load_model("default")
    train = load_splits("mnist", download=False, progress=False)["train"]
    data = repeated(train, args.repeat_data, keep_origin=False)
    read = repeated(train, args.repeat_data, keep_origin=True)
    files = tempfile.TemporaryDirectory(prefix="bench-scale-")  # the PNGs of the folder rows, removed at exit
    folder = as_folder(data, Path(files.name), model)
    n, bs = len(data), args.batch_size
    torch.set_num_threads(1)  # each Ray actor computes on one thread: compare like with like
    jobs = {
        "run_pass, shipped": lambda engine: run_pass(model, data, batch_size=bs, progress=False, engine=engine),
        "run_pass, positions": lambda engine: run_pass(model, read, batch_size=bs, progress=False, engine=engine),
        "run_pass, folder": lambda engine: run_pass(model, folder, batch_size=bs, progress=False, engine=engine),
        "top_examples, shipped": lambda engine: top_examples(
            model, data, args.layer, k=9, batch_size=bs, engine=engine
        ),
        "top_examples, positions": lambda engine: top_examples(
            model, read, args.layer, k=9, batch_size=bs, engine=engine
        ),
    }
    sent: dict[str, float] = {}
    rows: dict[str, dict[str, float]] = {job: {} for job in jobs}
    local_out = {}
    for job, fn in jobs.items():
        rows[job]["local"], local_out[job] = timed(fn, "local", args.repeats)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = {}
    try:
        for workers in (1, 2):
            with RayEngine(workers=workers) as engine:
                t = time.perf_counter()
                engine.pids(model)  # starts the actors: each imports torch and loads the model
                startup[workers] = time.perf_counter() - t
                for job, fn in jobs.items():
                    fn(engine)  # warm: first blocks through the object store
                    rows[job][f"ray x{workers}"], out = timed(fn, engine, args.repeats)
                    sent[job] = sum(engine.sent) / n
                    check(job, out, local_out[job])
    finally:
        ray.shutdown()

    parts = [run_pass(model, data, batch_size=bs, progress=False, shard=(i, 8)) for i in range(8)]
    merge_pass, _ = timed(merge, parts, args.repeats)
    ex_parts = [top_examples(model, data.shard(i, 8), args.layer, k=9, batch_size=bs) for i in range(8)]
    merge_ex, _ = timed(merge_examples, ex_parts, args.repeats)

    print(
        f"{n} images (mnist subset x{args.repeat_data}), batch {bs}, {torch.get_num_threads()} thread per process, "
        f"median of {args.repeats}; load average before / after: {load_before} / {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'job':<25}{'local img/s':>13}{'ray x1 img/s':>14}{'ray x2 img/s':>14}{'ray overhead/img':>18}"
        f"{'sent/img':>10}"
    )
    for job, r in rows.items():
        over = (r["ray x1"] - r["local"]) / n * 1e6
        print(
            f"{job:<25}{n / r['local']:>13,.0f}{n / r['ray x1']:>14,.0f}{n / r['ray x2']:>14,.0f}{over:>15.1f} us"
            f"{sent[job]:>8.0f} B"
        )
    print(
        f"merge of 8 partials: run_pass {merge_pass * 1e3:.1f} ms ({merge_pass / n * 1e6:.2f} us/img), "
        f"top_examples {merge_ex * 1e3:.1f} ms"
    )
    print(
        f"pool start-up (Ray running, actors load the model): 1 actor {startup[1]:.1f} s, 2 actors {startup[2]:.1f} s"
    )


def check(job: str, got, want) -> None:
    keys = ("preds", "probs", "features", "indices") if job.startswith("run_pass") else ("values", "indices", "maps")
    for k in keys:
        if not np.array_equal(getattr(got, k), getattr(want, k)):
            raise SystemExit(f"{job}: Ray's {k} differ from the local engine's")


if __name__ == "__main__":
    main()
