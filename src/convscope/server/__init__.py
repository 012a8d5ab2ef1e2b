"""The web explorer: a FastAPI app (``create_app``) and its static ES-module front end."""

from .app import create_app
from .registry import Registry

__all__ = ["Registry", "create_app"]
