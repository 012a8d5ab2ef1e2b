"""Keras layers as PyTorch modules: the one translation every Keras loader shares.

A Keras model config (``Sequential``, or a functional ``Functional``/``Model`` with
``inbound_nodes``) and its weight arrays become an ``nn.Module`` whose children are
named after the Keras layers, so a trace shows the names the Keras model shows. The
TF.js loader (:mod:`.tfjs`) and the ``.h5`` / ``.keras`` loader (:mod:`.keras_files`)
differ only in how they find the config and the arrays; everything below is common.

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
* ``keras_outputs`` maps each Keras layer name to the child whose output equals that
  layer's Keras output (after the permutation to NCHW).
* 'same' padding follows TensorFlow (the odd extra pixel goes bottom/right); where it is
  asymmetric a ``<layer>_pad`` module pads explicitly before the conv or pool.
* **SeparableConv2D** is one child ``<layer>`` holding ``depthwise`` and ``pointwise``
  convolutions; **functional** models are a :class:`KerasFunctional` that runs the
  layer graph in topological order, Add / Multiply / Concatenate as merge children.

A config is untrusted input: every layer option is type- and range-checked (sides,
kernels, strides and padding within :data:`MAX_SIDE`, finite numbers), the graph is
checked (one input, one output, no shared layers, no cycles), and anything else is a
one-line :class:`ConvscopeError` naming the layer and its class, never a traceback.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConvscopeError
from .model import Model
from .preprocessing import Preprocessing
from .tfjs_weights import is_finite, short

__all__ = [
    "KerasFunctional",
    "KerasNet",
    "MAX_SIDE",
    "as_model",
    "build_keras_net",
    "build_sequential",
    "model_layers",
    "named_weights",
]

#: Largest input or feature-map side, and the largest kernel, stride, dilation or padding.
MAX_SIDE = 4096

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "softplus": nn.Softplus,
    "softsign": nn.Softsign,
    "swish": nn.SiLU,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
    "softmax": lambda: nn.Softmax(dim=1),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "hard_silu": nn.Hardswish,
    "hard_swish": nn.Hardswish,
}
FUNCTIONAL = ("Functional", "Model")

#: The weights of each Keras layer class in the order Keras stores them (trainable
#: variables first, in creation order), before the options that drop some are applied.
WEIGHT_ORDER: dict[str, tuple[str, ...]] = {
    "Conv2D": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "DepthwiseConv2D": ("depthwise_kernel", "bias"),
    "SeparableConv2D": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}
_OPTIONAL = {"bias": "use_bias", "gamma": "scale", "beta": "center"}  # weight -> the option that drops it


@dataclass
class KerasNet:
    """A translated Keras model and what the loaders report about it."""

    net: nn.Module
    keras_outputs: dict[str, str]
    output_activation: str | None
    input_shape: tuple[int, int, int]  # Keras (H, W, C)


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------
def build_keras_net(config: Any, weights: dict[str, np.ndarray], source: Any) -> KerasNet:
    """Translate a Keras model config (Sequential or functional) and its ``layer/weight`` arrays."""
    layers = model_layers(config, source)
    if config["class_name"] == "Sequential":
        net, outputs, activation, shape = build_sequential(layers, weights, source)
        return KerasNet(net, outputs, activation, shape)
    return _build_functional(config.get("config"), layers, weights, source)


def as_model(built: KerasNet, *, source: Any, name: str, classes: Sequence[str] | None, meta: dict[str, Any]) -> Model:
    """The convscope :class:`Model` of a Keras net: TF.js / CNN Explainer preprocessing
    (``pixel / 255``, input size and channels from the Keras input), eval mode."""
    h, w, c = built.input_shape
    if c not in (1, 3):
        raise ConvscopeError(f"{source}: input has {c} channels; convscope shows 1- or 3-channel images only")
    meta = {**meta, "keras_outputs": built.keras_outputs, "output_activation": built.output_activation}
    built.net.eval()
    return Model(
        built.net,
        classes=list(classes) if classes is not None else None,
        preprocessing=Preprocessing(size=(h, w), channels=c, mean=(0.0,), std=(255.0,)),
        name=name,
        meta=meta,
    )


def model_layers(config: Any, source: Any) -> list[dict[str, Any]]:
    """The validated layer list of a Sequential or functional model config."""
    kind = config.get("class_name") if isinstance(config, dict) else config
    if kind != "Sequential" and kind not in FUNCTIONAL:
        raise ConvscopeError(
            f"{source} holds a Keras {short(kind)} model; only Sequential and functional "
            "(Functional / Model) models are supported"
        )
    layers = config.get("config")
    if isinstance(layers, dict):
        layers = layers.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ConvscopeError(f"{source}: the {kind} model lists no layers")
    for i, layer in enumerate(layers):
        if (
            not isinstance(layer, dict)
            or not isinstance(layer.get("class_name"), str)
            or not isinstance(layer.get("config", {}), dict)
        ):
            raise ConvscopeError(
                f"{source}: layer {i} must be an object with a 'class_name' string and a "
                f"'config' object, got {short(layer)}"
            )
    return layers


def layer_name(layer: dict[str, Any], index: int, source: Any) -> str:
    """The Keras layer name, which becomes a PyTorch child name (so: a string without dots)."""
    config = layer.get("config", {})
    name = config.get("name") or layer.get("name") or f"{layer['class_name']}_{index}".lower()
    if not isinstance(name, str) or "." in name or len(name) > 200 or name in _RESERVED:
        raise ConvscopeError(
            f"{source}: layer name {short(name)} is not a usable name (a string without dots "
            "that is not an attribute of torch.nn.Module)"
        )
    return name


def named_weights(
    layers: list[dict[str, Any]], arrays: Callable[[int, str, str], list[np.ndarray] | None], source: Any
) -> dict[str, np.ndarray]:
    """``{'layer/weight': array}`` from weight files that store each layer's arrays in order.

    ``arrays(index, name, class_name)`` gives layer ``index``'s arrays as stored (None:
    the file has no entry for it). Keras files name their arrays unreliably (``kernel:0``,
    ``sequential/conv2d/kernel``, ``vars/0``); Keras itself loads them by position, so do we.
    """
    named: dict[str, np.ndarray] = {}
    for i, layer in enumerate(layers):
        kind, name = layer["class_name"], layer_name(layer, i, source)
        if kind not in _BUILDERS and kind not in _MERGES:
            continue  # the builder names the unknown class
        expected = weight_order(kind, layer.get("config", {}))
        found = arrays(i, name, kind)
        found = [] if found is None and not expected else found
        if found is None or len(found) != len(expected):
            held = "no weights" if found is None else f"{len(found)} weight(s)"
            raise ConvscopeError(
                f"{source}: layer {name!r} ({kind}) has {held} in the file; expected "
                f"{len(expected)} ({', '.join(expected) or 'none'})"
            )
        named.update((f"{name}/{key}", array) for key, array in zip(expected, found))
    return named


def weight_order(kind: str, config: dict[str, Any]) -> tuple[str, ...]:
    """The weights a Keras layer of class ``kind`` stores, in order (``use_bias=False`` has no bias ...)."""
    return tuple(w for w in WEIGHT_ORDER.get(kind, ()) if config.get(_OPTIONAL.get(w, ""), True) is not False)


# --------------------------------------------------------------------------------------
# the builder's state
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tensor:
    """What is known about one Keras tensor: its per-sample shape and its Flatten origin."""

    shape: tuple[int, ...]  # Keras layout: (H, W, C) or (F,)
    flattened_from: tuple[int, int, int] | None = None  # (H, W, C) before a Flatten, until a Dense


@dataclass
class _State:
    """What the builder knows between layers: the current tensor, the modules made so far."""

    shape: tuple[int, ...]  # Keras layout: (H, W, C) or (F,)
    source: Any
    weights: dict[str, np.ndarray]
    flattened_from: tuple[int, int, int] | None = None  # (H, W, C) before the last Flatten
    modules: OrderedDict[str, nn.Module] = field(default_factory=OrderedDict)

    @property
    def tensor(self) -> _Tensor:
        return _Tensor(self.shape, self.flattened_from)

    @tensor.setter
    def tensor(self, value: _Tensor) -> None:
        self.shape, self.flattened_from = value.shape, value.flattened_from

    def add(self, name: str, module: nn.Module) -> str:
        if name in self.modules or name in _RESERVED:
            raise ConvscopeError(
                f"{self.source}: two layers are named {name!r}"
                if name in self.modules
                else f"{self.source}: layer name {name!r} is an attribute of torch.nn.Module"
            )
        self.modules[name] = module
        return name

    def weight(self, layer: str, key: str, ndim: int) -> np.ndarray:
        """The weight ``layer/key``, which must have ``ndim`` dimensions, none of them empty."""
        try:
            w = self.weights[f"{layer}/{key}"]
        except KeyError:
            raise ConvscopeError(f"{self.source}: the weights have no {layer}/{key}") from None
        if w.ndim != ndim or 0 in w.shape:
            raise ConvscopeError(
                f"{self.source}: {layer}/{key} has shape {list(w.shape)}; expected {ndim} non-empty dimensions"
            )
        return w

    def number(
        self,
        config: dict[str, Any],
        layer: str,
        key: str,
        default: float,
        low: float = -math.inf,
        high: float = math.inf,
    ) -> float:
        """A finite float option of a layer config, within [low, high]."""
        value = config.get(key, default)
        if value is None:
            value = default
        if not is_finite(value) or not low <= value <= high:
            raise ConvscopeError(
                f"{self.source}: layer {layer!r} has {key}={short(value)}; expected a number in [{low:g}, {high:g}]"
            )
        return float(value)

    def pair(self, config: dict[str, Any], layer: str, key: str, default: Any, low: int = 1) -> tuple[int, int]:
        """An (h, w) option given as one int or a list of one or two, each in [low, MAX_SIDE]."""
        value = config.get(key)
        value = default if value is None else value
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        if not 1 <= len(items) <= 2 or not all(_whole(v) and low <= v <= MAX_SIDE for v in items):
            raise ConvscopeError(
                f"{self.source}: layer {layer!r} has {key}={short(value)}; expected one or two "
                f"integers in [{low}, {MAX_SIDE}]"
            )
        return int(items[0]), int(items[-1])

    def integer(self, config: dict[str, Any], layer: str, key: str, default: int, low: int = 1) -> int:
        """One integer option in [low, MAX_SIDE]."""
        if isinstance(config.get(key), (list, tuple)):
            raise ConvscopeError(f"{self.source}: layer {layer!r} has {key}={short(config[key])}; expected one integer")
        return self.pair(config, layer, key, default, low)[0]

    def spatial(self, layer: str, kind: str) -> tuple[int, int, int]:
        if len(self.shape) != 3:
            raise ConvscopeError(
                f"{self.source}: {kind} layer {layer!r} needs an (H, W, C) input, got shape {self.shape}"
            )
        return self.shape  # type: ignore[return-value]


# --------------------------------------------------------------------------------------
# Sequential
# --------------------------------------------------------------------------------------
def build_sequential(
    layers: list[dict[str, Any]], weights: dict[str, np.ndarray], source: Any = "model.json"
) -> tuple[nn.Sequential, dict[str, str], str | None, tuple[int, int, int]]:
    """Translate a Sequential model's layer configs into ``nn.Sequential`` (see the module docstring).

    Returns the net, ``{keras name: child name}``, the dropped output activation
    (``'softmax'`` or None), and the Keras input shape (H, W, C).
    """
    layers = model_layers({"class_name": "Sequential", "config": layers}, source)
    input_shape = _input_shape(layers[0].get("config", {}), source)
    state = _State(shape=input_shape, source=source, weights=weights)
    keras_outputs: dict[str, str] = {}
    output_activation = None
    for i, layer in enumerate(layers):
        name = layer_name(layer, i, source)
        final_softmax = (
            i == len(layers) - 1 and _activation_name(layer["class_name"], layer.get("config", {})) == "softmax"
        )
        out = _build_layer(layer, name, state, final_softmax)
        if final_softmax:
            output_activation = "softmax"
        if out is not None:
            keras_outputs[name] = out
        elif state.modules:  # a layer with no module (InputLayer, dropped softmax)
            keras_outputs[name] = next(reversed(state.modules))
    if not state.modules:
        raise ConvscopeError(f"{source}: the model has no layers convscope can run")
    return nn.Sequential(state.modules), keras_outputs, output_activation, input_shape  # type: ignore[return-value]


def _build_layer(layer: dict[str, Any], name: str, state: _State, final_softmax: bool) -> str | None:
    """Append the modules of one single-input Keras layer; returns its output child (or None)."""
    kind, config = layer["class_name"], layer.get("config", {})
    if (config.get("data_format") or "channels_last") != "channels_last":
        raise ConvscopeError(
            f"{state.source}: layer {name!r} ({kind}) uses {short(config['data_format'])}; only "
            "channels_last is supported"
        )
    if kind in _MERGES:
        raise ConvscopeError(
            f"{state.source}: layer {name!r} is a Keras {kind}, a merge layer, which needs a "
            "functional model with inbound_nodes"
        )
    builder = _BUILDERS.get(kind)
    if builder is None:
        raise ConvscopeError(
            f"{state.source}: layer {name!r} is a Keras {short(kind)}, which convscope cannot "
            f"translate (supported: {', '.join(sorted([*_BUILDERS, *_MERGES]))})"
        )
    return builder(name, config, state, final_softmax)


def _input_shape(first: dict[str, Any], source: Any) -> tuple[int, int, int]:
    """(H, W, C) from the first layer's ``batch_input_shape``, each side within MAX_SIDE."""
    batch_shape = first.get("batch_input_shape") or first.get("batch_shape")
    if (
        not isinstance(batch_shape, list)
        or len(batch_shape) != 4
        or not all(_whole(v) and 1 <= v <= MAX_SIDE for v in batch_shape[1:])
    ):
        raise ConvscopeError(
            f"{source}: the first layer must give an image batch_input_shape [None, H, W, C] "
            f"with sizes in 1..{MAX_SIDE}, got {short(batch_shape)}"
        )
    h, w, c = (int(v) for v in batch_shape[1:])
    return h, w, c


# --------------------------------------------------------------------------------------
# functional models
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One Keras layer call of a functional model: its inputs, the children it runs, its output."""

    output: str  # the Keras layer name (each layer is called once)
    inputs: tuple[str, ...]
    modules: tuple[str, ...]  # children applied in turn (a merge step: one child, given the list)
    merge: bool = False


class KerasFunctional(nn.Module):
    """A Keras functional model: its layers' modules as children (named after the layers),
    run in the model's topological order. The plan is a fixed list, so torch.fx traces the
    forward into the same graph of named module calls that hooks see."""

    def __init__(
        self, modules: OrderedDict[str, nn.Module], steps: Sequence[Step], input_name: str, output_name: str
    ) -> None:
        super().__init__()
        self.keras_steps = tuple(steps)
        self.keras_input, self.keras_output = input_name, output_name
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.keras_input: x}
        for step in self.keras_steps:
            inputs = [values[k] for k in step.inputs]
            if step.merge:
                y = self._modules[step.modules[0]](inputs)
            else:
                y = inputs[0]
                for name in step.modules:
                    y = self._modules[name](y)
            values[step.output] = y
        return values[self.keras_output]


class Merge(nn.Module):
    """Keras Add / Multiply / Concatenate of a list of tensors (NCHW or flat). Its one op is
    the layer, so the trace records it under the Keras layer's name (``trace_as_layer``)."""

    trace_as_layer = True

    def __init__(self, op: str, dim: int = 1) -> None:
        super().__init__()
        self.op, self.dim = op, dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        if self.op == "concat":
            return torch.cat(xs, self.dim)
        out = xs[0]
        for x in xs[1:]:
            out = torch.add(out, x) if self.op == "add" else torch.mul(out, x)
        return out

    def extra_repr(self) -> str:
        return f"{self.op}" + (f", dim={self.dim}" if self.op == "concat" else "")


def _build_functional(
    config: dict[str, Any], layers: list[dict[str, Any]], weights: dict[str, np.ndarray], source: Any
) -> KerasNet:
    by_name: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
    for i, layer in enumerate(layers):
        name = layer_name(layer, i, source)
        if name in by_name:
            raise ConvscopeError(f"{source}: two layers are named {name!r}")
        by_name[name] = (layer, _inbound(layer, name, source))
    (input_name,) = _ends(config, "input_layers", by_name, source)
    (output_name,) = _ends(config, "output_layers", by_name, source)
    order = _topological(output_name, by_name, source)
    if order[0] != input_name or by_name[input_name][0]["class_name"] != "InputLayer":
        raise ConvscopeError(
            f"{source}: the functional model's graph must start at its InputLayer {input_name!r}, not at {order[0]!r}"
        )
    consumers = {n: sum(n in by_name[m][1] for m in order) for n in order}
    input_shape = _input_shape(by_name[input_name][0].get("config", {}), source)
    state = _State(shape=input_shape, source=source, weights=weights)
    tensors = {input_name: state.tensor}
    keras_outputs: dict[str, str] = {}
    steps: list[Step] = []
    output_activation = None
    for name in order[1:]:
        layer, inbound = by_name[name]
        if not inbound:
            raise ConvscopeError(
                f"{source}: layer {name!r} ({layer['class_name']}) has no inbound_nodes; only "
                "the InputLayer may start the graph"
            )
        before = len(state.modules)
        if layer["class_name"] in _MERGES:
            tensors[name] = _merge(name, layer, [tensors[n] for n in inbound], state)
            merge = True
        else:
            if len(inbound) != 1:
                raise ConvscopeError(
                    f"{source}: layer {name!r} ({layer['class_name']}) gets {len(inbound)} "
                    "inputs; only merge layers take more than one"
                )
            state.tensor = tensors[inbound[0]]
            final = (
                name == output_name
                and consumers[name] == 0
                and _activation_name(layer["class_name"], layer.get("config", {})) == "softmax"
            )
            _build_layer(layer, name, state, final)
            output_activation = "softmax" if final else output_activation
            tensors[name], merge = state.tensor, False
        made = tuple(list(state.modules)[before:])
        steps.append(Step(name, inbound, made, merge))
        source_output = keras_outputs.get(inbound[0])
        if made or source_output:
            keras_outputs[name] = made[-1] if made else source_output  # type: ignore[assignment]
    if not state.modules:
        raise ConvscopeError(f"{source}: the model has no layers convscope can run")
    net = KerasFunctional(state.modules, steps, input_name, output_name)
    return KerasNet(net, keras_outputs, output_activation, input_shape)


def _tensor_refs(node: Any, source: Any, layer: str) -> Iterator[Any]:
    """The inbound tensor references of one node, in either Keras dialect.

    Keras 2 (and TF.js): ``[[layer, node_index, tensor_index, kwargs], ...]``. Keras 3:
    ``{"args": [...], "kwargs": {...}}`` holding ``__keras_tensor__`` objects whose
    ``keras_history`` is ``[layer, node_index, tensor_index]``, nested in lists.
    """
    if isinstance(node, list):
        yield from node
        return
    if not isinstance(node, dict):
        raise ConvscopeError(f"{source}: layer {layer!r} has an inbound node {short(node)}, not a list or object")
    stack = [node.get("args")]
    while stack:  # iterative: the JSON may nest deeply
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
            inner = item.get("config")
            yield inner.get("keras_history") if isinstance(inner, dict) else None


def _inbound(layer: dict[str, Any], name: str, source: Any) -> tuple[str, ...]:
    """The names of the layers whose outputs ``layer`` is called on (one call only)."""
    nodes = layer.get("inbound_nodes", [])
    if not isinstance(nodes, list) or len(nodes) > 1:
        what = f"{len(nodes)} inbound nodes (a shared layer)" if isinstance(nodes, list) else short(nodes)
        raise ConvscopeError(
            f"{source}: layer {name!r} ({layer['class_name']}) has {what}; each layer must be called exactly once"
        )
    if not nodes:
        return ()
    refs = []
    for ref in _tensor_refs(nodes[0], source, name):
        if not isinstance(ref, list) or len(ref) < 3 or not isinstance(ref[0], str) or ref[1:3] != [0, 0]:
            raise ConvscopeError(
                f"{source}: layer {name!r} ({layer['class_name']}) has the input {short(ref)}; "
                "expected [layer name, 0, 0] (shared layers and multi-output layers are not "
                "supported)"
            )
        refs.append(ref[0])
    if not refs:
        raise ConvscopeError(f"{source}: layer {name!r} ({layer['class_name']}) has an inbound node with no inputs")
    return tuple(refs)


def _ends(config: Any, key: str, layers: dict[str, Any], source: Any) -> tuple[str]:
    """The one input (or output) layer of a functional model: ``[[name, 0, 0]]`` or ``[name, 0, 0]``."""
    ends = config.get(key) if isinstance(config, dict) else None
    if isinstance(ends, list) and len(ends) == 3 and isinstance(ends[0], str):
        ends = [ends]
    if (
        not isinstance(ends, list)
        or len(ends) != 1
        or not isinstance(ends[0], list)
        or len(ends[0]) != 3
        or ends[0][1:] != [0, 0]
        or ends[0][0] not in layers
    ):
        raise ConvscopeError(
            f"{source}: the functional model's {key} is {short(ends)}; expected one "
            "[layer name, 0, 0] naming one of its layers (one input, one output)"
        )
    return (ends[0][0],)


def _topological(output: str, layers: dict[str, tuple[dict, tuple[str, ...]]], source: Any) -> list[str]:
    """The layers the output depends on, each after its inputs (depth-first, iterative)."""
    order: list[str] = []
    done: set[str] = set()
    active: set[str] = set()
    stack: list[tuple[str, bool]] = [(output, False)]
    while stack:
        name, expanded = stack.pop()
        if expanded:
            active.discard(name)
            done.add(name)
            order.append(name)
            continue
        if name in done:
            continue
        if name in active:
            raise ConvscopeError(f"{source}: the functional model's graph has a cycle through layer {name!r}")
        if name not in layers:
            raise ConvscopeError(
                f"{source}: a layer's inbound_nodes name {short(name)}, which is not a layer of the model"
            )
        active.add(name)
        stack.append((name, True))
        stack.extend((n, False) for n in reversed(layers[name][1]) if n not in done)
    return order


def _merge(name: str, layer: dict[str, Any], inputs: list[_Tensor], state: _State) -> _Tensor:
    """Add the merge child of an Add / Multiply / Concatenate layer; returns its output tensor."""
    kind, config = layer["class_name"], layer.get("config", {})
    first = inputs[0]
    if len(inputs) < 2:
        raise ConvscopeError(f"{state.source}: {kind} layer {name!r} needs two or more inputs, got {len(inputs)}")
    if kind == "Concatenate":
        if any(t.flattened_from is not None for t in inputs):
            raise ConvscopeError(
                f"{state.source}: Concatenate {name!r} joins Flatten outputs, whose features are in "
                "Keras' (H, W, C) order; this is not supported"
            )
        rank = len(first.shape)
        axis = config.get("axis", -1)
        if not _whole(axis) or not -rank <= axis <= rank or axis == 0 or any(len(t.shape) != rank for t in inputs):
            raise ConvscopeError(
                f"{state.source}: Concatenate {name!r} has axis={short(axis)} over inputs of "
                f"shapes {[t.shape for t in inputs]}"
            )
        axis = int(axis) % (rank + 1) - 1  # the sample axis in Keras' layout: 0 .. rank - 1
        if any(t.shape[:axis] + t.shape[axis + 1 :] != first.shape[:axis] + first.shape[axis + 1 :] for t in inputs):
            raise ConvscopeError(
                f"{state.source}: Concatenate {name!r} gets shapes {[t.shape for t in inputs]}, "
                f"which differ outside axis {axis + 1}"
            )
        shape = list(first.shape)
        shape[axis] = sum(t.shape[axis] for t in inputs)
        state.add(name, Merge("concat", 1 if rank == 1 else {0: 2, 1: 3, 2: 1}[axis]))  # (H, W, C) -> NCHW
        return _Tensor(tuple(shape))
    if any(t != first for t in inputs):
        raise ConvscopeError(
            f"{state.source}: {kind} layer {name!r} gets inputs of different shapes or layouts "
            f"{[t.shape for t in inputs]}"
        )
    state.add(name, Merge("add" if kind == "Add" else "mul"))
    return first


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
        raise ConvscopeError(
            f"{source}: layer {layer!r} uses activation {short(act)}, which convscope cannot "
            f"translate (supported: linear, {', '.join(sorted(_ACTIVATIONS))})"
        )
    return factory()


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'same': output ceil(size / stride), odd extra pixel after (bottom/right)."""
    effective = (kernel - 1) * dilation + 1
    total = max((math.ceil(size / stride) - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _out_size(size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    return (size + pad - (kernel - 1) * dilation - 1) // stride + 1


def _padding(
    name: str, config: dict[str, Any], state: _State, kernel, stride, dilation
) -> tuple[tuple[int, int], tuple[int, int, int, int] | None, tuple[int, int]]:
    """(symmetric padding, explicit (left, right, top, bottom) or None, output (H, W))."""
    h, w, _ = state.shape
    mode = str(config.get("padding", "valid")).lower()
    if mode == "valid":
        pads = ((0, 0), (0, 0))
    elif mode == "same":
        pads = (
            _same_padding(h, kernel[0], stride[0], dilation[0]),
            _same_padding(w, kernel[1], stride[1], dilation[1]),
        )
    else:
        raise ConvscopeError(
            f"{state.source}: layer {name!r} has padding {short(mode)}; only 'valid' and 'same' are supported"
        )
    (top, bottom), (left, right) = pads
    out = (
        _out_size(h, kernel[0], stride[0], dilation[0], top + bottom),
        _out_size(w, kernel[1], stride[1], dilation[1], left + right),
    )
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
        raise ConvscopeError(
            f"{state.source}: {name}/kernel of shape {list(kernel.shape)} does not fit {groups} "
            f"group(s) of the {channels} input channels"
        )
    stride, dilation = state.pair(config, name, "strides", 1), state.pair(config, name, "dilation_rate", 1)
    padding, explicit, out = _padding(name, config, state, (kh, kw), stride, dilation)
    if explicit:
        state.add(f"{name}_pad", nn.ZeroPad2d(explicit))
    use_bias = config.get("use_bias", True)
    conv = nn.Conv2d(
        channels, filters, (kh, kw), stride=stride, padding=padding, dilation=dilation, groups=groups, bias=use_bias
    )
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        if use_bias:
            conv.bias.copy_(torch.from_numpy(_vector(state, name, "bias", filters)))
    state.add(name, conv)
    state.shape = (*out, filters)
    return _fused_activation(name, config, state, name, final_softmax)


def _depthwise_conv2d(name, config, state, final_softmax):
    conv, out = _depthwise(name, config, state, "depthwise_kernel", config.get("use_bias", True))
    state.add(name, conv)
    state.shape = out
    return _fused_activation(name, config, state, name, final_softmax)


def _separable_conv2d(name, config, state, final_softmax):
    depthwise, (h, w, channels) = _depthwise(name, config, state, "depthwise_kernel", False)
    kernel = state.weight(name, "pointwise_kernel", 4)  # [1, 1, in * multiplier, filters]
    if kernel.shape[:3] != (1, 1, channels):
        raise ConvscopeError(
            f"{state.source}: {name}/pointwise_kernel has shape {list(kernel.shape)}; expected "
            f"[1, 1, {channels}, filters]"
        )
    filters, use_bias = kernel.shape[3], config.get("use_bias", True)
    pointwise = nn.Conv2d(channels, filters, 1, bias=use_bias)
    with torch.no_grad():
        pointwise.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        if use_bias:
            pointwise.bias.copy_(torch.from_numpy(_vector(state, name, "bias", filters)))
    state.add(name, nn.Sequential(OrderedDict(depthwise=depthwise, pointwise=pointwise)))
    state.shape = (h, w, filters)
    return _fused_activation(name, config, state, name, final_softmax)


def _depthwise(name, config, state, key: str, use_bias: bool) -> tuple[nn.Conv2d, tuple[int, int, int]]:
    """The depthwise convolution of a DepthwiseConv2D / SeparableConv2D (its pad child added
    first when 'same' is asymmetric) and its output shape."""
    _, _, channels = state.spatial(name, "depthwise convolution")
    kernel = state.weight(name, key, 4)  # [kh, kw, in, multiplier]
    kh, kw, cin, mult = kernel.shape
    if cin != channels:
        raise ConvscopeError(f"{state.source}: {name}/{key} expects {cin} channels, the layer gets {channels}")
    stride, dilation = state.pair(config, name, "strides", 1), state.pair(config, name, "dilation_rate", 1)
    padding, explicit, out = _padding(name, config, state, (kh, kw), stride, dilation)
    if explicit:
        state.add(f"{name}_pad", nn.ZeroPad2d(explicit))
    conv = nn.Conv2d(
        cin, cin * mult, (kh, kw), stride=stride, padding=padding, dilation=dilation, groups=cin, bias=use_bias
    )
    with torch.no_grad():  # Keras output channel c * mult + m == PyTorch group c, filter m
        conv.weight.copy_(torch.from_numpy(kernel.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None].copy()))
        if use_bias:
            conv.bias.copy_(torch.from_numpy(_vector(state, name, "bias", cin * mult)))
    return conv, (*out, cin * mult)


def _pooling(average: bool):
    def build(name, config, state, final_softmax):
        _, _, channels = state.spatial(name, "pooling")
        size = state.pair(config, name, "pool_size", 2)
        stride = state.pair(config, name, "strides", size)
        padding, explicit, out = _padding(name, config, state, size, stride, (1, 1))
        if explicit:
            if average:
                raise ConvscopeError(
                    f"{state.source}: {name!r} is an AveragePooling2D with asymmetric 'same' "
                    "padding, which PyTorch's pooling cannot express"
                )
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
        raise ConvscopeError(
            f"{state.source}: Dense layer {name!r} gets shape {state.shape}; only flat inputs "
            "(after Flatten) are supported"
        )
    kernel = state.weight(name, "kernel", 2)  # [in, out]
    features, units = kernel.shape
    if features != state.shape[0]:
        raise ConvscopeError(
            f"{state.source}: {name}/kernel expects {features} inputs, the layer gets {state.shape[0]}"
        )
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
        raise ConvscopeError(
            f"{state.source}: ReLU layer {name!r} with both max_value and negative_slope is not supported"
        )
    elif max_value == 0.0:
        raise ConvscopeError(f"{state.source}: ReLU layer {name!r} has max_value 0, so its output is always 0")
    else:
        module = nn.ReLU6() if max_value == 6.0 else nn.Hardtanh(0.0, max_value)
    return state.add(name, module)


def _leaky_relu(name, config, state, final_softmax):
    key = "negative_slope" if "negative_slope" in config else "alpha"
    return state.add(name, nn.LeakyReLU(state.number(config, name, key, 0.3)))


def _elu_layer(name, config, state, final_softmax):
    return state.add(name, nn.ELU(state.number(config, name, "alpha", 1.0)))


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
        raise ConvscopeError(
            f"{state.source}: BatchNormalization {name!r} right after Flatten is not supported "
            "(its features are in Keras' (H, W, C) order)"
        )
    channels = state.shape[-1]
    eps = state.number(config, name, "epsilon", 1e-3, low=0.0)
    bn = (nn.BatchNorm2d if len(state.shape) == 3 else nn.BatchNorm1d)(channels, eps=eps)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(_vector(state, name, "moving_mean", channels)))
        bn.running_var.copy_(torch.from_numpy(_vector(state, name, "moving_variance", channels)))
        bn.weight.copy_(
            torch.from_numpy(_vector(state, name, "gamma", channels))
            if config.get("scale", True)
            else torch.ones(channels)
        )
        bn.bias.copy_(
            torch.from_numpy(_vector(state, name, "beta", channels))
            if config.get("center", True)
            else torch.zeros(channels)
        )
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
    "SeparableConv2D": _separable_conv2d,
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
    "ELU": _elu_layer,
    "Softmax": _softmax_layer,
    "BatchNormalization": _batch_norm,
    "ZeroPadding2D": _zero_padding,
}
_MERGES = ("Add", "Multiply", "Concatenate")  # built by _merge, in functional models only
#: Names a child cannot take: attributes of the containers (``forward``, ``training``, ``eval`` ...).
_RESERVED = frozenset(dir(nn.Sequential())) | frozenset(dir(KerasFunctional(OrderedDict(), (), "", "")))
