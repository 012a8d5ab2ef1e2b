"""One writer per run folder: an exclusive lock on ``OUT/.convscope.lock``.

Two processes training into the same ``--out`` would interleave ``metrics.jsonl`` and
overwrite each other's ``best.pt`` while both report success. So a run folder is owned
by one process at a time: anything that writes into it (``convscope train``,
:func:`convscope.train.train`, and any later logging API) first takes a
:class:`RunLock`; a second writer, or a ``--resume`` of a run that is being written, gets
a one-line :class:`~convscope.errors.ConvscopeError` naming the process that holds it.

The lock is ``fcntl.flock`` on the lock file, so the kernel drops it when its holder
exits, however it exits (``kill -9`` included): a lock file left behind by a dead process
is stale, and the next writer simply takes it over (:attr:`RunLock.stale` then says
whose it was). The holder writes its pid, host and command into the file, for messages
only. Where ``flock`` is not available (no ``fcntl``, or a file system that refuses it)
the recorded pid decides instead: a live process on this host holds the run.

>>> with RunLock("runs/demo"):      # raises ConvscopeError if another process writes there
...     ...                         # write metrics, checkpoints, snapshots
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import ConvscopeError

try:
    import fcntl
except ImportError:  # Windows: fall back to the recorded pid
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".convscope.lock"
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}


class RunLock:
    """The exclusive right to write into the run folder ``out`` (created if needed).

    :meth:`acquire` raises :class:`ConvscopeError` when another process (or another
    writer in this process) holds it; :meth:`release` (or leaving the ``with`` block)
    gives it back and removes the lock file. Process exit releases it too.
    """

    def __init__(self, out: str | Path, command: str | None = None) -> None:
        self.out = Path(out)
        self.path = self.out / LOCK_FILE
        self.command = command if command is not None else " ".join(["python", *sys.argv])[:300]
        self.stale: dict[str, Any] | None = None  # the dead holder whose lock was taken over
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        self.out.mkdir(parents=True, exist_ok=True)
        for _ in range(20):  # retried only when the file was replaced between open and lock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                previous = _read(fd)
                if not self._lock(fd, previous):
                    if previous is None:  # the holder is writing its record right now
                        time.sleep(0.2)
                        previous = _read(fd)
                    raise ConvscopeError(
                        f"{self.out} is being written by {_describe(previous)}; wait for it to "
                        "finish (or stop it) before writing there, or choose another --out"
                    )
                if _same_file(fd, self.path):
                    break
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # a releasing holder unlinked that file; lock the new one
        else:
            raise ConvscopeError(f"could not take the lock {self.path}: it keeps being replaced")
        if previous and previous.get("pid") not in (None, os.getpid()):
            self.stale = previous  # its holder died without releasing (the kernel dropped its flock)
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "since": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(record).encode(), 0)
        except OSError:
            pass  # a full disk: the record only serves messages, the kernel lock is what counts
        self._fd = fd
        return self

    def _lock(self, fd: int, previous: dict[str, Any] | None) -> bool:
        """Take the kernel lock on ``fd``; False if someone holds it."""
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    raise
        return not (previous and _alive(previous))

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink()  # while still locked, so nobody can lock this file and miss the next
        except OSError:
            pass
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            self.release()


def _read(fd: int) -> dict[str, Any] | None:
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "null")
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _alive(record: dict[str, Any]) -> bool:
    pid = record.get("pid")
    if not isinstance(pid, int) or record.get("host") not in (None, socket.gethostname()):
        return True  # no pid recorded yet, or another host's process, which cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    return True


def _describe(record: dict[str, Any] | None) -> str:
    if not record or not isinstance(record.get("pid"), int):
        return "another process (it has not recorded its pid yet)"
    who = "this process" if record["pid"] == os.getpid() else "another process"
    host = f" on {record['host']}" if record.get("host") not in (None, socket.gethostname()) else ""
    command = f": {record['command']}" if record.get("command") else ""
    since = f", since {record['since']}" if record.get("since") else ""
    return f"{who} (pid {record['pid']}{host}{since}{command})"
