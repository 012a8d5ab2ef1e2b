"""CNN Explainer's published Tiny VGG for the tests: from ``../shared`` or from its site.

The project's own checkout has ``../shared/fixtures/cnn-explainer`` (the model, 20 images
and TF.js reference outputs). A user's clone has no ``../shared``; there the model files
and two sample images are fetched once from where CNN Explainer publishes them
(``$CONVSCOPE_CNN_EXPLAINER_URL`` overrides the address), checked against the SHA-256 of
the published bytes and cached under ``$CONVSCOPE_CACHE`` (default ``~/.cache/convscope``).
The TF.js reference outputs are not published anywhere (they were computed for this
project), so the tests that compare against them need ``../shared``.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures" / "cnn-explainer"
SITE = "https://poloclub.github.io/cnn-explainer/assets/"
URL_ENV = "CONVSCOPE_CNN_EXPLAINER_URL"

# CNN Explainer's class names in the order of the output units (its published label list).
CLASSES = [
    "lifeboat",
    "ladybug",
    "pizza",
    "bell pepper",
    "school bus",
    "koala",
    "espresso",
    "red panda",
    "orange",
    "sport car",
]

# local name -> (path on the site, SHA-256 of the published file)
FILES = {
    "model.json": ("data/model.json", "85706d2d99841eb6270ddbf912bcf43c4d1bf76bc68a0a56af49561a69589627"),
    "group1-shard1of1.bin": (
        "data/group1-shard1of1.bin",
        "306666f2a1cc2a0a8f7b3422617daac5ecdca20c707ab44b721522be1fe3f630",
    ),
    "images/espresso_1.jpeg": (
        "img/espresso_1.jpeg",
        "9307c85667470cdb22557ebcf77a573dac5df83e360b6e339f47627b5871b3df",
    ),
    "images/bus_1.jpeg": ("img/bus_1.jpeg", "ff7ccbdb78b5da7c791378f02d3cc6d3e79d9bb4dc47d68898234da55376ec14"),
}


class Unavailable(Exception):
    """The published files could not be fetched (offline, or the site moved)."""


def cache_dir() -> Path:
    base = os.environ.get("CONVSCOPE_CACHE") or Path.home() / ".cache" / "convscope"
    return Path(base) / "test-fixtures" / "cnn-explainer"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(dest: Path | None = None, base: str | None = None) -> Path:
    """The folder with every file in :data:`FILES`, downloading what is missing.

    A file whose bytes are not the published ones is never kept: the download goes
    through :func:`convscope.io_utils.download_to`, whose ``check`` discards it.
    Raises :class:`Unavailable` when the site cannot be reached.
    """
    from convscope.errors import ConvscopeError
    from convscope.io_utils import download_to

    dest = dest or cache_dir()
    base = base or os.environ.get(URL_ENV) or SITE
    for name, (remote, digest) in FILES.items():
        target = dest / name
        if target.is_file() and _sha256(target) == digest:
            continue
        hasher = hashlib.sha256()

        def check(hasher=hasher, digest=digest, name=name) -> None:
            if hasher.hexdigest() != digest:
                raise ConvscopeError(f"{name} from {base} is not the published file (SHA-256 {hasher.hexdigest()})")

        try:
            download_to(
                base.rstrip("/") + "/" + remote, target, progress=False, timeout=10, on_chunk=hasher.update, check=check
            )
        except (OSError, urllib.error.URLError) as exc:
            raise Unavailable(f"could not fetch CNN Explainer's {remote} from {base} ({exc})") from None
    return dest


def locate() -> Path:
    """``../shared``'s copy when there is one, else the fetched and cached copy."""
    if (SHARED / "model.json").is_file():
        return SHARED
    return fetch()
