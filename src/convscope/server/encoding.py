"""Compact binary transport for activation maps.

Layout (little endian)::

    uint32  header length N (bytes, a multiple of 8 once the 4 length bytes are counted)
    N bytes UTF-8 JSON header: {"dtype": "float16"|"float32", "shape": [...], ...}, space padded
    data    the array in C order

The data starts at an 8-byte aligned offset so the page can view it as a typed array
without copying. float16 halves the bytes for the overview; detail views ask for float32.
Maps much larger than the overview draws them travel as block means (:func:`shrink_maps`).
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import numpy as np
import torch

DTYPES = {"float16": np.float16, "float32": np.float32}


def encode_array(array: np.ndarray, dtype: str = "float16", **meta: Any) -> bytes:
    """Pack ``array`` with a JSON header (shape, dtype and any extra ``meta``)."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}")
    data = np.ascontiguousarray(array, dtype=DTYPES[dtype])
    header = json.dumps({"dtype": dtype, "shape": list(data.shape), **meta}).encode()
    header += b" " * ((-(len(header) + 4)) % 8)
    return struct.pack("<I", len(header)) + header + data.tobytes()


def decode_array(blob: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """Inverse of :func:`encode_array` (used by tests and Python clients)."""
    (n,) = struct.unpack_from("<I", blob)
    header = json.loads(blob[4 : 4 + n].decode())
    data = np.frombuffer(blob, dtype=DTYPES[header["dtype"]], offset=4 + n)
    return header, data.reshape(header["shape"])


def shrink_maps(page: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """Channels (C, H, W) for drawing in about ``size`` pixels: block means of ``step x step``
    values (the last blocks of a side not divisible by step average the values they hold),
    ``step = round(max(H, W) / size)``; maps that need no step of 2 or more come back as they are.

    A 112x112 map drawn in 60 pixels takes a quarter of the bytes and of the painting as a
    56x56 map; its exact values stay with the full page (the page asks for it on hover)."""
    step = round(max(page.shape[1:]) / max(1, size)) if page.ndim == 3 and page.size else 1
    if step < 2:
        return page, 1
    pooled = torch.nn.functional.avg_pool2d(
        torch.from_numpy(np.ascontiguousarray(page))[None], step, step, ceil_mode=True
    )
    return pooled[0].numpy(), step


def encode_many(blobs: list[bytes]) -> bytes:
    """Several :func:`encode_array` blobs in one response, each starting 8-byte aligned.

    Layout: ``uint32 count, uint32 0``, then per blob ``uint32 length, uint32 0``, the
    blob, and zero padding to a multiple of 8.
    """
    parts = [struct.pack("<II", len(blobs), 0)]
    for b in blobs:
        parts.append(struct.pack("<II", len(b), 0))
        parts.append(b)
        parts.append(b"\0" * ((-len(b)) % 8))
    return b"".join(parts)


def decode_many(data: bytes) -> list[tuple[dict[str, Any], np.ndarray]]:
    """Inverse of :func:`encode_many`."""
    (n, _), off, out = struct.unpack_from("<II", data), 8, []
    for _ in range(n):
        (length, _) = struct.unpack_from("<II", data, off)
        off += 8
        out.append(decode_array(data[off : off + length]))
        off += length + (-length) % 8
    return out


def pack_map(a: Any) -> dict[str, Any]:
    """A 2-D map (or a vector, as a column) for JSON: {shape, data: base64 little-endian float32, min, max}."""
    if isinstance(a, torch.Tensor):
        a = a.detach().float().cpu().numpy()
    arr = np.ascontiguousarray(a, dtype="<f4")
    if arr.ndim == 1:
        arr = arr[:, None]
    return {
        "shape": list(arr.shape),
        "data": base64.b64encode(arr.tobytes()).decode(),
        "min": float(arr.min()) if arr.size else 0.0,
        "max": float(arr.max()) if arr.size else 0.0,
    }
