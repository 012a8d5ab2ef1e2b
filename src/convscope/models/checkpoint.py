"""convscope's checkpoint format: tensors plus JSON metadata, never arbitrary pickle.

A checkpoint is a ``torch.save`` of a plain dict::

    {"format": "convscope.checkpoint", "version": 1,
     "meta": "<JSON text>",          # architecture, classes, preprocessing, dataset, ...
     "state_dict": {name: tensor},
     "train_state": {...}}           # optional: optimizer state, epoch, RNG (for --resume)

Everything in it loads with ``torch.load(..., weights_only=True)``, so opening a file
from a stranger cannot run code. Writes go through a temp file and a rename.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import ConvscopeError
from ..io_utils import atomic_path

FORMAT = "convscope.checkpoint"
VERSION = 1


def save_checkpoint(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    meta: dict[str, Any],
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Atomically write a checkpoint; ``meta`` must be JSON-serialisable."""
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "meta": json.dumps(meta, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
    }
    if train_state is not None:
        payload["train_state"] = train_state
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load`` that never unpickles code, with one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise ConvscopeError(f"no such file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ConvscopeError(
            f"{path} contains pickled Python objects, which could run code when loaded; refused. "
            "If you trust its source, load it with trust=True (CLI: --trust). "
            f"[{str(exc).splitlines()[0][:160]}]"
        ) from None
    except Exception as exc:  # torch raises many types (IndexError, KeyError, ...) on bytes that are not its format
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ConvscopeError(f"{path} is not a readable PyTorch file: {first}") from None


def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a convscope checkpoint; ``meta`` comes back parsed."""
    obj = safe_torch_load(path)
    if not is_checkpoint(obj):
        hint = ""
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            hint = " It looks like a bare state_dict: give its architecture as 'package.module:factory' with weights=."
        raise ConvscopeError(f"{path} is not a convscope checkpoint.{hint}")
    if int(obj.get("version", 0)) > VERSION:
        raise ConvscopeError(f"{path} was written by a newer convscope (format version {obj['version']})")
    try:
        meta = json.loads(obj["meta"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise ConvscopeError(f"{path} has damaged metadata") from None
    return {**obj, "meta": meta}
