"""The files of a TF.js layers model: ``model.json``, its weight manifest and shards, and
sidecar class names, read with every size checked before anything is allocated.

A model folder is untrusted input (it may come from a URL or a person's upload), so:

* every file it names (shards, ``classes.json``, ``labels.txt``) is resolved through
  symlinks and must stay inside the folder (:func:`~convscope.io_utils.resolve_inside`);
* the manifest is validated first (:func:`weight_groups`): names, shapes and dtypes,
  and the total size of the weights against :data:`MAX_WEIGHT_BYTES`;
* the shards' sizes on disk are compared with what the manifest declares before any
  shard is read, so a 1e12-element weight or a 300 MB shard is refused for free.

Every problem is a one-line :class:`~convscope.errors.ConvscopeError`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConvscopeError
from ..io_utils import resolve_inside

# TF.js dtype -> (NumPy dtype, little-endian)
DTYPES = {
    "float32": "<f4",
    "int32": "<i4",
    "float16": "<f2",
    "uint8": "u1",
    "uint16": "<u2",
    "int8": "i1",
    "int16": "<i2",
    "bool": "u1",
}
QUANTIZED = ("uint8", "uint16", "float16")
#: Largest model convscope loads, counted as float32 weights (VGG-16 is 0.55 GB).
MAX_WEIGHT_BYTES = 2 << 30
#: Largest model.json / classes.json read (CNN Explainer's model.json is 5 KB).
MAX_JSON_BYTES = 16 << 20
MAX_LABELS_BYTES = 1 << 20
CLASS_FILES = ("classes.json", "labels.txt")


@dataclass(frozen=True)
class WeightSpec:
    """One manifest entry, validated: where it sits in its group's bytes and how to decode it."""

    name: str
    shape: tuple[int, ...]
    stored: str  # the dtype of the bytes in the shard
    scale: float = 1.0  # uint8/uint16 quantisation: value = q * scale + min
    minimum: float = 0.0

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * np.dtype(DTYPES[self.stored]).itemsize


@dataclass(frozen=True)
class WeightGroup:
    """A manifest group: shard file names and the weights their concatenation holds."""

    paths: tuple[str, ...]
    weights: tuple[WeightSpec, ...]

    @property
    def nbytes(self) -> int:
        return sum(w.nbytes for w in self.weights)


def read_json(path: Path, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Parse a JSON file of at most ``max_bytes``; damaged, deep or huge files are errors."""
    if not path.is_file():
        raise ConvscopeError(f"no such model file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise ConvscopeError(f"{path} has {size} bytes, more than the {max_bytes} convscope reads")
    try:
        text = path.read_text(encoding="utf-8")
    except ValueError as exc:  # bad UTF-8
        raise ConvscopeError(f"{path} is not valid JSON: {exc}") from None
    return parse_json(text, path)


def parse_json(text: str | bytes, source: Any) -> Any:
    """Parse JSON read from an untrusted file; damaged or deeply nested text is a one-line error."""
    try:
        return json.loads(text)
    except ValueError as exc:  # bad UTF-8, bad JSON, or an integer of thousands of digits
        raise ConvscopeError(f"{source} is not valid JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise ConvscopeError(f"{source} is not a model file: its JSON is nested too deeply") from None


def weight_groups(spec: dict[str, Any], source: Any, max_bytes: int = MAX_WEIGHT_BYTES) -> list[WeightGroup]:
    """The validated ``weightsManifest`` of a model.json (before any shard is touched)."""
    manifest = spec.get("weightsManifest")
    if not isinstance(manifest, list):
        raise ConvscopeError(f"{source} has no 'weightsManifest' list")
    groups = []
    for i, group in enumerate(manifest):
        if not isinstance(group, dict):
            raise ConvscopeError(f"{source}: weightsManifest[{i}] is not an object")
        paths, weights = group.get("paths") or [], group.get("weights") or []
        if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
            raise ConvscopeError(f"{source}: weightsManifest[{i}].paths must be a list of file names")
        if not isinstance(weights, list):
            raise ConvscopeError(f"{source}: weightsManifest[{i}].weights must be a list")
        groups.append(WeightGroup(tuple(paths), tuple(_weight_spec(w, source) for w in weights)))
    decoded = sum(w.count for g in groups for w in g.weights) * 4
    if decoded > max_bytes:
        raise ConvscopeError(
            f"{source} declares {decoded} bytes of float32 weights, more than the {max_bytes} convscope loads"
        )
    return groups


def _weight_spec(w: Any, source: Any) -> WeightSpec:
    if not isinstance(w, dict) or not isinstance(w.get("name"), str):
        raise ConvscopeError(f"{source}: every manifest weight needs a 'name' string, got {short(w)}")
    name = w["name"]
    shape = w.get("shape", [])
    if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
        raise ConvscopeError(f"{source}: weight {name!r} has shape {short(shape)}; expected a list of sizes >= 0")
    quant = w.get("quantization")
    if quant is None:
        stored = w.get("dtype", "float32")
        if not isinstance(stored, str) or stored not in DTYPES:
            raise ConvscopeError(f"{source}: weight {name!r} has dtype {short(stored)}, which is not supported")
        return WeightSpec(name, tuple(shape), stored)
    if not isinstance(quant, dict) or quant.get("dtype") not in QUANTIZED:
        raise ConvscopeError(
            f"{source}: weight {name!r} has quantization {short(quant)}; supported dtypes: {', '.join(QUANTIZED)}"
        )
    if quant["dtype"] == "float16":
        return WeightSpec(name, tuple(shape), "float16")
    scale, minimum = quant.get("scale"), quant.get("min")
    if not (is_finite(scale) and is_finite(minimum)):
        raise ConvscopeError(f"{source}: quantized weight {name!r} needs finite 'scale' and 'min' numbers")
    return WeightSpec(name, tuple(shape), quant["dtype"], float(scale), float(minimum))


def read_tfjs_weights(spec: dict[str, Any], directory: Path, source: Any = "model.json") -> dict[str, np.ndarray]:
    """Decode every weight of the ``weightsManifest`` into float32 arrays, keyed by name.

    Each manifest group is the concatenation of its shard files; inside it the weights
    follow one another in manifest order, little-endian. Quantised weights are restored
    as ``q * scale + min`` (uint8/uint16) or read as float16. The shards' sizes on disk
    must add up to what the manifest declares, checked before any shard is read.
    """
    weights: dict[str, np.ndarray] = {}
    for group in weight_groups(spec, source):
        files = [_shard_file(directory, p, source) for p in group.paths]
        held = sum(f.stat().st_size for f in files)
        if held != group.nbytes:
            raise ConvscopeError(
                f"weight shards {', '.join(group.paths) or '(none)'} hold {held} bytes but the "
                f"manifest describes {group.nbytes}: the shards do not belong to this model.json"
            )
        data = b"".join(f.read_bytes() for f in files)
        offset = 0
        for w in group.weights:
            weights[_clean_name(w.name)] = _decode(w, data, offset)
            offset += w.nbytes
    return weights


def _shard_file(directory: Path, name: str, source: Any) -> Path:
    file = resolve_inside(directory, name, f"{source} names a weight shard")
    if not file.is_file():
        raise ConvscopeError(f"weight shard {directory / name} named in {source} is missing")
    return file


def _decode(w: WeightSpec, data: bytes, offset: int) -> np.ndarray:
    array = np.frombuffer(data, dtype=np.dtype(DTYPES[w.stored]), count=w.count, offset=offset).astype(np.float32)
    if w.stored in ("uint8", "uint16"):  # identity unless quantised
        array = array * np.float32(w.scale) + np.float32(w.minimum)
    return array.reshape(w.shape)


def _clean_name(name: str) -> str:
    """'sequential/conv_1_1/kernel:0' -> 'conv_1_1/kernel' (the last two path parts)."""
    parts = name.split(":")[0].split("/")
    return "/".join(parts[-2:])


def read_class_names(directory: str | Path) -> list[str] | None:
    """Class names from ``classes.json`` (a JSON list) or ``labels.txt`` in ``directory``."""
    directory = Path(directory)
    as_json, as_txt = (directory / name for name in CLASS_FILES)
    if as_json.is_file():
        data = read_json(resolve_inside(directory, as_json.name, "class names file"), MAX_LABELS_BYTES)
        if isinstance(data, dict) and "classes" in data:
            data = data["classes"]
        if not isinstance(data, list) or not all(isinstance(x, (str, int)) for x in data):
            raise ConvscopeError(f"{as_json} must hold a JSON list of class names")
        return [str(x) for x in data]
    if as_txt.is_file():
        file = resolve_inside(directory, as_txt.name, "class names file")
        if file.stat().st_size > MAX_LABELS_BYTES:
            raise ConvscopeError(f"{as_txt} has more than {MAX_LABELS_BYTES} bytes; it is not a list of class names")
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConvscopeError(f"{as_txt} is not UTF-8 text: {exc}") from None
        return [line.strip() for line in text.splitlines() if line.strip()]
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    """A JSON number (not a bool) that is finite as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def short(value: Any, limit: int = 60) -> str:
    """repr() cut to one short line, for values copied from an untrusted file into a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
