"""Writers for small dataset files in the genuine formats, independent of convscope's readers.

IDX files are packed with ``struct`` (magic ``0x00000803`` / ``0x00000801``) and
gzipped; CIFAR batches are dicts pickled the way the original Python 2 ``cPickle``
wrote them (protocol 2, ``str`` as ``BINSTRING``, NumPy arrays via
``numpy.core.multiarray._reconstruct``) inside ``cifar-10-batches-py/`` of a tar.gz.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile

import numpy as np

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """Gzipped IDX file of a uint8 array: magic 0x0000 08 <ndim>, big-endian sizes, data."""
    assert array.dtype == np.uint8
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.tobytes(), mtime=0)


class Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2's cPickle did at protocol 2: every str/bytes is a
    BINSTRING / SHORT_BINSTRING and NumPy globals live in ``numpy.core``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None) -> None:
        module = getattr(obj, "__module__", "")
        if module.startswith("numpy._core."):
            module = "numpy.core." + module[len("numpy._core.") :]
            self.write(pickle.GLOBAL + f"{module}\n{obj.__name__}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_pickle(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def cifar_batch(rng: np.random.Generator, n: int, label: str) -> dict:
    return {
        "batch_label": label,
        "labels": [int(v) for v in rng.integers(0, 10, n)],
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"img_{label[-1]}_{i}.png" for i in range(n)],
    }


def cifar_archive(members: dict[str, bytes]) -> bytes:
    """tar.gz with every member under ``cifar-10-batches-py/``, like the official one."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cifar_members(batches: dict[str, dict]) -> dict[str, bytes]:
    meta = {
        "num_cases_per_batch": len(batches["data_batch_1"]["labels"]),
        "label_names": CIFAR_CLASSES,
        "num_vis": 3072,
    }
    return {"batches.meta": py2_pickle(meta), **{name: py2_pickle(b) for name, b in batches.items()}}
