"""Load a TF.js layers model straight from its published URL (e.g. CNN Explainer's).

``model.json`` and the weight shards its manifest names are downloaded into a fresh
staging folder beside the cache entry, checked, and only then renamed into place as
``$CONVSCOPE_CACHE/models/<hash of the URL>/``; a second load reads the cache. So the
cache holds complete models or nothing:

* ``model.json`` may have at most :data:`~convscope.models.tfjs_weights.MAX_JSON_BYTES`;
* the manifest is validated before any shard is fetched, and each shard download is
  cut off at the bytes its group still lacks, so a shard declared as 308 bytes cannot
  bring 300 MB; a group whose shards fall short is an error;
* every download has a deadline (:func:`~convscope.io_utils.transfer_deadline`);
* shard names are resolved against the model's own URL and must stay inside its folder
  (no ``..``, no absolute path, no other host), so a manifest cannot make convscope
  fetch or write elsewhere;
* a cached model that fails to load is deleted, never kept.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ..errors import ConvscopeError
from ..io_utils import download_to, resolve_inside
from .known import known_by_url
from .model import Model
from .tfjs import load_tfjs_model
from .tfjs_weights import CLASS_FILES, MAX_JSON_BYTES, MAX_LABELS_BYTES, read_json, weight_groups


def model_cache(url: str) -> Path:
    root = Path(os.environ.get("CONVSCOPE_CACHE") or Path.home() / ".cache" / "convscope")
    return root / "models" / hashlib.sha256(url.encode()).hexdigest()[:16]


def fetch_tfjs_model(url: str, progress: bool = True, deadline: float | None = None) -> Path:
    """Download ``url`` (a model.json) and its shards once; return the local model.json.

    ``deadline`` bounds each file's download in seconds (default: from its size limit).
    """
    folder = model_cache(url)
    local = folder / "model.json"
    if local.is_file():
        return local
    if folder.exists():  # a partial entry left by an older convscope
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _download_model(url, staging, progress, deadline)
        try:
            os.replace(staging, folder)
        except OSError:
            if not local.is_file():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return local


def load_tfjs_url(url: str, classes: Sequence[str] | None = None) -> Model:
    local = fetch_tfjs_model(url)
    known = known_by_url(url)
    if classes is None and known is not None:
        classes = known.classes
    try:
        model = load_tfjs_model(local, classes=classes)
    except ConvscopeError:
        shutil.rmtree(local.parent, ignore_errors=True)  # a later load downloads it afresh
        raise
    model.meta["source"] = url
    return model


def _download_model(url: str, folder: Path, progress: bool, deadline: float | None) -> None:
    """model.json, then each manifest group's shards bounded by the bytes the group declares."""
    local = folder / "model.json"
    _get(url, local, progress, MAX_JSON_BYTES, deadline)
    spec = read_json(local)
    if not isinstance(spec, dict):
        raise ConvscopeError(f"{url} is not a TF.js model.json (its JSON is not an object)")
    for group in weight_groups(spec, url):
        missing = group.nbytes
        for name in group.paths:
            if urllib.parse.urlsplit(name).scheme or urllib.parse.urlsplit(name).netloc:
                raise ConvscopeError(f"{url} names a weight shard outside its folder: {name!r}")
            shard = resolve_inside(folder, PurePosixPath(name), f"{url} names a weight shard")
            _get(urllib.parse.urljoin(url, name), shard, progress, missing, deadline)
            missing -= shard.stat().st_size
        if missing:
            raise ConvscopeError(
                f"the weight shards {', '.join(group.paths) or '(none)'} of {url} hold "
                f"{group.nbytes - missing} bytes but its manifest describes {group.nbytes}"
            )
    for name in CLASS_FILES:  # optional sidecar class names, as beside a local model.json
        try:
            _get(urllib.parse.urljoin(url, name), folder / name, False, MAX_LABELS_BYTES, deadline)
        except ConvscopeError:
            pass


def _get(url: str, dest: Path, progress: bool, max_bytes: int, deadline: float | None) -> None:
    try:
        download_to(
            url,
            dest,
            desc=f"downloading {PurePosixPath(urllib.parse.urlsplit(url).path).name}",
            progress=progress,
            max_bytes=max_bytes,
            deadline=deadline,
        )
    except urllib.error.HTTPError as exc:
        raise ConvscopeError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise ConvscopeError(f"could not download {url}: {reason}") from None
