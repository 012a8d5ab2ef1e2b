"""The web explorer: a FastAPI app (``create_app``) and its static ES-module front end.

``create_app`` is imported lazily, so the registry and the view glue can be used (and
tested) without FastAPI installed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Registry", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "Registry":
        from .registry import Registry

        return Registry
    raise AttributeError(f"module 'convscope.server' has no attribute {name!r}")
