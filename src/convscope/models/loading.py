"""``load_model(spec)``: one entry point for every kind of model a user may have.

========================================  ==========================================
spec                                      what loads
========================================  ==========================================
``default``                               the Tiny VGG shipped inside the package
``tiny-vgg`` / ``mnist-cnn`` / ...        an untrained zoo net
``efficientnet-lite0``                    ImageNet-pretrained, from local disk
``run/best.pt``                           a convscope checkpoint (tensors + JSON)
``model.ts`` (TorchScript archive)        ``torch.jit.load`` (``trust=True`` only)
``model.json`` or its http(s) URL          a Keras model in TensorFlow.js layers format
``model.h5`` / ``model.keras``              a Keras model saved by Keras (HDF5 / zip, read with h5py)
``pkg.module:factory`` or ``f.py:factory``  the user's own architecture; ``weights=``
                                          names its state_dict file (``@file`` in a spec)
========================================  ==========================================

Opening a file never runs code from it unless ``trust=True``: tensors go through
``torch.load(..., weights_only=True)``, and a checkpoint's architecture is rebuilt
without trust only when it names a zoo net (from the fixed :data:`zoo.ZOO`, with its
arguments bounded). A factory *named inside a file*, a TorchScript archive (its code
runs on load) and a fully pickled module all need ``trust=True``. A factory spec the
caller passes is the caller's own code and is imported as asked, unless
``spec_from_file`` says the spec itself was read from a file (a run's recorded config).
"""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import sys
import zipfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConvscopeError, NotFound, did_you_mean
from . import zoo
from .checkpoint import is_checkpoint, load_checkpoint, needs_trust, safe_torch_load, wrapped_state_key
from .class_names import check_classes
from .efficientnet import NAME as EFFICIENTNET
from .efficientnet import PREPROCESSING as EFFICIENTNET_PREPROCESSING
from .efficientnet import build_efficientnet_lite0, imagenet_classes
from .model import Model, guess_preprocessing
from .preprocessing import Preprocessing

DEFAULT_CHECKPOINT = "default.pt"


def default_checkpoint_path() -> Path:
    """Where the shipped default model lives inside the installed package."""
    return Path(str(resources.files("convscope") / "assets" / DEFAULT_CHECKPOINT))


def load_model(
    spec: str | Path,
    weights: str | Path | None = None,
    classes: Sequence[str] | None = None,
    trust: bool = False,
    device: str | torch.device = "cpu",
    *,
    spec_from_file: bool = False,
) -> Model:
    """Load a model by name or file and return a :class:`Model` in eval mode.

    ``trust=True`` allows code that a file names or carries to run (see the module
    docstring); ``spec_from_file=True`` marks ``spec`` itself as read from a file, so a
    factory spec needs ``trust`` too. Raises :class:`ConvscopeError` (or
    :class:`NotFound`) with a one-line reason for unknown names, missing or damaged
    files, files that are not models, and code that needs trust.
    """
    spec = str(spec)
    if weights is None and "@" in spec and ":" in spec.split("@", 1)[0]:
        spec, weights = spec.split("@", 1)
    if spec_from_file and not trust and _looks_like_factory(spec):
        raise needs_trust(f"the model {spec!r} was read from a file and names code to import and call")
    model = _load(spec, weights, trust)
    if classes is not None:
        model.classes = check_classes(model, classes, "classes")
    model.net.eval()
    # How to load it again (convscope.scale's workers do, from these words, never from a pickled net).
    # An attribute, not meta: meta is saved with checkpoints, and a file must never carry its own trust.
    model.loaded_from = {
        "spec": spec,
        "weights": None if weights is None else str(weights),
        "classes": None if classes is None else list(classes),
        "trust": bool(trust),
    }
    return model.to(device)


def _load(spec: str, weights: str | Path | None, trust: bool) -> Model:
    if spec == "default":
        path = default_checkpoint_path()
        if not path.is_file():
            raise ConvscopeError(f"the default model is missing from this installation ({path})")
        return model_from_checkpoint(path, name="default")
    if spec in zoo.ZOO:
        entry = zoo.ZOO[spec]
        return Model(
            zoo.build(spec),
            classes=[str(i) for i in range(entry.num_classes)],
            preprocessing=entry.preprocessing(),
            name=spec,
            meta={"untrained": True},
        )
    if spec == EFFICIENTNET:
        return Model(
            build_efficientnet_lite0(), classes=imagenet_classes(), preprocessing=EFFICIENTNET_PREPROCESSING, name=spec
        )
    if spec.startswith(("http://", "https://")):
        from .tfjs_remote import load_tfjs_url

        return load_tfjs_url(spec)
    if _looks_like_factory(spec):
        return model_from_factory(spec, weights)
    path = Path(spec)
    if path.suffix.lower() == ".json":
        from .tfjs import load_tfjs_model

        return load_tfjs_model(path)
    if path.suffix.lower() in (".h5", ".hdf5", ".keras"):
        from .keras_files import load_keras_file

        return load_keras_file(path)
    if path.is_file():
        return model_from_file(path, trust=trust)
    if path.suffix or "/" in spec or "\\" in spec:
        raise ConvscopeError(f"no such model file: {spec}")
    names = ["default", *zoo.ZOO, EFFICIENTNET]
    raise NotFound(f"unknown model {spec!r}: not a file, and the zoo has {', '.join(names)}{did_you_mean(spec, names)}")


def _looks_like_factory(spec: str) -> bool:
    if ":" not in spec or spec.count(":") != 1:
        return False
    module, func = spec.split(":")
    return func.isidentifier() and bool(module) and not Path(spec).exists()


def model_from_checkpoint(path: str | Path, name: str | None = None, trust: bool = False) -> Model:
    """Rebuild the architecture named in a convscope checkpoint and load its tensors.

    A zoo name is rebuilt from the zoo with bounded arguments; a factory named in the
    file is code chosen by whoever wrote the file, so it is imported only with ``trust``.
    """
    ckpt = load_checkpoint(path)
    meta = ckpt["meta"]
    arch = meta.get("architecture") or {}
    if arch.get("zoo"):
        net = zoo.build_from_file(arch["zoo"], arch.get("kwargs") or {}, path)
    elif arch.get("factory"):
        if not trust:
            raise needs_trust(
                f"{path} names its architecture by the factory {arch['factory'][:200]!r}, code that "
                "would be imported and called (only zoo architectures rebuild without trust)"
            )
        kwargs = dict(arch.get("kwargs") or {})
        if isinstance(kwargs.get("input_size"), list):
            kwargs["input_size"] = tuple(kwargs["input_size"])
        made = _call_factory(arch["factory"], kwargs, allow_model=True)  # as training took it: a Model too
        net = made.net if isinstance(made, Model) else made
    else:
        raise ConvscopeError(
            f"{path} does not say which architecture it holds; give it with its weights: "
            f"load_model('file.py:factory@{path}') (CLI: --model file.py:factory@{path})"
        )
    _load_state(net, ckpt["state_dict"], path)
    prep = _preprocessing(meta["preprocessing"], path) if meta.get("preprocessing") else guess_preprocessing(net)
    return Model(
        net,
        classes=meta.get("classes"),
        preprocessing=prep,
        name=name or meta.get("name") or Path(path).stem,
        meta=meta,
    )


def _preprocessing(d: dict[str, Any], path: Any) -> Preprocessing:
    """A checkpoint's preprocessing, with its sizes bounded like the zoo's (images are resized to it)."""
    try:
        prep = Preprocessing.from_dict(d)
    except ConvscopeError as exc:
        raise ConvscopeError(f"{path} has damaged preprocessing metadata: {exc}") from None
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise ConvscopeError(
            f"{path} has damaged preprocessing metadata ({type(exc).__name__}: {str(exc)[:80]})"
        ) from None
    if len(prep.size) != 2 or not all(1 <= s <= zoo.MAX_SIDE for s in prep.size):
        raise ConvscopeError(
            f"{path}: preprocessing size must be two numbers from 1 to {zoo.MAX_SIDE}, not {list(prep.size)[:4]}"
        )
    if not all(len(v) in (1, prep.channels) for v in (prep.mean, prep.std)) or 0.0 in prep.std:
        raise ConvscopeError(f"{path}: preprocessing needs 1 or {prep.channels} means and non-zero stds")
    return prep


def model_from_file(path: Path, trust: bool = False) -> Model:
    """A convscope checkpoint, or (trusted only) a TorchScript archive or a pickled module."""
    if _is_torchscript(path):
        if not trust:
            raise needs_trust(f"{path} is a TorchScript archive, whose code runs when it is loaded")
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:  # TorchScript raises many types for damaged archives
            raise ConvscopeError(f"{path} is a damaged TorchScript archive: {str(exc).splitlines()[0][:200]}") from None
        return Model(net, name=path.stem, meta={"format": "torchscript", "guessed": True})
    if trust:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, AttributeError, ModuleNotFoundError) as exc:
            raise ConvscopeError(f"{path} could not be unpickled: {str(exc).splitlines()[0][:200]}") from None
        if isinstance(obj, nn.Module):
            return Model(obj, name=path.stem, meta={"format": "pickled-module", "guessed": True})
    return model_from_checkpoint(path, trust=trust)


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n.split("/", 1)[-1].startswith("code/") for n in zf.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def model_from_factory(spec: str, weights: str | Path | None) -> Model:
    """The user's own architecture: ``pkg.module:factory`` or ``path/file.py:factory``. The factory
    returns an ``nn.Module`` (its preprocessing is then guessed: ``meta['guessed']``) or a
    :class:`Model` with its own classes and preprocessing."""
    made = _call_factory(spec, {}, allow_model=True)
    net = made.net if isinstance(made, Model) else made
    if weights is not None:
        _load_state(net, _weights_in(safe_torch_load(weights), net, weights), weights)
    if isinstance(made, Model):
        made.meta.setdefault("architecture", {"factory": spec})
        return made
    return Model(net, name=spec.split(":")[-1], meta={"architecture": {"factory": spec}, "guessed": True})


def _call_factory(spec: str, kwargs: dict[str, Any], allow_model: bool = False) -> nn.Module | Model:
    if ":" not in spec:
        raise ConvscopeError(f"a factory is named 'package.module:function' or 'file.py:function', not {spec[:200]!r}")
    module_name, func_name = spec.rsplit(":", 1)
    try:
        if module_name.endswith(".py"):
            file = Path(module_name)
            if not file.is_file():
                raise ConvscopeError(f"no such Python file: {file}")
            mod_spec = importlib.util.spec_from_file_location(file.stem, file)
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules.setdefault(file.stem, module)
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotFound(f"cannot import {module_name!r} for model {spec!r}: {exc}") from None
    factory = getattr(module, func_name, None)
    if factory is None:
        raise NotFound(f"{module_name!r} has no {func_name!r}")
    net = factory(**kwargs)
    if allow_model and isinstance(net, Model):
        return net
    if not isinstance(net, nn.Module):
        what = "a torch.nn.Module or convscope.Model" if allow_model else "a torch.nn.Module"
        raise ConvscopeError(f"{spec} returned a {type(net).__name__}, not {what}")
    return net


def _weights_in(obj: Any, net: nn.Module, source: Any) -> dict[str, Any]:
    """The state_dict in a weights file: a bare one, a convscope checkpoint's, or the one inside
    another tool's training checkpoint (:data:`checkpoint.WRAPPED_STATE_KEYS`), with one common
    key prefix dropped when that is what makes its names the net's own: Lightning saves
    ``model.conv.weight`` for the net it holds as ``self.model``, DataParallel ``module.conv.weight``."""
    key = "state_dict" if is_checkpoint(obj) else wrapped_state_key(obj)
    state = obj[key] if key else obj
    if not isinstance(state, dict):
        raise ConvscopeError(f"{source} does not hold a state_dict")
    own = set(net.state_dict())
    if set(state) != own and state and all("." in k for k in state):
        heads = {k.split(".", 1)[0] for k in state}
        stripped = {k.split(".", 1)[1]: v for k, v in state.items()}
        if len(heads) == 1 and set(stripped) == own:
            return stripped
    return state


def _load_state(net: nn.Module, state: dict[str, Any], source: Any) -> None:
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).split("\n\t")
        raise ConvscopeError(f"{source} does not fit this architecture: {' '.join(first[:2])[:300]}") from None
