"""Ray actors that hold a model, read their own dataset blocks and run convscope's shard functions on them.

The model crosses to the workers as words (:class:`ModelSource`: the spec, weights path,
class names and trust flag the user gave), and each actor calls
:func:`convscope.models.load_model` with them, so the same trust rules apply in the
worker as on the command line.

The data crosses as descriptors, not pixels (:mod:`convscope.data.items`): for a ``folder:``
the block's file paths, for the built-in sets (digits, MNIST, Fashion-MNIST, CIFAR-10, the
offline MNIST subset) the block's positions in the full set, with a digest of the pixels the
caller holds. Each actor reads its block itself with convscope's loaders (paths checked to stay
inside the folder the user named, the same decoding, the same conversion to the model's input)
and refuses a block whose digest differs, so results stay bit-identical to the local engine.
Only a dataset with no origin (a user's own tensors) is shipped as arrays (uint8 images, int64
labels and indices); so is every dataset with ``RayEngine(ship_data=True)``, for clusters whose
nodes do not see the driver's files. Each actor counts what it read and what it was sent
(:meth:`RayEngine.stats`).

Why an :class:`ray.util.ActorPool` executes the blocks and not Ray Data's
``from_items(descriptors).map_batches(<actor class>, concurrency=N)``: Ray Data's actors live
for one execution, so each call (each job of the page) would start the pool and load the
model again, where this pool is kept per model across calls (measured here with Ray 2.60 at
load 13: three calls of ``map_batches(<class loading the default model>, concurrency=2,
batch_size=1)`` over 8 items each started new actors, new pids every call, 32, 18 and 18 s a
call, for no compute); its actors are not the caller's to kill, so cancelling could not end
them at once (here cancel is ``ray.kill`` of the pool,
tested by the actors' pids); and the blocks here are already the unit Ray Data would make
(a descriptor per block, read where it runs). Progress is reported per finished block.
Actors restart when their process dies and Ray retries the block they were running, so a
lost worker costs time, not correctness.
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from ..data import items
from ..data.base import ImageDataset
from ..errors import ConvscopeError
from ..models.preprocessing import Preprocessing
from ..outputs import OutputSpec
from .blocks import plan_blocks

#: ``callback(done, total)`` in the driver after each finished block; raising from it cancels
Callback = Callable[[int, int], None] | None


@dataclass(frozen=True)
class ModelSource:
    """The words a model was loaded with: what a worker needs to load it again itself.

    ``classes`` and ``preprocessing`` are the model's as they are now, so names or an input size
    given after loading (``convscope serve --classes / --input-size``) reach the workers too.
    """

    spec: str
    weights: str | None = None
    classes: tuple[str, ...] | None = None
    trust: bool = False
    output: OutputSpec = None
    preprocessing: Preprocessing | None = None

    @classmethod
    def of(cls, model: Any) -> ModelSource:
        """The source of a :class:`Model` from :func:`load_model` (or a spec string)."""
        if isinstance(model, (str, os.PathLike)):
            return cls(spec=str(model))
        loaded = getattr(model, "loaded_from", None)
        if not loaded:
            raise ConvscopeError(
                "engine='ray' loads the model in each worker from the spec it was loaded with: "
                "load it with convscope.load_model(spec) (or give the spec string), "
                "not as an nn.Module built in this process"
            )
        classes = getattr(model, "classes", None) or loaded.get("classes")
        return cls(
            spec=loaded["spec"],
            weights=loaded.get("weights"),
            trust=bool(loaded.get("trust")),
            classes=tuple(classes) if classes is not None else None,
            output=getattr(model, "output", None),
            preprocessing=getattr(model, "preprocessing", None),
        )

    def load(self, device: str = "cpu"):
        from ..models import load_model

        model = load_model(self.spec, weights=self.weights, classes=self.classes, trust=self.trust, device=device)
        if self.output is not None:
            model.output = self.output
        if self.preprocessing is not None:
            model.preprocessing = self.preprocessing
        return model


def _ship(ds: ImageDataset) -> dict[str, Any]:
    """A block as arrays: for datasets with no origin to read from (a user's tensors)."""
    return {
        "kind": "arrays",
        "name": ds.name,
        "classes": list(ds.classes),
        "images": ds.images.numpy(),
        "labels": ds.labels.numpy(),
        "indices": ds.indices.numpy(),
    }


def _unpack(d: dict[str, Any]) -> ImageDataset:
    return ImageDataset(
        d["name"],
        d["classes"],
        torch.from_numpy(np.array(d["images"])),
        torch.from_numpy(np.array(d["labels"])),
        indices=torch.from_numpy(np.array(d["indices"])),
    )


def _size(payload: dict[str, Any]) -> int:
    """Bytes of a block pickled (about what Ray serialises into its object store for it)."""
    return len(pickle.dumps(payload, protocol=5))


def _owned(part: Any) -> Any:
    """The partial with its arrays copied out of Ray's object store (Ray hands them back read-only)."""
    arrays = {
        f.name: np.array(v)
        for f in fields(part)
        if isinstance(v := getattr(part, f.name), np.ndarray) and not v.flags.writeable
    }
    return replace(part, **arrays)


#: job name -> (module, function, fixed arguments): convscope's own local functions, run on a block
JOBS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "pass": ("..analysis.dataset_pass", "run_pass", {"progress": False}),
    "examples": ("..features.examples", "top_examples", {}),
    "audit": ("..explain.audit", "audit", {}),
}


def _block(ds: ImageDataset, start: int, stop: int, ship: bool) -> dict[str, Any]:
    """Rows ``[start, stop)`` as what crosses to an actor: a descriptor it reads itself, else the arrays."""
    desc = None if ship else items.describe(ds, start, stop)
    return desc if desc is not None else _ship(ds.subset(torch.arange(start, stop)))


class _Worker:
    """One actor: loads the model once, then reads blocks and runs jobs on them (local engine inside)."""

    def __init__(self, source: ModelSource, device: str, threads: int) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.model = source.load(device)
        self.sets: dict[tuple, ImageDataset] = {}  # full built-in sets parsed here, reused across blocks
        self.counts = {"read": 0, "shipped": 0}

    def stats(self) -> dict[str, int]:
        """Items this actor read itself from descriptors, and items it was sent as pixels."""
        return dict(self.counts)

    def _data(self, block: dict[str, Any]) -> ImageDataset:
        if block.get("kind") == "arrays":
            ds = _unpack(block)
            self.counts["shipped"] += len(ds)
        else:
            ds = items.read(block, self.sets)
            self.counts["read"] += len(ds)
        return ds

    def pid(self) -> int:
        return os.getpid()

    def run(self, i: int, job: str, block: dict[str, Any], kwargs: dict[str, Any]) -> tuple[int, Any]:
        """Block ``i``'s partial result, with ``i`` (results come back in any order)."""
        if job not in JOBS:
            raise ConvscopeError(f"unknown job {job!r}; one of {', '.join(JOBS)}")
        module, name, extra = JOBS[job]
        fn = getattr(importlib.import_module(module, __package__), name)
        return i, fn(self.model, self._data(block), **extra, **kwargs)


class RayEngine:
    """A pool of Ray actors per model; reuse one engine for many calls.

    ``address`` joins a running cluster (None: ``ray.init()`` starts a local one with
    ``workers * cpus_per_worker`` CPUs, stopped by :meth:`close`). ``gpus_per_worker > 0``
    asks Ray for GPUs and loads the model on ``cuda`` in each actor.
    """

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        gpus_per_worker: float = 0.0,
        cpus_per_worker: float = 1.0,
        blocks_per_worker: int = 4,
        max_restarts: int = 3,
        ship_data: bool = False,
    ) -> None:
        if workers < 1:
            raise ConvscopeError(f"workers must be at least 1, not {workers}")
        self.address, self.workers = address, workers
        self.gpus_per_worker, self.cpus_per_worker = gpus_per_worker, cpus_per_worker
        self.blocks_per_worker, self.max_restarts = blocks_per_worker, max_restarts
        self.ship_data = ship_data
        self.sent: list[int] = []  # bytes of each block the last map() put in the object store
        self._started = False
        self._pools: dict[ModelSource, list[Any]] = {}

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise ConvscopeError('engine="ray" needs Ray: pip install "convscope[ray]"') from None
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(
                    num_cpus=max(1, int(round(self.workers * self.cpus_per_worker))),
                    include_dashboard=False,
                    log_to_driver=False,
                )
                self._started = True
        return ray

    def actors(self, model: Any) -> list[Any]:
        """The actor pool for ``model`` (a loaded Model or a spec), started on first use."""
        source = ModelSource.of(model)
        if source not in self._pools:
            ray = self._ray()
            device = "cuda" if self.gpus_per_worker > 0 else "cpu"
            cls = ray.remote(_Worker).options(
                num_cpus=self.cpus_per_worker,
                num_gpus=self.gpus_per_worker,
                max_restarts=self.max_restarts,
                max_task_retries=self.max_restarts,
            )
            threads = max(1, int(self.cpus_per_worker))
            self._pools[source] = [cls.remote(source, device, threads) for _ in range(self.workers)]
        return self._pools[source]

    def map(
        self, job: str, model: Any, dataset: ImageDataset, batch_size: int, callback: Callback = None, **kwargs: Any
    ) -> list[Any]:
        """Run ``job`` (a :data:`JOBS` name) on every block; the partials in block order.

        Each partial is tagged ``shard=(i, n)`` where it has that field, ready for the job's merge.
        Raising from ``callback`` kills the pool's actors (and with them their running tasks).
        """
        from ray.util import ActorPool

        pool = self.actors(model)
        ray = self._ray()
        blocks = plan_blocks(len(dataset), batch_size, len(pool), self.blocks_per_worker)
        total, done = len(dataset), 0
        kwargs = {**kwargs, "batch_size": batch_size}
        payloads = [_block(dataset, a, b, self.ship_data) for a, b in blocks]
        self.sent = [_size(p) for p in payloads]
        refs = [ray.put(p) for p in payloads]
        work = ActorPool(pool)
        for i, ref in enumerate(refs):
            work.submit(lambda actor, item: actor.run.remote(item[0], job, item[1], kwargs), (i, ref))
        results: dict[int, Any] = {}
        try:
            while work.has_next():
                i, part = work.get_next_unordered()
                results[i] = _owned(part)
                done += blocks[i][1] - blocks[i][0]
                if callback is not None:
                    callback(done, total)
        except BaseException:
            self._discard(ModelSource.of(model))
            raise
        n = len(blocks)
        return [replace(results[i], shard=(i, n)) if hasattr(results[i], "shard") else results[i] for i in range(n)]

    def pids(self, model: Any) -> list[int]:
        """Process ids of the pool's actors (to watch them, or to test a lost worker)."""
        ray = self._ray()
        return ray.get([a.pid.remote() for a in self.actors(model)])

    def stats(self, model: Any) -> dict[str, int]:
        """What the pool's actors read themselves and were sent, summed (see :class:`_Worker`)."""
        ray = self._ray()
        counts = ray.get([a.stats.remote() for a in self.actors(model)])
        return {k: sum(c[k] for c in counts) for k in ("read", "shipped")}

    def _discard(self, source: ModelSource) -> None:
        """Kill the pool of ``source`` (cancelling its running tasks); the next call starts a fresh one."""
        pool = self._pools.pop(source, [])
        if pool:
            import ray

            for actor in pool:
                ray.kill(actor, no_restart=True)

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kill every pool, and stop Ray if this engine started it."""
        for source in list(self._pools):
            self._discard(source)
        if self._started:
            import ray

            ray.shutdown()
            self._started = False
