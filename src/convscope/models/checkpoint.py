"""convscope's checkpoint format: tensors plus JSON metadata, never arbitrary pickle.

A checkpoint is a ``torch.save`` of a plain dict::

    {"format": "convscope.checkpoint", "version": 1,
     "meta": "<JSON text>",          # architecture, classes, preprocessing, dataset, ...
     "state_dict": {name: tensor},
     "train_state": {...}}           # optional: optimizer state, epoch, RNG (for --resume)

Everything in it loads with ``torch.load(..., weights_only=True)``, so opening a file
from a stranger cannot run code. Before torch reads a byte, the zip directory is checked
so a small file cannot decode to gigabytes, and the metadata is checked for size, depth
and the types convscope reads, so a damaged or hostile file ends in one
:class:`ConvscopeError` line. Writes go through a temp file and a rename.
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import ConvscopeError
from ..io_utils import atomic_path

FORMAT = "convscope.checkpoint"
VERSION = 1
MAX_META_CHARS = 16 * 1024 * 1024  # a 1000-epoch history is ~0.2 MB
MAX_META_DEPTH = 32  # convscope writes depth 4; deeper JSON only costs recursion
MAX_CLASSES = 100_000
# meta key -> the JSON type convscope reads it as (keys it does not read may hold anything)
META_TYPES: dict[str, type] = {
    "architecture": dict,
    "classes": list,
    "preprocessing": dict,
    "name": str,
    "dataset": dict,
    "config": dict,
    "history": list,
}
ARCHITECTURE_TYPES: dict[str, type] = {"zoo": str, "factory": str, "kwargs": dict}
DATASET_TYPES: dict[str, type] = {"name": str, "split_seed": int, "split": str}  # evaluate and serve remake the split


def needs_trust(reason: str) -> ConvscopeError:
    """The one refusal for files that would run code: says why and how to opt in."""
    return ConvscopeError(f"{reason}; refused. If you trust its source, load it with trust=True (CLI: --trust)")


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
    check_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))  # what torch's allow-list refused
        what = f" (the first: {named.group(1)[:160]})" if named else f" [{_first_line(exc, 160)}]"
        raise needs_trust(f"{path} contains pickled Python objects{what}, which could run code when loaded") from None
    except Exception as exc:  # torch raises many types (IndexError, KeyError, ...) on bytes that are not its format
        raise ConvscopeError(
            f"{path} is not a readable PyTorch file (neither torch.save's archive nor a legacy pickle): "
            f"{type(exc).__name__}: {_first_line(exc, 200)}"
        ) from None


def _first_line(exc: BaseException, limit: int) -> str:
    """An exception's first line for a one-line message: torch's weights_only refusal is bold
    on a terminal (ANSI escapes) and a KeyError is just the key (``101``), so the type is kept apart."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return (text.splitlines() or [""])[0][:limit]


def check_archive(path: Path) -> None:
    """Refuse a torch zip archive that would decode to more bytes than the file holds.

    ``torch.save`` writes every member STORED, so the data torch allocates is bounded by
    the file size (torch checks each tensor's declared size against its member). A
    DEFLATED member breaks that bound: torch inflates it whole before any check, so a
    2 MB file could claim gigabytes. Files that are not zip archives (the legacy format,
    a raw pickle) are left to torch, which reads their data from the bytes present.
    """
    size = path.stat().st_size
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except zipfile.BadZipFile:
        return
    except Exception as exc:  # zipfile raises ValueError, struct.error, ... on a forged directory
        raise ConvscopeError(f"{path} has a damaged zip directory: {type(exc).__name__}") from None
    total = 0
    for m in members:
        if m.compress_type != zipfile.ZIP_STORED:
            raise ConvscopeError(
                f"{path}: member {m.filename[:80]!r} is compressed, which torch.save never does "
                "(a small compressed file can decode to gigabytes); refused"
            )
        total += m.file_size
        if m.compress_size != m.file_size or m.header_offset + m.file_size > size or total > size:
            raise ConvscopeError(
                f"{path}: member {m.filename[:80]!r} declares more data than the file holds ({size} bytes); refused"
            )


# where other tools keep the weights inside a training checkpoint: PyTorch's "saving a general
# checkpoint" tutorial ("model_state_dict"), Lightning and timm ("state_dict"), others ("model")
WRAPPED_STATE_KEYS = ("model_state_dict", "state_dict", "model")


def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def is_state_dict(obj: Any) -> bool:
    """A non-empty mapping of names to tensors: what ``nn.Module.state_dict()`` returns."""
    return (
        isinstance(obj, dict)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def wrapped_state_key(obj: Any) -> str | None:
    """The key of another tool's training checkpoint that holds the model's state_dict, if any."""
    if not isinstance(obj, dict) or is_state_dict(obj):
        return None
    return next((key for key in WRAPPED_STATE_KEYS if is_state_dict(obj.get(key))), None)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a convscope checkpoint; ``meta`` comes back parsed."""
    obj = safe_torch_load(path)
    if not is_checkpoint(obj):
        hint, key = "", wrapped_state_key(obj)
        if is_state_dict(obj) or key:
            what = "a bare state_dict" if key is None else f"another tool's checkpoint, its weights under {key!r}"
            hint = (
                f" It looks like {what}: give its architecture with it, --model file.py:factory@{path} "
                f"(Python: load_model('file.py:factory', weights={str(path)!r}))."
            )
        raise ConvscopeError(f"{path} is not a convscope checkpoint.{hint}")
    version = obj.get("version", 0)
    if type(version) is not int:
        raise ConvscopeError(f"{path} has a damaged format version ({type(version).__name__})")
    if version > VERSION:
        raise ConvscopeError(f"{path} was written by a newer convscope (format version {version})")
    state = obj.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ConvscopeError(f"{path} has a damaged state_dict (it must map names to tensors)")
    if not isinstance(obj.get("train_state", {}), dict):
        raise ConvscopeError(f"{path} has a damaged train_state")
    return {**obj, "meta": parse_meta(obj.get("meta"), path)}


def parse_meta(text: Any, path: Any) -> dict[str, Any]:
    """The checkpoint's JSON metadata, checked for size, depth and the types convscope reads."""
    if not isinstance(text, str):
        raise ConvscopeError(f"{path} has damaged metadata (not JSON text)")
    if len(text) > MAX_META_CHARS:
        raise ConvscopeError(
            f"{path} has {len(text):,} characters of metadata, more than the {MAX_META_CHARS:,} convscope reads"
        )
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError covers JSONDecodeError and 4300-digit ints
        raise ConvscopeError(f"{path} has damaged metadata: {str(exc)[:120] or type(exc).__name__}") from None
    if not isinstance(meta, dict):
        raise ConvscopeError(f"{path} has damaged metadata (a JSON {type(meta).__name__}, not an object)")
    if _depth(meta) > MAX_META_DEPTH:
        raise ConvscopeError(f"{path} has metadata nested more than {MAX_META_DEPTH} levels deep")
    _check_types(meta, META_TYPES, path, "meta")
    _check_types(meta.get("architecture") or {}, ARCHITECTURE_TYPES, path, "architecture")
    _check_types(meta.get("dataset") or {}, DATASET_TYPES, path, "dataset")
    classes = meta.get("classes")
    if classes is not None and (len(classes) > MAX_CLASSES or not all(isinstance(c, str) for c in classes)):
        raise ConvscopeError(f"{path}: meta classes must be at most {MAX_CLASSES:,} names (strings)")
    if not all(isinstance(r, dict) for r in meta.get("history") or []):
        raise ConvscopeError(f"{path}: meta history must be a list of objects")
    return meta


def _check_types(d: dict[str, Any], types: dict[str, type], path: Any, where: str) -> None:
    for key, kind in types.items():
        value = d.get(key)
        if value is not None and not isinstance(value, kind):
            raise ConvscopeError(f"{path}: {where} {key!r} is a {type(value).__name__}, not a {kind.__name__}")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (so no RecursionError on hostile input)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v)
    return deepest
