"""Keras models in Keras' own files, ``.h5`` and ``.keras``, read with h5py alone (no TensorFlow).

* ``.h5`` / ``.hdf5`` (Keras 2's HDF5 format, also written by Keras 3 for ``model.save('m.h5')``):
  the root attributes ``model_config`` (the model's JSON config), ``keras_version`` and
  ``backend``; a group ``model_weights`` with one group per layer, named after it, whose
  attribute ``weight_names`` (split into ``weight_names0``, ``weight_names1`` ... when it
  is long) lists the datasets inside that group (``conv2d/kernel:0``) in the order the
  layer holds its weights.
* ``.keras`` (Keras 3): a zip of ``config.json`` (the serialised model), ``metadata.json``
  (``keras_version``) and ``model.weights.h5``, where each layer's variables are the
  datasets ``0``, ``1`` ... of ``layers/<class in snake case>[_k]/vars``: Keras addresses
  layers by class, not name, ``k`` counting the earlier layers of that class
  (``conv2d``, ``conv2d_1``, ``batch_normalization`` ...); Keras 2.13 wrote
  ``_layer_checkpoint_dependencies/`` where Keras 3 writes ``layers/``.

Both go through :mod:`.keras_layers`, the TF.js loader's translation, so a model saved as
TF.js and as ``.h5`` gives the same net. Arrays are matched to layers by position, as
Keras itself loads them.

A file is untrusted input. Nothing in it is unpickled or run: configs are JSON, weights
are HDF5 datasets of floats (Keras' ``.npz`` weight store, which unpickles, is refused).
Before anything is allocated the zip members' declared sizes and each dataset's shape
are checked against :data:`~.tfjs_weights.MAX_JSON_BYTES` / :data:`~.tfjs_weights.MAX_WEIGHT_BYTES`;
HDF5 soft and external links, datasets stored in external files, virtual datasets and
filters other than deflate / shuffle / fletcher32 (which could load a plugin) are
refused, so a file can neither read other files nor run code. Anything malformed is a
one-line :class:`ConvscopeError`.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConvscopeError
from .keras_layers import as_model, build_keras_net, model_layers, named_weights
from .model import Model
from .tfjs_weights import MAX_JSON_BYTES, MAX_WEIGHT_BYTES, parse_json, read_class_names, short

__all__ = ["H5_SUFFIXES", "KERAS_SUFFIXES", "load_keras_file"]

H5_SUFFIXES = (".h5", ".hdf5")
KERAS_SUFFIXES = (".keras",)
#: Largest ``model.weights.h5`` read from a ``.keras`` zip: the float32 weight budget plus HDF5's own overhead.
MAX_WEIGHTS_MEMBER = MAX_WEIGHT_BYTES + (64 << 20)
_VAR_PREFIXES = ("layers", "_layer_checkpoint_dependencies")  # Keras 3, Keras 2.13
_MAX_NAME_CHUNKS = 10_000
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError)


def load_keras_file(path: str | Path, classes: Sequence[str] | None = None) -> Model:
    """Load a Keras model saved as ``.h5`` / ``.hdf5`` or ``.keras`` (see the module docstring).

    Class names come from ``classes``, or a ``classes.json`` / ``labels.txt`` beside the
    file (as for TF.js models). Raises :class:`ConvscopeError` for anything convscope
    cannot read or translate, naming the layer and its Keras class where there is one.
    """
    path = Path(path)
    if not path.is_file():
        raise ConvscopeError(f"no such model file: {path}")
    h5py = _h5py()
    if path.suffix.lower() in KERAS_SUFFIXES:
        config, metadata, data = _read_keras_zip(path)
        with _h5_file(h5py, io.BytesIO(data), f"{path}:model.weights.h5") as (f, source):
            weights = _keras_v3_weights(h5py, f, config, source)
        meta = {"format": "keras", "keras_version": _text_field(metadata, "keras_version")}
    else:
        with _h5_file(h5py, path, path) as (f, source):
            config = _model_config(f, source)
            weights = _h5_weights(h5py, f, config, source)
            meta = {
                "format": "keras-h5",
                "keras_version": _attr_text(f, "keras_version", source, MAX_JSON_BYTES),
                "backend": _attr_text(f, "backend", source, MAX_JSON_BYTES),
            }
    built = build_keras_net(config, weights, source=path)
    names = list(classes) if classes is not None else read_class_names(path.parent)
    return as_model(built, source=path, name=path.stem, classes=names, meta={**meta, "source": str(path)})


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ConvscopeError(
            "reading Keras .h5 / .keras files needs h5py: pip install h5py (or pip install 'convscope[keras]')"
        ) from None
    return h5py


@contextmanager
def _h5_file(h5py, file: Any, source: Any) -> Iterator[tuple[Any, Any]]:
    """An HDF5 file opened read-only; h5py's errors on a damaged file become one line."""
    try:
        with h5py.File(file, "r") as f:
            yield f, source
    except ConvscopeError:
        raise
    except _H5_ERRORS as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ConvscopeError(f"{source} is not a readable HDF5 file ({type(exc).__name__}: {first})") from None


# --------------------------------------------------------------------------------------
# .h5
# --------------------------------------------------------------------------------------
def _model_config(f, source: Any) -> dict[str, Any]:
    text = _attr_text(f, "model_config", source, MAX_JSON_BYTES)
    if text is None:
        what = "weights only (model.save_weights)" if "layer_names" in f.attrs else "no Keras model"
        raise ConvscopeError(
            f"{source} holds {what}: it has no 'model_config' attribute, and convscope needs the "
            "architecture too (save the whole model: model.save('model.h5'))"
        )
    config = parse_json(text, f"{source}'s model_config")
    if not isinstance(config, dict):
        raise ConvscopeError(f"{source}: model_config is a JSON {type(config).__name__}, not an object")
    return config


def _h5_weights(h5py, f, config: dict[str, Any], source: Any) -> dict[str, np.ndarray]:
    root = _child(h5py, f, "model_weights", source, h5py.Group)
    if root is None:
        raise ConvscopeError(f"{source} has a model_config but no 'model_weights' group")
    budget = _Budget(source)

    def arrays(index: int, name: str, kind: str) -> list[np.ndarray] | None:
        group = _child(h5py, root, name, source, h5py.Group)
        if group is None:
            return None
        return [_read(h5py, group, w, source, budget) for w in _attr_names(group, "weight_names", source)]

    return named_weights(model_layers(config, source), arrays, source)


def _attr_text(obj, name: str, source: Any, limit: int) -> str | None:
    """A string attribute (stored as bytes or str), at most ``limit`` characters; None when absent."""
    if name not in obj.attrs:
        return None
    value = obj.attrs[name]
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ConvscopeError(f"{source}: attribute {name!r} is not UTF-8 text") from None
    if not isinstance(value, str):
        raise ConvscopeError(f"{source}: attribute {name!r} is a {type(value).__name__}, not text")
    if len(value) > limit:
        raise ConvscopeError(
            f"{source}: attribute {name!r} has {len(value)} characters, more than the {limit} convscope reads"
        )
    return value


def _attr_names(group, name: str, source: Any) -> list[str]:
    """A list-of-names attribute, joined from its chunks ``name0``, ``name1`` ... when Keras split it."""
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks = []
        while f"{name}{len(chunks)}" in group.attrs and len(chunks) < _MAX_NAME_CHUNKS:
            chunks.append(group.attrs[f"{name}{len(chunks)}"])
    names = []
    for chunk in chunks:
        items = chunk.tolist() if isinstance(chunk, np.ndarray) else chunk
        items = [items] if isinstance(items, (str, bytes)) else items
        if not isinstance(items, list):
            raise ConvscopeError(f"{source}: attribute {name!r} of {group.name!r} is not a list of names")
        for item in items:
            if isinstance(item, bytes):
                item = item.decode("utf-8", errors="replace")
            if not isinstance(item, str) or not item:
                raise ConvscopeError(f"{source}: attribute {name!r} of {group.name!r} holds {short(item)}, not a name")
            names.append(item)
    return names


# --------------------------------------------------------------------------------------
# .keras
# --------------------------------------------------------------------------------------
def _read_keras_zip(path: Path) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """config.json, metadata.json and model.weights.h5 of a ``.keras`` zip, sizes checked first."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = {m.filename: m for m in zf.infolist()}
            if "model.weights.h5" not in members:
                other = (
                    "its weights are in model.weights.npz, a NumPy store Keras unpickles; refused"
                    if "model.weights.npz" in members
                    else "it has no model.weights.h5"
                )
                raise ConvscopeError(f"{path} is not a .keras model convscope reads: {other}")
            config = parse_json(_member(zf, members, "config.json", MAX_JSON_BYTES, path), f"{path}:config.json")
            metadata = parse_json(
                _member(zf, members, "metadata.json", MAX_JSON_BYTES, path) or b"{}", f"{path}:metadata.json"
            )
            weights = _member(zf, members, "model.weights.h5", MAX_WEIGHTS_MEMBER, path)
    except ConvscopeError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ConvscopeError(f"{path} is not a .keras archive (a zip file): {str(exc)[:160]}") from None
    except Exception as exc:  # zipfile raises ValueError, struct.error, zlib.error, EOFError ... on forged zips
        raise ConvscopeError(f"{path} is a damaged .keras archive ({type(exc).__name__}: {str(exc)[:160]})") from None
    if not isinstance(config, dict):
        raise ConvscopeError(f"{path}: config.json is a JSON {type(config).__name__}, not an object")
    return config, metadata if isinstance(metadata, dict) else {}, weights


def _member(zf: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str, limit: int, path: Path) -> bytes:
    """A zip member's bytes, refused by its declared size before it is inflated (and
    read at most ``limit`` + 1 bytes, in case the header lies)."""
    info = members.get(name)
    if info is None:
        if name == "metadata.json":
            return b""
        raise ConvscopeError(f"{path} is not a .keras model: it has no {name}")
    if info.file_size > limit:
        raise ConvscopeError(f"{path}: {name} declares {info.file_size} bytes, more than the {limit} convscope reads")
    with zf.open(info) as member:
        data = member.read(limit + 1)
    if len(data) > limit:
        raise ConvscopeError(f"{path}: {name} holds more than the {limit} bytes convscope reads")
    return data


def _keras_v3_weights(h5py, f, config: dict[str, Any], source: Any) -> dict[str, np.ndarray]:
    budget = _Budget(source)
    seen: Counter[str] = Counter()

    def arrays(index: int, name: str, kind: str) -> list[np.ndarray] | None:
        key = _snake_case(kind)
        count, seen[key] = seen[key], seen[key] + 1
        key = f"{key}_{count}" if count else key
        for prefix in _VAR_PREFIXES:
            group = _child(h5py, f, f"{prefix}/{key}/vars", source, h5py.Group)
            if group is not None:
                return [_read(h5py, group, str(i), source, budget) for i in range(_var_count(group, source))]
        return None

    return named_weights(model_layers(config, source), arrays, source)


def _var_count(group, source: Any) -> int:
    """How many variables a ``vars`` group holds: its members must be ``0`` .. ``n - 1``."""
    keys = list(group.keys())
    if sorted(keys) != sorted(str(i) for i in range(len(keys))):
        raise ConvscopeError(f"{source}: {group.name} holds {short(keys)}; expected datasets named 0 .. n-1")
    return len(keys)


def _snake_case(name: str) -> str:
    """Keras' ``to_snake_case``: ``Conv2D`` -> ``conv2d``, ``BatchNormalization`` -> ``batch_normalization``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _text_field(d: dict[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value[:100] if isinstance(value, str) else None


# --------------------------------------------------------------------------------------
# datasets, read safely
# --------------------------------------------------------------------------------------
class _Budget:
    """The float32 bytes read so far, against :data:`MAX_WEIGHT_BYTES` (checked before each read)."""

    def __init__(self, source: Any) -> None:
        self.source, self.used = source, 0

    def take(self, count: int, what: str) -> None:
        self.used += count * 4
        if self.used > MAX_WEIGHT_BYTES:
            raise ConvscopeError(
                f"{self.source}: the weights up to {what} are more than the {MAX_WEIGHT_BYTES} "
                "bytes of float32 convscope loads"
            )


def _child(h5py, group, path: str, source: Any, kind: type):
    """The object at ``path`` under ``group`` through hard links only; None when absent."""
    node = group
    for part in path.split("/"):
        if part in ("", "."):
            raise ConvscopeError(f"{source}: the HDF5 path {short(path)} has an empty or '.' part")
        if not isinstance(node, h5py.Group):
            return None
        link = node.get(part, getlink=True)
        if link is None:
            return None
        if not isinstance(link, h5py.HardLink):
            raise ConvscopeError(
                f"{source}: {node.name}/{part} is a {type(link).__name__}; links to other places or files are refused"
            )
        node = node[part]
    if not isinstance(node, kind):
        raise ConvscopeError(f"{source}: {node.name} is a {type(node).__name__}, not a {kind.__name__}")
    return node


def _read(h5py, group, name: str, source: Any, budget: _Budget) -> np.ndarray:
    """One weight dataset as float32, after its storage, type and size are checked."""
    ds = _child(h5py, group, name, source, h5py.Dataset)
    if ds is None:
        raise ConvscopeError(f"{source}: {group.name} names the weight {short(name)}, which it does not hold")
    if ds.external or ds.is_virtual:
        raise ConvscopeError(f"{source}: {ds.name} keeps its data in other files; refused")
    plist = ds.id.get_create_plist()
    allowed = (h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32)
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    if any(f not in allowed for f in filters):
        raise ConvscopeError(
            f"{source}: {ds.name} uses HDF5 filter(s) {filters}; only deflate, shuffle and fletcher32 are read"
        )
    if ds.dtype.kind != "f" or ds.dtype.itemsize not in (2, 4, 8):
        raise ConvscopeError(f"{source}: {ds.name} holds {ds.dtype}, not float16/32/64 weights")
    budget.take(math.prod(int(s) for s in ds.shape), ds.name)
    return np.asarray(ds[()], dtype=np.float32)
