"""Small file helpers shared by every writer and reader: atomic writes so a crash never
leaves a half-written checkpoint, metrics file or figure behind; the one streaming
downloader, bounded in size and time; and the check that a named file stays inside its
folder once symlinks are resolved."""

from __future__ import annotations

import errno
import os
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConvscopeError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The rename is atomic on POSIX, so readers see either the old file or the new one.
    A full disk becomes a clear :class:`ConvscopeError` and the old file stays intact.
    A process killed mid-write leaves its ``.NAME.XXXX.tmp`` behind; the folder's
    owner removes those with :func:`remove_temp_files`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException as exc:
        why = out_of_room(exc, tmp_path)  # asked before the unlink frees the room
        tmp_path.unlink(missing_ok=True)
        if why is not None:
            kept = "; the previous file is intact" if path.exists() else ""
            raise ConvscopeError(f"{why} while writing {path}{kept}") from None
        raise


TEMP_SUFFIX = ".tmp"


def remove_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` left in ``folder`` when killed mid-write.

    Only the folder's single writer may call this (for a run folder: the holder of its
    :class:`~convscope.train.runlock.RunLock`), or it would delete a write in progress.
    """
    removed = []
    for tmp in Path(folder).glob(f".*.*{TEMP_SUFFIX}"):
        if tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def out_of_room(exc: BaseException, written: str | Path | None = None) -> str | None:
    """ "no space left on the device" (or the file-size limit) when that is why a write failed; else None.

    ``torch.save`` to a path loses the OS error (it raises ``RuntimeError: unexpected
    pos``), so for errors without an errno the file system and ``ulimit -f`` are asked:
    a full disk has no free block left, and a file cut by the limit is exactly its size.
    """
    if isinstance(exc, OSError) and exc.errno is not None:
        code = exc.errno
    elif isinstance(exc, (OSError, RuntimeError)) and written is not None:
        code = _room_errno(Path(written))
    else:
        return None
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on the device"
    if code == errno.EFBIG:
        return "the file size limit (ulimit -f) was reached"
    return None


def _room_errno(written: Path) -> int | None:
    try:
        fs = os.statvfs(written.parent)
        if fs.f_bavail == 0 or fs.f_bfree == 0:
            return errno.ENOSPC
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and written.is_file() and written.stat().st_size >= limit:
            return errno.EFBIG
    except (OSError, ImportError, ValueError):
        pass
    return None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


#: What one download may bring when the caller knows no better bound.
DEFAULT_MAX_BYTES = 1 << 30
#: Slowest average transfer rate a download is allowed, for deadlines derived from sizes.
MIN_RATE_BPS = 128 * 1024
READ_CHUNK = 1 << 20


class DownloadRefused(ConvscopeError):
    """A download broke its bounds: bigger than allowed, not the expected size, or too slow."""


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to http(s), and never from https down to plain http (urllib's
    own handler also follows ftp, and downgrades)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old = urllib.parse.urlsplit(req.full_url).scheme
        new = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme
        if new not in ("http", "https") or (old == "https" and new == "http"):
            raise DownloadRefused(
                f"{req.full_url} redirects to {newurl[:200]!r}; refused "
                "(downloads follow only http(s) redirects, never https to http)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SafeRedirects)


def transfer_deadline(size: int, slack: float = 60.0) -> float:
    """Seconds a download of ``size`` bytes may take in all: ``slack`` plus ``size`` at 128 KiB/s.

    A server trickling a byte every few seconds never trips a socket timeout; this
    overall deadline is what stops it.
    """
    return slack + size / MIN_RATE_BPS


def download_to(
    url: str,
    dest: str | Path,
    desc: str = "downloading",
    progress: bool = True,
    timeout: float = 20.0,
    on_chunk: Callable[[bytes], None] | None = None,
    check: Callable[[], None] | None = None,
    *,
    max_bytes: int | None = None,
    size: int | None = None,
    deadline: float | None = None,
) -> Path:
    """Stream an http(s)/file URL into ``dest`` atomically, with a tqdm bar and hard bounds.

    ``size`` is the exact length expected (a shorter or longer body is refused);
    ``max_bytes`` caps an unknown length (default :data:`DEFAULT_MAX_BYTES`); both are
    checked against ``Content-Length`` before reading and enforced while streaming, so
    an oversized body is cut off at the limit instead of being read to the end.
    ``deadline`` bounds the whole transfer in seconds (default: :func:`transfer_deadline`
    of the limit); it is checked after every read, and no read waits longer than
    ``min(timeout, deadline)``. Breaking a bound raises :class:`DownloadRefused`.

    ``on_chunk`` sees every chunk (e.g. to hash it); ``check`` runs before the rename and
    may raise to discard the download. On any failure the temporary file is removed and
    ``dest`` is untouched. Network failures raise ``OSError`` (``urllib.error.URLError``
    included) for the caller to explain.
    """
    from tqdm.auto import tqdm

    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise ConvscopeError(f"only http, https and file URLs can be downloaded, not {url!r}")
    limit = size if size is not None else (max_bytes if max_bytes is not None else DEFAULT_MAX_BYTES)
    deadline = transfer_deadline(limit) if deadline is None else deadline
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
    with atomic_path(dest) as tmp:
        with _OPENER.open(request, timeout=min(timeout, deadline)) as response, open(tmp, "wb") as out:
            declared = _content_length(response)
            _check_declared_length(url, declared, size, limit)
            read = getattr(response, "read1", response.read)  # read1: return what arrived, don't wait for more
            received = 0
            bar = tqdm(
                total=declared,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=desc,
                disable=not progress,
                leave=False,
            )
            with bar:
                while chunk := read(min(READ_CHUNK, limit - received + 1)):
                    received += len(chunk)
                    if received > limit:
                        raise DownloadRefused(
                            f"{url} sent more than the {limit} bytes "
                            f"{'expected' if size is not None else 'allowed'}; download stopped"
                        )
                    if time.monotonic() - started > deadline:
                        raise DownloadRefused(
                            f"{url} took longer than {deadline:g} s ({received} bytes so far); download stopped"
                        )
                    out.write(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
                    bar.update(len(chunk))
        if size is not None and received != size:
            raise DownloadRefused(f"{url} sent {received} bytes, expected {size}")
        if check is not None:
            check()
    return Path(dest)


def _content_length(response) -> int | None:
    length = response.headers.get("Content-Length") if response.headers else None
    return int(length) if length and length.strip().isdigit() else None


def _check_declared_length(url: str, declared: int | None, size: int | None, limit: int) -> None:
    """Refuse before reading a body whose announced length breaks the bounds."""
    if declared is None:
        return
    if size is not None and declared != size:
        raise DownloadRefused(f"{url} announces {declared} bytes, expected {size}")
    if declared > limit:
        raise DownloadRefused(f"{url} announces {declared} bytes, more than the {limit} allowed")


def resolve_inside(folder: str | Path, name: str | Path, what: str) -> Path:
    """``folder / name`` with every symlink resolved; it must still lie inside ``folder``.

    Names that come from a file (a manifest, a cache entry) or a request are checked
    this way so neither ``..`` nor a symlink can make convscope read or write elsewhere.
    Raises :class:`ConvscopeError` naming ``what`` otherwise.
    """
    base = Path(os.path.realpath(folder))
    try:
        target = Path(os.path.realpath(base / name))
    except ValueError:  # an embedded NUL byte
        raise ConvscopeError(f"{what} {str(name)!r} is not a valid file name") from None
    if target != base and base not in target.parents:  # the message does not reveal where it leads
        raise ConvscopeError(f"{what} {str(name)!r} leads outside its folder {base} (through '..' or a symlink)")
    return target


def save_arrays(path: str | Path, header: dict, arrays: dict) -> Path:
    """Write NumPy arrays plus a JSON header as ``.npz``, atomically: loadable without pickle."""
    import json

    import numpy as np

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, header=np.array(json.dumps(header)), **arrays)
    return path


def load_arrays(path: str | Path, names: tuple[str, ...] | list[str], what: str) -> tuple[dict, dict]:
    """Read what :func:`save_arrays` wrote: ``(header, {name: array})``; a clear error names ``what``."""
    import json
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["header"])), {k: z[k] for k in names}
    except (OSError, KeyError, ValueError, json.JSONDecodeError, EOFError, zipfile.BadZipFile) as exc:
        raise ConvscopeError(f"{path} is not a readable {what}: {exc}") from None
