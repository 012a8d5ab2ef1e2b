"""Engine selection: ``"local"`` (this process), ``"ray"`` (a cluster), or an engine object."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
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
