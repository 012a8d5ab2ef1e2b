"""Engine selection: ``"local"`` (this process), ``"ray"`` (a cluster), or an engine object."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import ConvscopeError

#: what a dataset-level call accepts as ``engine=``
Engine = Any  # "local", "ray", a RayEngine, or None (local)


@contextlib.contextmanager
def engine_scope(engine: Engine) -> Iterator[Any]:
    """Yield None for the local engine, else a :class:`RayEngine` for the call.

    ``"ray"`` joins ``$RAY_ADDRESS`` when set, else starts a local Ray for this call and
    stops it afterwards; an engine object is used as it is and left running (reuse one for
    many calls, so each actor loads the model once).
    """
    if engine is None or engine == "local":
        yield None
        return
    if engine == "ray":
        from .ray_engine import RayEngine

        owned = RayEngine(address=os.environ.get("RAY_ADDRESS") or None)
        try:
            yield owned
        finally:
            owned.close()
        return
    if isinstance(engine, str):
        raise ConvscopeError(f"unknown engine {engine!r}; use 'local' or 'ray'")
    yield engine


def map_merged(
    engine: Engine,
    job: str,
    model: Any,
    dataset: Any,
    batch_size: int,
    merge: Callable[[list[Any]], Any],
    callback: Callable[[int, int], None],
    **kwargs: Any,
) -> Any:
    """``job`` on ``engine``'s workers, block by block, its partials joined by the job's own ``merge``.

    ``callback(done, total)`` is called once with 0 before any worker starts (so a cancel
    already asked for stops the call there) and after each block.
    """
    callback(0, len(dataset))
    with engine_scope(engine) as workers:
        return merge(workers.map(job, model, dataset, batch_size, callback, **kwargs))
