"""Keras models saved in the TensorFlow.js *layers* format, rebuilt as PyTorch.

A TF.js layers model is a ``model.json`` (the Keras topology plus a ``weightsManifest``)
and binary weight shards beside it. :func:`load_tfjs_model` reads both and builds an
``nn.Sequential`` whose child names are the Keras layer names, so CNN Explainer's Tiny
VGG (``conv_1_1``, ``relu_1_1``, ``max_pool_1`` ... ``output``) traces under the names
its own page shows.

Layout decisions (each keeps the PyTorch net numerically equal to Keras):

* Tensors are NCHW in PyTorch where Keras is NHWC; kernels are permuted once at load
  time: Conv2D ``[kh, kw, in, out] -> [out, in, kh, kw]``, Dense ``[in, out] -> [out, in]``.
* **Flatten**: Keras flattens (H, W, C), PyTorch's ``nn.Flatten`` flattens (C, H, W). We
  keep a plain ``nn.Flatten`` (so the trace's flatten index <-> (c, h, w) mapping is
  PyTorch's) and **permute the rows of the first Dense kernel** after it instead:
  Keras feature ``(h*W + w)*C + c`` becomes PyTorch feature ``c*H*W + h*W + w``. The
  logits agree to float32 rounding (the dot products are summed in another order).
* **Fused activations** (``Conv2D(activation='relu')``, ``Dense(activation='tanh')``) are
  split into the layer and an activation module named ``<layer>_<activation>``, so the
  trace shows both, as CNN Explainer does.
* **A final softmax** (a Dense/Conv with ``activation='softmax'`` or a trailing
  Activation/Softmax layer) is *dropped*: every convscope model returns logits and
  ``Model.predict`` / the trace apply the softmax themselves (a softmax inside the net
  would be applied twice). ``meta['output_activation']`` records ``'softmax'``.
* ``meta['keras_outputs']`` maps each Keras layer name to the child whose output equals
  that layer's Keras output (after the permutation to NCHW).
* 'same' padding follows TensorFlow (the odd extra pixel goes bottom/right); where it is
  asymmetric a ``<layer>_pad`` module pads explicitly before the conv or pool.

A model.json is untrusted input: every layer option is type- and range-checked (sides,
kernels, strides and padding within :data:`MAX_SIDE`, finite numbers) and weights are
read through :mod:`.tfjs_weights`, which bounds their size and keeps shards inside the
folder; anything else is a one-line :class:`ConvscopeError`, never a traceback.

Preprocessing is TF.js / CNN Explainer's: input size and channels from the first
layer's ``batch_input_shape``, ``pixel / 255`` (mean 0, std 255), shorter side resized
then centre-cropped. Class names come from the ``classes`` argument, or a sidecar
``classes.json`` (a JSON list) / ``labels.txt`` (one name a line) beside ``model.json``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConvscopeError
from .model import Model
from .preprocessing import Preprocessing
from .tfjs_weights import is_finite, read_class_names, read_json, read_tfjs_weights, short

__all__ = ["build_sequential", "load_tfjs_model", "read_class_names", "read_tfjs_weights"]

#: Largest input or feature-map side, and the largest kernel, stride, dilation or padding.
MAX_SIDE = 4096

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "elu": nn.ELU,
    "selu": nn.SELU, "softplus": nn.Softplus, "softsign": nn.Softsign, "swish": nn.SiLU, "silu": nn.SiLU,
    "gelu": nn.GELU, "softmax": lambda: nn.Softmax(dim=1),
}


# --------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------
def load_tfjs_model(path: str | Path, classes: Sequence[str] | None = None) -> Model:
    """Load a Keras Sequential saved by the TensorFlow.js converter (``model.json`` + shards).

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
        raise ConvscopeError(f"{path} is not a TF.js layers model (format {kind!r}, no 'modelTopology'); "
                             "graph models from SavedModels are not supported")
    layer_configs = _sequential_layers(topology, path)
    weights = read_tfjs_weights(spec, path.parent, source=path)
    net, keras_outputs, output_activation, input_shape = build_sequential(layer_configs, weights, source=path)
    h, w, c = input_shape
    if c not in (1, 3):
        raise ConvscopeError(f"{path}: input has {c} channels; convscope shows 1- or 3-channel images only")
    meta: dict[str, Any] = {
        "format": "tfjs-layers",
        "source": str(path),
        "keras_outputs": keras_outputs,
        "output_activation": output_activation,
        "generated_by": spec.get("generatedBy"),
    }
    names = list(classes) if classes is not None else read_class_names(path.parent)
    net.eval()
    return Model(net, classes=names, preprocessing=Preprocessing(size=(h, w), channels=c, mean=(0.0,), std=(255.0,)),
                 name=path.parent.name or path.stem, meta=meta)


# --------------------------------------------------------------------------------------
# topology
# --------------------------------------------------------------------------------------
def _sequential_layers(topology: dict[str, Any], source: Path) -> list[dict[str, Any]]:
    config = topology.get("model_config", topology)
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        kind = config.get("class_name") if isinstance(config, dict) else config
        raise ConvscopeError(f"{source} holds a Keras {short(kind)} model; only Sequential models are supported")
    layers = config.get("config")
    if isinstance(layers, dict):
        layers = layers.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConvscopeError(f"{source}: the Sequential model lists no layers")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str) \
                or not isinstance(layer.get("config", {}), dict):
            raise ConvscopeError(f"{source}: layer {i} must be an object with a 'class_name' string and a "
                                 f"'config' object, got {short(layer)}")
    return layers


@dataclass
class _State:
    """What the builder knows between layers: the Keras shape of one sample and more."""

    shape: tuple[int, ...]  # Keras layout: (H, W, C) or (F,)
    source: Any
    weights: dict[str, np.ndarray]
    flattened_from: tuple[int, int, int] | None = None  # (H, W, C) before the last Flatten
    modules: "OrderedDict[str, nn.Module]" = field(default_factory=OrderedDict)

    def add(self, name: str, module: nn.Module) -> str:
        if name in self.modules:
            raise ConvscopeError(f"{self.source}: two layers are named {name!r}")
        self.modules[name] = module
        return name

    def weight(self, layer: str, key: str, ndim: int) -> np.ndarray:
        """The weight ``layer/key``, which must have ``ndim`` dimensions, none of them empty."""
        try:
            w = self.weights[f"{layer}/{key}"]
        except KeyError:
            raise ConvscopeError(f"{self.source}: the weight shards have no {layer}/{key}") from None
        if w.ndim != ndim or 0 in w.shape:
            raise ConvscopeError(f"{self.source}: {layer}/{key} has shape {list(w.shape)}; expected {ndim} "
                                 "non-empty dimensions")
        return w

    def number(self, config: dict[str, Any], layer: str, key: str, default: float, low: float = -math.inf,
               high: float = math.inf) -> float:
        """A finite float option of a layer config, within [low, high]."""
        value = config.get(key, default)
        if value is None:
            value = default
        if not is_finite(value) or not low <= value <= high:
            raise ConvscopeError(f"{self.source}: layer {layer!r} has {key}={short(value)}; expected a number "
                                 f"in [{low:g}, {high:g}]")
        return float(value)

    def pair(self, config: dict[str, Any], layer: str, key: str, default: Any, low: int = 1) -> tuple[int, int]:
        """An (h, w) option given as one int or a list of one or two, each in [low, MAX_SIDE]."""
        value = config.get(key)
        value = default if value is None else value
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not 1 <= len(items) <= 2 or not all(_whole(v) and low <= v <= MAX_SIDE for v in items):
            raise ConvscopeError(f"{self.source}: layer {layer!r} has {key}={short(value)}; expected one or two "
                                 f"integers in [{low}, {MAX_SIDE}]")
        return int(items[0]), int(items[-1])

    def integer(self, config: dict[str, Any], layer: str, key: str, default: int, low: int = 1) -> int:
        """One integer option in [low, MAX_SIDE]."""
        if isinstance(config.get(key), (list, tuple)):
            raise ConvscopeError(f"{self.source}: layer {layer!r} has {key}={short(config[key])}; expected one integer")
        return self.pair(config, layer, key, default, low)[0]

    def spatial(self, layer: str, kind: str) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise ConvscopeError(f"{self.source}: {kind} layer {layer!r} needs an (H, W, C) input, "
                                 f"got shape {self.shape}")
        return self.shape  # type: ignore[return-value]


def build_sequential(layers: list[dict[str, Any]], weights: dict[str, np.ndarray], source: Any = "model.json"
                     ) -> tuple[nn.Sequential, dict[str, str], str | None, tuple[int, int, int]]:
    """Translate Keras layer configs into ``nn.Sequential`` (see the module docstring).

    Returns the net, ``{keras name: child name}``, the dropped output activation
    (``'softmax'`` or None), and the Keras input shape (H, W, C).
    """
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str) \
                or not isinstance(layer.get("config", {}), dict):
            raise ConvscopeError(f"{source}: layer {i} must be an object with a 'class_name' string and a "
                                 f"'config' object, got {short(layer)}")
    input_shape = _input_shape(layers[0].get("config", {}), source)
    state = _State(shape=input_shape, source=source, weights=weights)
    keras_outputs: dict[str, str] = {}
    last_index = len(layers) - 1
    output_activation = None
    for i, layer in enumerate(layers):
        kind = layer["class_name"]
        config = layer.get("config", {})
        name = _layer_name(config, f"{kind}_{i}".lower(), source)
        if config.get("data_format", "channels_last") != "channels_last":
            raise ConvscopeError(f"{source}: layer {name!r} uses {short(config['data_format'])}; only "
                                 "channels_last is supported")
        builder = _BUILDERS.get(kind)
        if builder is None:
            raise ConvscopeError(f"{source}: layer {name!r} is a Keras {short(kind)}, which convscope cannot "
                                 f"translate (supported: {', '.join(sorted(_BUILDERS))})")
        final_softmax = i == last_index and _activation_name(kind, config) == "softmax"
        out = builder(name, config, state, final_softmax)
        if final_softmax:
            output_activation = "softmax"
        if out is not None:
            keras_outputs[name] = out
        elif state.modules:  # a layer with no module (InputLayer, dropped softmax)
            keras_outputs[name] = next(reversed(state.modules))
    if not state.modules:
        raise ConvscopeError(f"{source}: the model has no layers convscope can run")
    return nn.Sequential(state.modules), keras_outputs, output_activation, input_shape  # type: ignore[return-value]


def _input_shape(first: dict[str, Any], source: Any) -> tuple[int, int, int]:
    """(H, W, C) from the first layer's ``batch_input_shape``, each side within MAX_SIDE."""
    batch_shape = first.get("batch_input_shape") or first.get("batch_shape")
    if not isinstance(batch_shape, list) or len(batch_shape) != 4 \
            or not all(_whole(v) and 1 <= v <= MAX_SIDE for v in batch_shape[1:]):
        raise ConvscopeError(f"{source}: the first layer must give an image batch_input_shape [None, H, W, C] "
                             f"with sizes in 1..{MAX_SIDE}, got {short(batch_shape)}")
    h, w, c = (int(v) for v in batch_shape[1:])
    return h, w, c


def _layer_name(config: dict[str, Any], default: str, source: Any) -> str:
    """The Keras layer name, which becomes a PyTorch child name (so: a string without dots)."""
    name = config.get("name") or default
    if not isinstance(name, str) or "." in name or len(name) > 200:
        raise ConvscopeError(f"{source}: layer name {short(name)} is not a usable name (a string without dots)")
    return name


def _whole(value: Any) -> bool:
    """An integer from JSON (``3`` or ``3.0``), not a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


def _activation_name(kind: str | None, config: dict[str, Any]) -> str | None:
    if kind == "Softmax":
        return "softmax"
    act = config.get("activation")
    if isinstance(act, dict):  # Keras 3 may serialise activations as objects
        inner = act.get("config")
        act = (inner.get("name") if isinstance(inner, dict) else None) or act.get("class_name") or act
    return str(act).lower() if act else None


def _fused_activation(name: str, config: dict[str, Any], state: _State, last: str, drop_softmax: bool) -> str:
    """Append the activation fused into a Conv2D / Dense as its own module."""
    act = _activation_name(None, config)
    if act in (None, "linear") or (act == "softmax" and drop_softmax):
        return last
    return state.add(f"{name}_{act}", _activation_module(act, name, state.source))


def _activation_module(act: str, layer: str, source: Any) -> nn.Module:
    factory = _ACTIVATIONS.get(act)
    if factory is None:
        raise ConvscopeError(f"{source}: layer {layer!r} uses activation {short(act)}, which convscope cannot "
                             f"translate (supported: linear, {', '.join(sorted(_ACTIVATIONS))})")
    return factory()


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same': output ceil(size / stride), odd extra pixel after (bottom/right)."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _out_size(size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    return (size + pad - (kernel - 1) * dilation - 1) // stride + 1


def _padding(name: str, config: dict[str, Any], state: _State, kernel, stride, dilation
             ) -> tuple[tuple[int, int], tuple[int, int, int, int] | None, tuple[int, int]]:
    """(symmetric padding, explicit (left, right, top, bottom) or None, output (H, W))."""
    h, w, _ = state.shape
    mode = str(config.get("padding", "valid")).lower()
    if mode == "valid":
        pads = ((0, 0), (0, 0))
    elif mode == "same":
        pads = (_same_padding(h, kernel[0], stride[0], dilation[0]), _same_padding(w, kernel[1], stride[1], dilation[1]))
    else:
        raise ConvscopeError(f"{state.source}: layer {name!r} has padding {short(mode)}; only 'valid' and 'same' "
                             "are supported")
    (top, bottom), (left, right) = pads
    out = (_out_size(h, kernel[0], stride[0], dilation[0], top + bottom),
           _out_size(w, kernel[1], stride[1], dilation[1], left + right))
    if out[0] < 1 or out[1] < 1:
        raise ConvscopeError(f"{state.source}: layer {name!r} gets a {h}x{w} input, smaller than its window")
    if top == bottom and left == right:
        return (top, left), None, out
    return (0, 0), (left, right, top, bottom), out


# --------------------------------------------------------------------------------------
# one builder per Keras layer class: (name, config, state, final_softmax) -> output child
# --------------------------------------------------------------------------------------
def _input_layer(name, config, state, final_softmax):
    return None


def _conv2d(name, config, state, final_softmax):
    _, _, channels = state.spatial(name, "Conv2D")
    kernel = state.weight(name, "kernel", 4)  # [kh, kw, in / groups, out]
    kh, kw, per_group, filters = kernel.shape
    groups = state.integer(config, name, "groups", 1)
    if per_group * groups != channels or filters % groups:
        raise ConvscopeError(f"{state.source}: {name}/kernel of shape {list(kernel.shape)} does not fit {groups} "
                             f"group(s) of the {channels} input channels")
    stride, dilation = state.pair(config, name, "strides", 1), state.pair(config, name, "dilation_rate", 1)
    padding, explicit, out = _padding(name, config, state, (kh, kw), stride, dilation)
    if explicit:
        state.add(f"{name}_pad", nn.ZeroPad2d(explicit))
    use_bias = config.get("use_bias", True)
    conv = nn.Conv2d(channels, filters, (kh, kw), stride=stride, padding=padding, dilation=dilation,
                     groups=groups, bias=use_bias)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        if use_bias:
            conv.bias.copy_(torch.from_numpy(_vector(state, name, "bias", filters)))
    state.add(name, conv)
    state.shape = (*out, filters)
    return _fused_activation(name, config, state, name, final_softmax)


def _depthwise_conv2d(name, config, state, final_softmax):
    _, _, channels = state.spatial(name, "DepthwiseConv2D")
    kernel = state.weight(name, "depthwise_kernel", 4)  # [kh, kw, in, multiplier]
    kh, kw, cin, mult = kernel.shape
    if cin != channels:
        raise ConvscopeError(f"{state.source}: {name}/depthwise_kernel expects {cin} channels, the layer gets {channels}")
    stride, dilation = state.pair(config, name, "strides", 1), state.pair(config, name, "dilation_rate", 1)
    padding, explicit, out = _padding(name, config, state, (kh, kw), stride, dilation)
    if explicit:
        state.add(f"{name}_pad", nn.ZeroPad2d(explicit))
    use_bias = config.get("use_bias", True)
    conv = nn.Conv2d(cin, cin * mult, (kh, kw), stride=stride, padding=padding, dilation=dilation,
                     groups=cin, bias=use_bias)
    with torch.no_grad():  # Keras output channel c * mult + m == PyTorch group c, filter m
        conv.weight.copy_(torch.from_numpy(kernel.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None].copy()))
        if use_bias:
            conv.bias.copy_(torch.from_numpy(_vector(state, name, "bias", cin * mult)))
    state.add(name, conv)
    state.shape = (*out, cin * mult)
    return _fused_activation(name, config, state, name, final_softmax)


def _pooling(average: bool):
    def build(name, config, state, final_softmax):
        _, _, channels = state.spatial(name, "pooling")
        size = state.pair(config, name, "pool_size", 2)
        stride = state.pair(config, name, "strides", size)
        padding, explicit, out = _padding(name, config, state, size, stride, (1, 1))
        if explicit:
            if average:
                raise ConvscopeError(f"{state.source}: {name!r} is an AveragePooling2D with asymmetric 'same' "
                                     "padding, which PyTorch's pooling cannot express")
            state.add(f"{name}_pad", nn.ConstantPad2d(explicit, float("-inf")))
        if average:  # TF averages over the valid pixels only
            pool = nn.AvgPool2d(size, stride, padding=padding, count_include_pad=False)
        else:
            pool = nn.MaxPool2d(size, stride, padding=padding)
        state.add(name, pool)
        state.shape = (*out, channels)
        return name
    return build


def _global_pooling(average: bool):
    def build(name, config, state, final_softmax):
        _, _, channels = state.spatial(name, "global pooling")
        if config.get("keepdims"):
            raise ConvscopeError(f"{state.source}: {name!r} uses keepdims=True, which is not supported")
        pool = nn.AdaptiveAvgPool2d(1) if average else nn.AdaptiveMaxPool2d(1)
        state.add(name, nn.Sequential(OrderedDict(pool=pool, flatten=nn.Flatten())))
        state.shape = (channels,)
        state.flattened_from = None  # (1, 1, C) flattens the same way in both layouts
        return name
    return build


def _flatten(name, config, state, final_softmax):
    if len(state.shape) == 3:
        state.flattened_from = state.shape  # type: ignore[assignment]
    state.add(name, nn.Flatten())
    state.shape = (int(np.prod(state.shape)),)
    return name


def _dense(name, config, state, final_softmax):
    if len(state.shape) != 1:
        raise ConvscopeError(f"{state.source}: Dense layer {name!r} gets shape {state.shape}; only flat inputs "
                             "(after Flatten) are supported")
    kernel = state.weight(name, "kernel", 2)  # [in, out]
    features, units = kernel.shape
    if features != state.shape[0]:
        raise ConvscopeError(f"{state.source}: {name}/kernel expects {features} inputs, the layer gets {state.shape[0]}")
    if state.flattened_from is not None:  # Keras rows are (h, w, c); PyTorch's Flatten gives (c, h, w)
        h, w, c = state.flattened_from
        kernel = kernel.reshape(h, w, c, units).transpose(2, 0, 1, 3).reshape(features, units)
        state.flattened_from = None
    use_bias = config.get("use_bias", True)
    linear = nn.Linear(features, units, bias=use_bias)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
        if use_bias:
            linear.bias.copy_(torch.from_numpy(_vector(state, name, "bias", units)))
    state.add(name, linear)
    state.shape = (units,)
    return _fused_activation(name, config, state, name, final_softmax)


def _activation(name, config, state, final_softmax):
    if final_softmax:
        return None
    act = _activation_name("Activation", config)
    module = nn.Identity() if act in (None, "linear") else _activation_module(act, name, state.source)
    return state.add(name, module)


def _relu_layer(name, config, state, final_softmax):
    max_value = None if config.get("max_value") is None else state.number(config, name, "max_value", 6.0, low=0.0)
    slope = state.number(config, name, "negative_slope", 0.0)
    if state.number(config, name, "threshold", 0.0) != 0.0:
        raise ConvscopeError(f"{state.source}: ReLU layer {name!r} has a threshold, which is not supported")
    if max_value is None:
        module = nn.LeakyReLU(slope) if slope else nn.ReLU()
    elif slope:
        raise ConvscopeError(f"{state.source}: ReLU layer {name!r} with both max_value and negative_slope is not supported")
    elif max_value == 0.0:
        raise ConvscopeError(f"{state.source}: ReLU layer {name!r} has max_value 0, so its output is always 0")
    else:
        module = nn.ReLU6() if max_value == 6.0 else nn.Hardtanh(0.0, max_value)
    return state.add(name, module)


def _leaky_relu(name, config, state, final_softmax):
    key = "negative_slope" if "negative_slope" in config else "alpha"
    return state.add(name, nn.LeakyReLU(state.number(config, name, key, 0.3)))


def _softmax_layer(name, config, state, final_softmax):
    if final_softmax:
        return None
    if config.get("axis", -1) not in (-1, len(state.shape)):
        raise ConvscopeError(f"{state.source}: Softmax layer {name!r} is not over the channel axis")
    return state.add(name, nn.Softmax(dim=1))


def _dropout(name, config, state, final_softmax):
    return state.add(name, nn.Dropout(state.number(config, name, "rate", 0.5, low=0.0, high=1.0)))


def _batch_norm(name, config, state, final_softmax):
    axis = config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, len(state.shape)):
        raise ConvscopeError(f"{state.source}: BatchNormalization {name!r} normalises axis {axis}, not channels")
    if len(state.shape) == 1 and state.flattened_from is not None:
        raise ConvscopeError(f"{state.source}: BatchNormalization {name!r} right after Flatten is not supported "
                             "(its features are in Keras' (H, W, C) order)")
    channels = state.shape[-1]
    eps = state.number(config, name, "epsilon", 1e-3, low=0.0)
    bn = (nn.BatchNorm2d if len(state.shape) == 3 else nn.BatchNorm1d)(channels, eps=eps)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(_vector(state, name, "moving_mean", channels)))
        bn.running_var.copy_(torch.from_numpy(_vector(state, name, "moving_variance", channels)))
        bn.weight.copy_(torch.from_numpy(_vector(state, name, "gamma", channels)) if config.get("scale", True)
                        else torch.ones(channels))
        bn.bias.copy_(torch.from_numpy(_vector(state, name, "beta", channels)) if config.get("center", True)
                      else torch.zeros(channels))
    return state.add(name, bn)


def _zero_padding(name, config, state, final_softmax):
    h, w, c = state.spatial(name, "ZeroPadding2D")
    pad = config.get("padding", 1)
    if isinstance(pad, (list, tuple)) and len(pad) == 2 and all(isinstance(p, (list, tuple)) for p in pad):
        (top, bottom), (left, right) = (state.pair({"padding": p}, name, "padding", 0, low=0) for p in pad)
    else:
        (top, left) = state.pair(config, name, "padding", 1, low=0)
        bottom, right = top, left
    if max(h + top + bottom, w + left + right) > MAX_SIDE:
        raise ConvscopeError(f"{state.source}: ZeroPadding2D {name!r} makes the image larger than {MAX_SIDE} pixels")
    state.add(name, nn.ZeroPad2d((left, right, top, bottom)))
    state.shape = (h + top + bottom, w + left + right, c)
    return name


def _vector(state: _State, layer: str, key: str, length: int) -> np.ndarray:
    v = state.weight(layer, key, 1)
    if v.shape != (length,):
        raise ConvscopeError(f"{state.source}: {layer}/{key} has shape {list(v.shape)}, expected [{length}]")
    return np.ascontiguousarray(v, dtype=np.float32)


_BUILDERS: dict[str, Callable[..., str | None]] = {
    "InputLayer": _input_layer,
    "Conv2D": _conv2d,
    "DepthwiseConv2D": _depthwise_conv2d,
    "MaxPooling2D": _pooling(average=False),
    "AveragePooling2D": _pooling(average=True),
    "GlobalAveragePooling2D": _global_pooling(average=True),
    "GlobalMaxPooling2D": _global_pooling(average=False),
    "Flatten": _flatten,
    "Dense": _dense,
    "Dropout": _dropout,
    "Activation": _activation,
    "ReLU": _relu_layer,
    "LeakyReLU": _leaky_relu,
    "Softmax": _softmax_layer,
    "BatchNormalization": _batch_norm,
    "ZeroPadding2D": _zero_padding,
}
