"""Keras models saved in the TensorFlow.js *layers* format, rebuilt as PyTorch.

A TF.js layers model is a ``model.json`` (the Keras topology plus a ``weightsManifest``)
and binary weight shards beside it. :func:`load_tfjs_model` reads both and builds an
``nn.Sequential`` whose child names are the Keras layer names, so CNN Explainer's Tiny
VGG (``conv_1_1``, ``relu_1_1``, ``max_pool_1`` ... ``output``) traces under the names
its own page shows.

The Keras layers become PyTorch modules through :mod:`.keras_layers` (shared with the
``.h5`` / ``.keras`` loader), whose docstring gives the layout decisions: NCHW kernels,
Flatten's (H, W, C) order kept by permuting the next Dense kernel, fused activations as
their own children, a final softmax dropped (``meta['output_activation']``), TensorFlow's
'same' padding. Sequential and functional models both load.

A model.json is untrusted input: every layer option is type- and range-checked (in
:mod:`.keras_layers`) and weights are
read through :mod:`.tfjs_weights`, which bounds their size and keeps shards inside the
folder; anything else is a one-line :class:`ConvscopeError`, never a traceback.

Preprocessing is TF.js / CNN Explainer's: input size and channels from the first
layer's ``batch_input_shape``, ``pixel / 255`` (mean 0, std 255), shorter side resized
then centre-cropped. Class names come from the ``classes`` argument, or a sidecar
``classes.json`` (a JSON list) / ``labels.txt`` (one name a line) beside ``model.json``,
or, for a published model recognised by its weights (:mod:`.known`), its own names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConvscopeError
from .keras_layers import MAX_SIDE, as_model, build_keras_net, build_sequential, model_layers
from .known import known_by_weights
from .model import Model
from .tfjs_weights import read_class_names, read_json, read_tfjs_weights

__all__ = ["MAX_SIDE", "build_sequential", "load_tfjs_model", "read_class_names", "read_tfjs_weights"]


def load_tfjs_model(path: str | Path, classes: Sequence[str] | None = None) -> Model:
    """Load a Keras model saved by the TensorFlow.js converter (``model.json`` + shards).

    Raises :class:`ConvscopeError` naming the problem for a file that is not a TF.js
    layers model, missing or short weight shards, weights that do not fit the layers,
    and layer types or options this loader does not translate.
    """
    path = Path(path)
    spec = read_json(path)
    if not isinstance(spec, dict):
        raise ConvscopeError(f"{path} is not a TF.js layers model (its JSON is a {type(spec).__name__}, not an object)")
    topology = spec.get("modelTopology")
    if not isinstance(topology, dict):
        kind = spec.get("format", "unknown")
        raise ConvscopeError(
            f"{path} is not a TF.js layers model (format {kind!r}, no 'modelTopology'); "
            "graph models from SavedModels are not supported"
        )
    config = topology.get("model_config", topology)
    model_layers(config, path)  # a config that is no model is refused before any shard is read
    weights = read_tfjs_weights(spec, path.parent, source=path)
    built = build_keras_net(config, weights, source=path)
    meta: dict[str, Any] = {"format": "tfjs-layers", "source": str(path), "generated_by": spec.get("generatedBy")}
    names = list(classes) if classes is not None else read_class_names(path.parent)
    known = known_by_weights(weights) if names is None else None
    if known is not None:
        names = list(known.classes)
        meta["known_as"] = known.name
    return as_model(built, source=path, name=path.parent.name or path.stem, classes=names, meta=meta)
