"""The training view's API: runs under a folder, their curves, and their per-epoch snapshots.

A *run* is a folder written by ``convscope train --out DIR`` (``metrics.jsonl``,
``last.pt``/``best.pt``, ``snapshots/epoch_NNN.npz``), anywhere up to three levels
below the runs folder; it is named by its path relative to that folder (``tiny`` or
``mnist/tiny``). Only folders found by the scan can be named, and every file of a run is
resolved through its symlinks and read only if it stays inside the run's folder, so a
request can never reach a file outside the runs folder.

A damaged run never hides the others: a line of ``metrics.jsonl`` that is not JSON (or
not UTF-8) is skipped and listed in the run's ``problems``, a file that leads outside is
listed there and not read, and a run that cannot be described at all is listed with its
``error``.

While ``convscope train`` runs, the page polls ``/api/runs/{run}/metrics?since=VERSION``
every second or two: ``VERSION`` changes whenever ``metrics.jsonl`` or the snapshot
folder does, and an unchanged run answers ``{"changed": false}`` without reading files.
"""

from __future__ import annotations

import base64
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Query

from ..analysis.runs import METRICS_FILE, curves, event_files, event_stats, read_events, read_metrics
from ..errors import ConvscopeError, NotFound
from ..io_utils import resolve_inside
from ..train.snapshots import FOLDER as SNAPSHOTS
from ..train.snapshots import load_snapshot
from .context import ServerContext
from .encoding import pack_map

MAX_DEPTH = 3
LAST = "last.pt"
LIVE_SECONDS = 120.0  # a run whose files changed this recently and that has epochs to go is "running"


@dataclass(frozen=True)
class RunFiles:
    """Where one run's files are, and a version that changes whenever they do."""

    name: str
    path: Path

    def inside(self, name: str) -> Path | None:
        """The run's file or folder ``name``, symlinks resolved; None if it leads outside the run folder."""
        try:
            return resolve_inside(self.path, name, "run file")
        except ConvscopeError:
            return None

    @property
    def metrics(self) -> Path | None:
        return self.inside(METRICS_FILE)

    def outside(self) -> list[str]:
        """The run's files that are links leading out of its folder (never read)."""
        return [
            f"{name} leads outside the run folder (a symlink); not read"
            for name in (METRICS_FILE, SNAPSHOTS, LAST)
            if os.path.lexists(self.path / name) and self.inside(name) is None
        ]

    def snapshot(self, epoch: int) -> Path | None:
        """The snapshot file of ``epoch`` if it stays inside the run's snapshot folder."""
        folder = self.inside(SNAPSHOTS)
        path = self.inside(f"{SNAPSHOTS}/epoch_{epoch:03d}.npz")
        return path if folder is not None and path is not None and path.parent == folder else None

    def snapshot_epochs(self) -> list[int]:
        folder = self.inside(SNAPSHOTS)
        if folder is None or not folder.is_dir():
            return []
        out = []
        for f in folder.glob("epoch_*.npz"):
            try:
                out.append(int(f.stem.split("_", 1)[1]))
            except ValueError:
                continue
        return sorted(e for e in out if self.snapshot(e) is not None)

    def _stats(self) -> list[os.stat_result | None]:
        stats = []
        for name in (METRICS_FILE, SNAPSHOTS, LAST):
            path = self.inside(name)
            try:
                stats.append(path.stat() if path is not None else None)
            except OSError:
                stats.append(None)
        return stats if stats[0] is not None else stats + event_stats(self.path)  # a TensorBoard-only run

    def version(self) -> str:
        """``mtime_ns-size`` of metrics.jsonl, the snapshot folder and last.pt: equal versions, equal contents."""
        return ".".join(f"{st.st_mtime_ns}-{st.st_size}" if st else "0" for st in self._stats())

    def updated(self) -> float:
        return max((st.st_mtime for st in self._stats() if st), default=0.0)


class RunIndex:
    """Scans a runs folder for training runs; reads each run's recorded config once per change."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root is not None else None
        self._meta: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def scan(self) -> list[RunFiles]:
        """Every folder under the root holding a ``metrics.jsonl`` or a ``snapshots`` folder, sorted by name."""
        if self.root is None or not self.root.is_dir():
            return []
        found: list[RunFiles] = []

        def walk(folder: Path, depth: int) -> None:
            if (folder / METRICS_FILE).is_file() or (folder / SNAPSHOTS).is_dir() or event_files(folder):
                rel = folder.relative_to(self.root).as_posix()
                found.append(RunFiles(rel if rel != "." else (folder.resolve().name or "run"), folder))
                return
            if depth >= MAX_DEPTH:
                return
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                return
            for child in children:
                walk(child, depth + 1)

        walk(self.root, 0)
        return found

    def get(self, name: str) -> RunFiles:
        for run in self.scan():
            if run.name == name:
                return run
        where = self.root if self.root is not None else "(no runs folder: start convscope serve with --runs DIR)"
        raise NotFound(f"no training run {name!r} under {where}")

    def meta(self, run: RunFiles) -> dict[str, Any]:
        """The metadata of the run's ``last.pt`` (its config, dataset, classes), cached by mtime; {} if none yet."""
        from ..models.checkpoint import load_checkpoint

        path = run.inside(LAST)
        try:
            mtime = path.stat().st_mtime_ns if path is not None else None
        except OSError:
            mtime = None
        if mtime is None:
            return {}
        with self._lock:
            hit = self._meta.get(path)
            if hit is not None and hit[0] == mtime:
                return hit[1]
        try:
            meta = load_checkpoint(path)["meta"]
        except (ConvscopeError, OSError, RuntimeError, EOFError):
            return {}  # being written right now, or not ours: try again at the next change
        if not isinstance(meta, dict):
            return {}
        with self._lock:
            self._meta[path] = (mtime, meta)
        return meta

    def read(self, run: RunFiles) -> tuple[list[dict[str, Any]], list[str]]:
        """The run's per-epoch history and its problems (skipped lines, links leading outside)."""
        problems = run.outside()
        path = run.metrics
        if path is None or not path.is_file():
            return read_events(run.path, problems), problems  # TensorBoard event files, if any
        try:
            return read_metrics(path, problems), problems
        except (ConvscopeError, OSError) as exc:  # vanished or unreadable since the scan
            return [], [*problems, f"{METRICS_FILE} cannot be read: {exc}"]

    def describe(
        self, run: RunFiles, history: list[dict[str, Any]] | None = None, problems: list[str] | None = None
    ) -> dict[str, Any]:
        """One row of the run list: what it trains, how far it is, how good it got."""
        if history is None:
            history, problems = self.read(run)
        meta = self.meta(run)
        config = _dict(meta.get("config"))
        total = config.get("epochs") if _number(config.get("epochs")) else None
        done = int(history[-1]["epoch"]) if history else 0
        best = max((r for r in history if _number(r.get("val_acc"))), key=lambda r: r["val_acc"], default=None)
        updated = run.updated()
        # all epochs of config's count done, or a cs.Run closed cleanly (its last.pt says it ended)
        finished = meta.get("ended") is True or (total is not None and done >= int(total))
        status = "finished" if finished else "running" if time.time() - updated < LIVE_SECONDS else "stopped"
        return {
            "name": run.name,
            "epochs": done,
            "total_epochs": total,
            # cs.Run's own loop need not say config={"model": ...}: its recorded zoo architecture does
            "model": _text(config.get("model") or _dict(meta.get("architecture")).get("zoo")),
            "data": _text(config.get("data") or _dict(meta.get("dataset")).get("name")),
            "classes": meta.get("classes"),
            "status": status,
            "updated": updated,
            "version": run.version(),
            "best_val_acc": best["val_acc"] if best else None,
            "best_epoch": int(best["epoch"]) if best else None,
            "last": _json_safe(history[-1]) if history else None,
            "command": _text(meta.get("command")),
            "problems": problems or [],
        }

    def row(
        self, run: RunFiles, history: list[dict[str, Any]] | None = None, problems: list[str] | None = None
    ) -> dict[str, Any]:
        """:meth:`describe`, or for a run that cannot be described, its name and the error."""
        try:
            return self.describe(run, history, problems)
        except (ConvscopeError, OSError, ValueError, TypeError, KeyError) as exc:
            return {
                "name": run.name,
                "epochs": 0,
                "total_epochs": None,
                "model": None,
                "data": None,
                "classes": None,
                "status": "error",
                "updated": None,
                "version": None,
                "best_val_acc": None,
                "best_epoch": None,
                "last": None,
                "command": None,
                "problems": [],
                "error": f"{type(exc).__name__}: {exc}"[:300],
            }


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _json_safe(v: Any) -> Any:
    """``v`` with NaN and infinities as null (JSON has neither; a diverging run logs them)."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_json_safe(x) for x in v]
    return v


def _finite(values: list[float]) -> list[float | None]:
    """JSON has no NaN: missing values travel as null."""
    return [v if math.isfinite(v) else None for v in values]


def snapshot_json(snap: dict[str, Any], classes: list[str] | None = None) -> dict[str, Any]:
    """A snapshot for the page: filters (O, I, kh, kw) and maps (C, H, W) as packed float32, image as PNG.

    ``weight_range``/``activation_range`` are the symmetric ranges over the whole epoch, so
    one colour scale covers every filter (and every map) of that epoch.
    """
    from ..render import png_bytes

    w = np.asarray(snap["weight"], np.float32)
    a = np.asarray(snap["activations"], np.float32)
    image = np.asarray(snap["image"], np.uint8)
    hwc = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    label = int(snap["label"])
    return {
        "epoch": int(snap["epoch"]),
        "layer": snap["layer"],
        "label": label,
        "label_name": classes[label] if classes and 0 <= label < len(classes) else str(label),
        "weight": {**pack_map(w.reshape(-1)), "shape": list(w.shape)},
        "bias": np.asarray(snap["bias"], np.float32).tolist(),
        "activations": {**pack_map(a.reshape(-1)), "shape": list(a.shape)},
        "weight_range": float(np.abs(w).max()) if w.size else 0.0,
        "activation_range": float(np.abs(a).max()) if a.size else 0.0,
        "image": "data:image/png;base64," + base64.b64encode(png_bytes(hwc)).decode(),
    }


def router(ctx: ServerContext) -> APIRouter:
    """The ``/api/runs`` endpoints for the runs under ``ctx.runs`` (None: no runs folder)."""
    index = RunIndex(ctx.runs)
    r = APIRouter(tags=["training runs"])

    @r.get("/api/runs", summary="Training runs under the runs folder (convscope serve --runs DIR)")
    def list_runs() -> dict[str, Any]:
        return {
            "root": str(index.root) if index.root is not None else None,
            "runs": [index.row(run) for run in index.scan()],
        }

    @r.get(
        "/api/runs/{run:path}/metrics",
        summary="A run's per-epoch curves; unchanged since VERSION answers changed=false",
    )
    def run_metrics(
        run: str, since: str | None = Query(None, description="the version of the last answer")
    ) -> dict[str, Any]:
        files = index.get(run)
        version = files.version()
        if since is not None and since == version:
            return {"name": files.name, "version": version, "changed": False}
        history, problems = index.read(files)
        return {
            "name": files.name,
            "version": version,
            "changed": True,
            "run": index.row(files, history, problems),
            "curves": {k: _finite(v) for k, v in curves(history).items()},
            "snapshots": files.snapshot_epochs(),
            "problems": problems,
        }

    @r.get("/api/runs/{run:path}/snapshots/{epoch}", summary="First-layer filters and activation maps after an epoch")
    def snapshot(run: str, epoch: int) -> dict[str, Any]:
        files = index.get(run)
        path = files.snapshot(epoch)
        if path is None or not path.is_file():
            raise NotFound(f"run {run!r} has no snapshot of epoch {epoch} (it has {files.snapshot_epochs()})")
        try:
            snap = load_snapshot(path)
        except (OSError, ValueError, KeyError) as exc:
            raise ConvscopeError(f"the snapshot {path.name} of run {run!r} cannot be read: {exc}") from None
        return snapshot_json(snap, index.meta(files).get("classes"))

    return r
