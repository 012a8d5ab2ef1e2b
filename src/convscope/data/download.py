"""The dataset cache and checksum-verified, atomic downloads.

Files live in ``<root>/<dataset>/<filename>``, where ``root`` defaults to
``$CONVSCOPE_CACHE/datasets`` (``~/.cache/convscope/datasets``). A download streams
into a temporary file beside its destination while hashing; only when the checksum
matches is it renamed into place, so an interrupted or tampered download never leaves
anything in the cache. Every download is bounded by the file's official size (or
:data:`~convscope.io_utils.DEFAULT_MAX_BYTES`) and an overall deadline, so a mirror that
streams too much or trickles is cut off and the next mirror is tried. Files already
cached are verified again before use (size first, then checksum), which also catches a
damaged copy a person put there by hand; a cache entry that is a symlink leading out of
its dataset folder is refused.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConvscopeError
from ..io_utils import DownloadRefused, download_to, resolve_inside
from .sources import DATA_URL_ENV, DatasetSource, RemoteFile, mirror_urls

CACHE_ENV = "CONVSCOPE_CACHE"
CHUNK = 1 << 20
TIMEOUT_S = 20.0  # per socket operation: connect, and each read
# what a failed transfer raises (URLError, timeouts and refused connections are OSErrors)
_NETWORK_ERRORS = (OSError, http.client.HTTPException)


class DatasetUnavailable(ConvscopeError):
    """The files are not cached and could not be downloaded (offline, blocked, 404)."""


class ChecksumMismatch(ConvscopeError):
    """A downloaded or cached file does not have its official checksum."""


def cache_dir() -> Path:
    """convscope's cache folder: ``$CONVSCOPE_CACHE`` or ``~/.cache/convscope``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "convscope"


def data_root(root: str | Path | None = None) -> Path:
    """The folder holding one sub-folder per dataset (``root`` wins over the cache)."""
    return Path(root).expanduser() if root is not None else cache_dir() / "datasets"


def _hashers(remote: RemoteFile) -> dict[str, Any]:
    """One hasher per checksum the table gives (md5 is for integrity, not security)."""
    hashers = {}
    if remote.sha256:
        hashers["sha256"] = hashlib.sha256()
    if remote.md5:
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    return hashers


def file_digests(path: Path, remote: RemoteFile) -> dict[str, str]:
    """The hex digests of a file for the checksums ``remote`` lists, read in chunks."""
    hashers = _hashers(remote)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
    return {algo: h.hexdigest() for algo, h in hashers.items()}


def checksum_problem(remote: RemoteFile, digests: dict[str, str]) -> str | None:
    """None when every checksum the table gives matches, else what differs."""
    for algo in ("sha256", "md5"):
        expected = getattr(remote, algo)
        if expected and digests[algo] != expected.lower():
            return f"{algo} {digests[algo]}, expected {expected.lower()}"
    return None


def fetch(
    source: DatasetSource,
    root: str | Path | None = None,
    mirrors: str | Sequence[str] | None = None,
    download: bool = True,
    progress: bool = True,
    deadline: float | None = None,
) -> dict[str, Path]:
    """Make sure every file of ``source`` is in the cache; return ``{role: path}``.

    Cached files are verified. Missing ones are downloaded (when ``download``) from the
    first mirror that serves the right bytes, each within ``deadline`` seconds (default:
    from its size, see :func:`~convscope.io_utils.transfer_deadline`). Raises
    :class:`DatasetUnavailable` when a file cannot be had (its message says where to put
    the files by hand) and :class:`ChecksumMismatch` when the only copies found have the
    wrong checksum or size.
    """
    folder = data_root(root) / source.name
    paths: dict[str, Path] = {}
    missing: list[RemoteFile] = []
    for remote in source.files:
        path = folder / remote.filename
        if path.is_file():
            path = resolve_inside(folder, remote.filename, f"cached {source.name} file")
            actual = path.stat().st_size
            if remote.size is not None and actual != remote.size:
                raise ChecksumMismatch(
                    f"{path} in the cache has {actual} bytes, expected {remote.size}: it is "
                    "damaged or a different version; delete it to download it again"
                )
            problem = checksum_problem(remote, file_digests(path, remote))
            if problem:
                raise ChecksumMismatch(
                    f"{path} in the cache has the wrong checksum ({problem}): it is damaged or "
                    f"a different version; delete it to download it again"
                )
            paths[remote.role] = path
        else:
            missing.append(remote)
    if not missing:
        return paths
    if not download:
        raise DatasetUnavailable(_where_to_put(source, folder, missing, "downloads are turned off"))
    urls = mirror_urls(source, mirrors)
    for remote in missing:
        paths[remote.role] = _download_from_mirrors(source, folder, remote, urls, missing, progress, deadline)
    return paths


def _download_from_mirrors(
    source: DatasetSource,
    folder: Path,
    remote: RemoteFile,
    urls: list[str],
    missing: list[RemoteFile],
    progress: bool,
    deadline: float | None,
) -> Path:
    dest = folder / remote.filename  # a dangling symlink here is replaced, never written through
    failures: list[str] = []
    mismatches: list[str] = []
    for base in urls:
        url = urllib.parse.urljoin(base if base.endswith("/") else base + "/", remote.filename)
        try:
            download_file(url, dest, remote, progress=progress, deadline=deadline)
            return dest
        except ChecksumMismatch as exc:
            mismatches.append(str(exc))
        except DownloadRefused as exc:  # too big, wrong size or too slow: try the next mirror
            failures.append(str(exc))
        except _NETWORK_ERRORS as exc:
            failures.append(f"{url}: {_reason(exc)}")
        except ValueError as exc:  # a malformed mirror URL
            failures.append(f"{url}: not a valid URL ({exc})")
    if mismatches:
        raise ChecksumMismatch("; ".join(mismatches) + f"; nothing was written to {folder}")
    raise DatasetUnavailable(_where_to_put(source, folder, missing, "download failed (" + "; ".join(failures) + ")"))


def download_file(
    url: str,
    dest: Path,
    remote: RemoteFile,
    progress: bool = True,
    timeout: float = TIMEOUT_S,
    deadline: float | None = None,
) -> None:
    """Stream ``url`` into ``dest`` atomically, verifying ``remote``'s size and checksum.

    The transfer stops at ``remote.size`` bytes (or the default limit) and after
    ``deadline`` seconds (:class:`~convscope.io_utils.DownloadRefused`). On a mismatch
    (or any error) the temporary file is removed and ``dest`` is untouched.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https", "file"):
        raise ConvscopeError(f"mirror URLs must be http, https or file URLs, not {url!r} (check ${DATA_URL_ENV})")
    hashers = _hashers(remote)

    def hash_chunk(chunk: bytes) -> None:
        for h in hashers.values():
            h.update(chunk)

    def verify() -> None:
        problem = checksum_problem(remote, {algo: h.hexdigest() for algo, h in hashers.items()})
        if problem:
            raise ChecksumMismatch(f"checksum mismatch for {remote.filename} from {url}: {problem}")

    download_to(
        url,
        dest,
        desc=f"downloading {remote.filename}",
        progress=progress,
        timeout=timeout,
        on_chunk=hash_chunk,
        check=verify,
        size=remote.size,
        deadline=deadline,
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _where_to_put(source: DatasetSource, folder: Path, missing: list[RemoteFile], why: str) -> str:
    names = ", ".join(f.filename for f in missing)
    where = f" (from {source.homepage})" if source.homepage else ""
    return (
        f"{source.name} is not in the cache and {why}. Put {names}{where} in {folder}, "
        f"or set ${DATA_URL_ENV} to a mirror"
    )
