"""Small file helpers shared by every writer: atomic writes so a crash never leaves a
half-written checkpoint, metrics file or figure behind."""

from __future__ import annotations

import errno
import os
import tempfile
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .errors import ConvscopeError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it over ``path``.

    The rename is atomic on POSIX, so readers see either the old file or the new one.
    A full disk becomes a clear :class:`ConvscopeError` and the old file stays intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as exc:
        tmp_path.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise ConvscopeError(f"no space left on the device while writing {path}; the previous file is intact") from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


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


def download_to(url: str, dest: str | Path, desc: str = "downloading", progress: bool = True,
                timeout: float = 20.0, on_chunk: Callable[[bytes], None] | None = None,
                check: Callable[[], None] | None = None) -> Path:
    """Stream an http(s)/file URL into ``dest`` atomically, with a tqdm bar.

    ``on_chunk`` sees every chunk (e.g. to hash it); ``check`` runs before the rename and
    may raise to discard the download, leaving ``dest`` untouched. Network failures raise
    ``OSError`` (``urllib.error.URLError`` included) for the caller to explain.
    """
    from tqdm.auto import tqdm

    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise ConvscopeError(f"only http, https and file URLs can be downloaded, not {url!r}")
    request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
    with atomic_path(dest) as tmp:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
            length = response.headers.get("Content-Length")
            bar = tqdm(total=int(length) if length and length.isdigit() else None, unit="B", unit_scale=True,
                       unit_divisor=1024, desc=desc, disable=not progress, leave=False)
            with bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    if on_chunk is not None:
                        on_chunk(chunk)
                    bar.update(len(chunk))
        if check is not None:
            check()
    return Path(dest)


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

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["header"])), {k: z[k] for k in names}
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise ConvscopeError(f"{path} is not a readable {what}: {exc}") from None
