"""Load a TF.js layers model straight from its published URL (e.g. CNN Explainer's).

``model.json`` and the weight shards its manifest names are downloaded into the cache
(``$CONVSCOPE_CACHE/models/<hash of the URL>/``, atomically) and then read by
:func:`~convscope.models.tfjs.load_tfjs_model` like any local file; a second load reads
the cache. Shard names are resolved against the model's own URL and must stay inside
its folder, so a manifest cannot make convscope fetch or write elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Sequence

from ..errors import ConvscopeError
from ..io_utils import download_to
from .model import Model
from .tfjs import load_tfjs_model

CLASS_FILES = ("classes.json", "labels.txt")


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


def model_cache(url: str) -> Path:
    root = Path(os.environ.get("CONVSCOPE_CACHE") or Path.home() / ".cache" / "convscope")
    return root / "models" / hashlib.sha256(url.encode()).hexdigest()[:16]


def fetch_tfjs_model(url: str, progress: bool = True) -> Path:
    """Download ``url`` (a model.json) and its shards once; return the local model.json."""
    folder = model_cache(url)
    local = folder / "model.json"
    if not local.is_file():
        _get(url, local, progress)
    try:
        spec = json.loads(local.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        local.unlink(missing_ok=True)
        raise ConvscopeError(f"{url} is not a TF.js model.json: {exc}") from None
    for group in spec.get("weightsManifest") or []:
        for name in group.get("paths") or []:
            rel = PurePosixPath(name)
            if rel.is_absolute() or ".." in rel.parts or urllib.parse.urlsplit(name).scheme:
                raise ConvscopeError(f"{url} names a weight shard outside its folder: {name!r}")
            shard = folder / rel
            if not shard.is_file():
                _get(urllib.parse.urljoin(url, name), shard, progress)
    for name in CLASS_FILES:  # optional sidecar class names, as beside a local model.json
        if not (folder / name).is_file():
            try:
                _get(urllib.parse.urljoin(url, name), folder / name, progress=False)
            except ConvscopeError:
                pass
    return local


def load_tfjs_url(url: str, classes: Sequence[str] | None = None) -> Model:
    model = load_tfjs_model(fetch_tfjs_model(url), classes=classes)
    model.meta["source"] = url
    return model


def _get(url: str, dest: Path, progress: bool) -> None:
    try:
        download_to(url, dest, desc=f"downloading {PurePosixPath(urllib.parse.urlsplit(url).path).name}",
                    progress=progress)
    except urllib.error.HTTPError as exc:
        raise ConvscopeError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        raise ConvscopeError(f"could not download {url}: {reason}") from None
