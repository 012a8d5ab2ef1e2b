"""CIFAR-10's python-pickle batches, read without executing anything.

The official ``cifar-10-python.tar.gz`` holds ``cifar-10-batches-py/data_batch_1..5``,
``test_batch`` and ``batches.meta``: Python 2 pickles (protocol 2) of dicts whose
``data`` is a uint8 NumPy array (N, 3072: 1024 red, 1024 green, 1024 blue values, each
a 32x32 row-major plane) and whose ``labels`` is a list of ints.

A pickle can name any importable callable, so an ordinary ``pickle.load`` of a
downloaded file could run arbitrary code. :class:`RestrictedUnpickler` resolves only
the few globals that NumPy arrays need and refuses everything else with a
:class:`ConvscopeError` before anything is called. Members are read straight from the
archive (never extracted), so archive paths cannot escape the cache either.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConvscopeError
from .base import ImageDataset

TRAIN_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5")
TEST_BATCH = "test_batch"
META = "batches.meta"
SIDE = 32
#: Largest archive member read into memory (an official batch is 31 MB).
MAX_MEMBER_BYTES = 256 << 20


def _numpy_global(module: str, name: str) -> Any:
    for prefix in ("numpy._core.", "numpy.core."):  # NumPy 2 renamed numpy.core
        try:
            mod = __import__(prefix + module, fromlist=[name])
            return getattr(mod, name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {module}.{name}")


def _latin1_encode(text: Any, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-2 pickles use it for bytes: text codecs only."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise ConvscopeError("refusing _codecs.encode with anything but latin-1 text in a pickle")
    return text.encode("latin-1")


def _bytearray(*args: Any) -> bytearray:
    """``bytearray`` as pickles use it (from bytes or latin-1 text), never ``bytearray(n)``:
    a few bytes of pickle must not allocate gigabytes."""
    if not args or isinstance(args[0], int):
        raise ConvscopeError("refusing bytearray(size) in a pickle")
    return bytearray(*args)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    reconstruct = _numpy_global("multiarray", "_reconstruct")
    scalar = _numpy_global("multiarray", "scalar")
    frombuffer = _numpy_global("numeric", "_frombuffer")
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = frombuffer
    for builtins in ("builtins", "__builtin__"):
        for container in (list, dict, tuple, set, frozenset):
            allowed[(builtins, container.__name__)] = container
        allowed[(builtins, "bytearray")] = _bytearray
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays, dtypes and builtin containers; refuses every other global."""

    _ALLOWED: dict[tuple[str, str], Any] | None = None

    def __init__(self, file: Any, label: str) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 str -> str, as NumPy recommends
        self.label = label
        if RestrictedUnpickler._ALLOWED is None:
            RestrictedUnpickler._ALLOWED = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        found = self._ALLOWED.get((module, name)) if self._ALLOWED else None
        if found is None:
            raise ConvscopeError(
                f"{self.label}: refusing to load {module}.{name} from a pickle "
                "(only NumPy arrays and plain containers are allowed); the file is not a genuine "
                "CIFAR batch or has been tampered with"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise ConvscopeError(f"{self.label}: refusing a pickle with persistent references")


def safe_unpickle(data: bytes, label: str) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`; any failure is a ConvscopeError."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), label).load()
    except ConvscopeError as exc:
        if str(exc).startswith(label):
            raise
        raise ConvscopeError(f"{label}: {exc}") from None  # the guarded globals do not know which file
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        UnicodeDecodeError,
        OverflowError,
        MemoryError,
    ) as exc:
        raise ConvscopeError(f"{label} is not a readable pickle: {_one_line(exc)}") from None


def _text_keys(obj: Any, label: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ConvscopeError(f"{label}: expected a dict, found {type(obj).__name__}")
    return {k.decode("latin-1") if isinstance(k, bytes) else str(k): v for k, v in obj.items()}


def parse_batch(
    obj: Any, label: str, n_classes: int, max_bytes: int = MAX_MEMBER_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """A batch dict -> images uint8 (N, 3, 32, 32) and labels int64 (N,).

    A genuine batch's pixels come from the pickle's own bytes, so ``data`` larger than
    ``max_bytes`` (the pickle's size) is an array the pickle merely declared: refused
    before anything touches its memory.
    """
    d = _text_keys(obj, label)
    if "data" not in d or "labels" not in d:
        raise ConvscopeError(f"{label}: a CIFAR batch needs 'data' and 'labels', found {sorted(d)}")
    data = d["data"]
    try:
        labels = np.asarray(d["labels"])
    except (ValueError, TypeError, OverflowError) as exc:  # ragged or odd lists
        raise ConvscopeError(f"{label}: 'labels' is not a list of integers ({exc})") from None
    if labels.size == 0:
        labels = labels.astype(np.int64)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        shape = getattr(data, "shape", None)
        raise ConvscopeError(f"{label}: 'data' must be uint8 (N, {3 * SIDE * SIDE}), got {type(data).__name__} {shape}")
    if data.nbytes > max_bytes:
        raise ConvscopeError(f"{label}: 'data' declares {data.nbytes} bytes, more than the {max_bytes} the file holds")
    if labels.ndim != 1 or len(labels) != len(data) or labels.dtype.kind not in "iu":
        raise ConvscopeError(f"{label}: {len(data)} images but labels of shape {labels.shape} ({labels.dtype})")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ConvscopeError(f"{label}: labels must lie in 0..{n_classes - 1}")
    return data.reshape(-1, 3, SIDE, SIDE), labels.astype(np.int64)


def _one_line(exc: BaseException) -> str:
    """tarfile lists every method it tried, one a line: a user-facing error is one line."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _member_reader(archive: Path) -> tuple[tarfile.TarFile, Callable[[str], bytes]]:
    try:
        tar = tarfile.open(archive, "r:*")
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ConvscopeError(f"{archive} is not a readable tar archive: {_one_line(exc)}") from None

    def read(name: str) -> bytes:
        if name not in members:
            raise ConvscopeError(f"{archive} has no {name} (is it cifar-10-python.tar.gz?)")
        if members[name].size > MAX_MEMBER_BYTES:
            raise ConvscopeError(
                f"{archive}: {name} declares {members[name].size} bytes, more than the "
                f"{MAX_MEMBER_BYTES} convscope reads from one member"
            )
        try:
            return tar.extractfile(members[name]).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise ConvscopeError(f"{archive}: cannot read {name}: {_one_line(exc)}") from None

    return tar, read


def _label_names(names: Any, label: str) -> list[str]:
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, (str, bytes)) for n in names):
        raise ConvscopeError(f"{label}: 'label_names' must be a list of class names")
    return [n.decode("latin-1") if isinstance(n, bytes) else n for n in names]


def _batch(blob: bytes, label: str, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    return parse_batch(safe_unpickle(blob, label), label, n_classes, max_bytes=len(blob))


def load_cifar10_archive(archive: Path, name: str, classes: Sequence[str]) -> tuple[ImageDataset, ImageDataset]:
    """The official (train, test) sets from ``cifar-10-python.tar.gz``.

    Class names come from ``batches.meta`` when it has ``label_names``, else ``classes``.
    """
    tar, read = _member_reader(archive)
    with tar:
        meta = _text_keys(safe_unpickle(read(META), f"{archive.name}:{META}"), f"{archive.name}:{META}")
        names = _label_names(meta.get("label_names", classes), f"{archive.name}:{META}")
        parts = {b: _batch(read(b), f"{archive.name}:{b}", len(names)) for b in (*TRAIN_BATCHES, TEST_BATCH)}

    def dataset(batches: Sequence[str]) -> ImageDataset:
        images = np.concatenate([parts[b][0] for b in batches])
        labels = np.concatenate([parts[b][1] for b in batches])
        return ImageDataset(name, names, torch.from_numpy(images), torch.from_numpy(labels))

    return dataset(TRAIN_BATCHES), dataset([TEST_BATCH])
