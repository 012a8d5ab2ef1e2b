"""Keras' own files (.h5, .keras) against an independent NumPy re-computation of Keras' layers.

The fixtures are written here with h5py in the layouts Keras writes (no TensorFlow):
``.h5`` as Keras 2's legacy HDF5 (root attributes ``model_config`` / ``keras_version`` /
``backend``, ``model_weights/<layer>/<layer>/<weight>:0`` with ``weight_names``), ``.keras``
as Keras 3's zip (``config.json``, ``metadata.json``, ``model.weights.h5`` with
``layers/<snake-case class>[_k]/vars/0..n``), each with the config JSON in that Keras
version's own dialect. The expected outputs come from :func:`keras_forward`, a plain NHWC
NumPy forward of the same layer list (TensorFlow's 'same' padding, (H, W, C) flattening),
written from Keras' documented semantics and sharing no code with convscope.
"""

from __future__ import annotations

import copy
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_tfjs_fuzz import _mutate, _paths, accepted_or_refused  # the TF.js fuzzer's values and property

import convscope as cs
from convscope.errors import ConvscopeError

h5py = pytest.importorskip("h5py")  # the keras extra (in all)


# ---------------------------------------------------------------------------------------
# the two test models: (class, name, options, inbound layers, weight names)
# ---------------------------------------------------------------------------------------
def _conv2d(name, filters, kernel, padding, dilation=1, activation="linear", use_bias=True, inbound=()):
    """A stride-1 Conv2D entry with Keras' option names (its bias is a weight when ``use_bias``)."""
    options = dict(
        filters=filters,
        kernel_size=list(kernel),
        strides=[1, 1],
        padding=padding,
        dilation_rate=[dilation, dilation],
        activation=activation,
        use_bias=use_bias,
    )
    return ("Conv2D", name, options, list(inbound), ["kernel", "bias"] if use_bias else ["kernel"])


def _batchnorm(name, inbound=()):
    """A BatchNormalization entry with Keras' defaults and its four weights."""
    options = dict(momentum=0.99, epsilon=1e-3, center=True, scale=True)
    return ("BatchNormalization", name, options, list(inbound), ["gamma", "beta", "moving_mean", "moving_variance"])


SEQUENTIAL_INPUT = (16, 13, 3)
SEQUENTIAL = [
    ("InputLayer", "input_1", {}, [], []),
    _conv2d("conv_same", 6, (3, 3), "same", activation="relu"),
    (
        "DepthwiseConv2D",
        "depthwise",
        dict(
            kernel_size=[3, 3],
            strides=[2, 2],
            padding="same",
            depth_multiplier=2,
            dilation_rate=[1, 1],
            activation="linear",
            use_bias=True,
        ),
        [],
        ["depthwise_kernel", "bias"],
    ),
    _batchnorm("bn"),
    ("LeakyReLU", "leaky", dict(alpha=0.1), [], []),
    (
        "SeparableConv2D",
        "separable",
        dict(
            filters=5,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="same",
            depth_multiplier=1,
            dilation_rate=[2, 2],
            activation="linear",
            use_bias=True,
        ),
        [],
        ["depthwise_kernel", "pointwise_kernel", "bias"],
    ),
    ("MaxPooling2D", "pool_same", dict(pool_size=[3, 3], strides=[2, 2], padding="same"), [], []),
    ("ReLU", "relu", dict(max_value=None, negative_slope=0.0, threshold=0.0), [], []),
    ("AveragePooling2D", "avg", dict(pool_size=[2, 2], strides=[1, 1], padding="valid"), [], []),
    ("ELU", "elu", dict(alpha=0.5), [], []),
    _conv2d("conv_valid", 4, (2, 1), "valid", use_bias=False),
    ("Activation", "act", dict(activation="tanh"), [], []),
    ("Flatten", "flatten", {}, [], []),
    ("Dense", "hidden", dict(units=8, activation="sigmoid", use_bias=True), [], ["kernel", "bias"]),
    ("Dropout", "dropout", dict(rate=0.25), [], []),
    ("Dense", "logits", dict(units=5, activation="softmax", use_bias=True), [], ["kernel", "bias"]),
]
FUNCTIONAL_INPUT = (10, 9, 3)
FUNCTIONAL = [
    ("InputLayer", "image", {}, [], []),
    _conv2d("conv_a", 4, (3, 3), "same", activation="relu", inbound=["image"]),
    _conv2d("conv_b", 4, (3, 3), "same", dilation=2, inbound=["conv_a"]),
    ("Add", "merge", {}, ["conv_a", "conv_b"], []),
    _conv2d("side", 3, (1, 1), "valid", inbound=["image"]),
    ("Concatenate", "joined", dict(axis=-1), ["merge", "side"], []),
    _batchnorm("bn", inbound=["joined"]),
    ("MaxPooling2D", "pool", dict(pool_size=[2, 2], strides=[2, 2], padding="valid"), ["bn"], []),
    ("Flatten", "flat", {}, ["pool"], []),
    ("Dense", "out", dict(units=6, activation="softmax", use_bias=True), ["flat"], ["kernel", "bias"]),
]
MODELS = {"sequential": (SEQUENTIAL, SEQUENTIAL_INPUT), "functional": (FUNCTIONAL, FUNCTIONAL_INPUT)}
# Keras' snake case of each class (how .keras addresses a layer's variables), spelled out
SNAKE = {
    "InputLayer": "input_layer",
    "Conv2D": "conv2d",
    "DepthwiseConv2D": "depthwise_conv2d",
    "SeparableConv2D": "separable_conv2d",
    "BatchNormalization": "batch_normalization",
    "Dense": "dense",
    "LeakyReLU": "leaky_re_lu",
    "MaxPooling2D": "max_pooling2d",
    "ReLU": "re_lu",
    "ELU": "elu",
    "AveragePooling2D": "average_pooling2d",
    "Activation": "activation",
    "Flatten": "flatten",
    "Dropout": "dropout",
    "Add": "add",
    "Concatenate": "concatenate",
}


# ---------------------------------------------------------------------------------------
# NumPy: Keras' layers in NHWC, float64
# ---------------------------------------------------------------------------------------
def _same(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2  # TensorFlow: the odd pixel at the bottom / right


def _windows(x, k, s, d, padding, fill=0.0):
    """(kh * kw) strided views of x [N, H, W, C] after Keras padding, and the output size."""
    (kh, kw), (sh, sw), (dh, dw) = k, s, d
    n, h, w, c = x.shape
    (t, b), (left, r) = (_same(h, kh, sh, dh), _same(w, kw, sw, dw)) if padding == "same" else ((0, 0), (0, 0))
    xp = np.full((n, h + t + b, w + left + r, c), fill)
    xp[:, t : t + h, left : left + w] = x
    oh, ow = (xp.shape[1] - (kh - 1) * dh - 1) // sh + 1, (xp.shape[2] - (kw - 1) * dw - 1) // sw + 1
    return [
        [xp[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw] for j in range(kw)]
        for i in range(kh)
    ]


def conv2d(x, kernel, stride, dilation, padding):
    wins = _windows(x, kernel.shape[:2], stride, dilation, padding)
    return sum(wins[i][j] @ kernel[i, j] for i in range(kernel.shape[0]) for j in range(kernel.shape[1]))


def depthwise(x, kernel, stride, dilation, padding):
    kh, kw, c, m = kernel.shape
    wins = _windows(x, (kh, kw), stride, dilation, padding)
    out = sum(wins[i][j][..., :, None] * kernel[i, j] for i in range(kh) for j in range(kw))
    return out.reshape(*out.shape[:3], c * m)  # channel c * m + k, as Keras orders them


def pool(x, size, stride, padding, kind):
    wins = _windows(x, size, stride, (1, 1), padding, fill=np.nan)
    stack = np.stack([w for row in wins for w in row])
    return np.nanmax(stack, 0) if kind == "max" else np.nanmean(stack, 0)  # TF averages the real pixels only


ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softmax": lambda x: (
        np.exp(x - x.max(-1, keepdims=True)) / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)
    ),
}


def keras_forward(layers, weights, x):
    """The Keras model on x [N, H, W, C]; returns every layer's output by name."""
    outs = {}
    prev = None
    for kind, name, o, inbound, _ in layers:
        w = weights.get(name, {})
        args = [outs[n] for n in inbound] if inbound else [prev]
        a = args[0]
        if kind == "InputLayer":
            y = x
        elif kind == "Conv2D":
            y = conv2d(a, w["kernel"], o["strides"], o["dilation_rate"], o["padding"]) + w.get("bias", 0)
        elif kind == "DepthwiseConv2D":
            y = depthwise(a, w["depthwise_kernel"], o["strides"], o["dilation_rate"], o["padding"]) + w["bias"]
        elif kind == "SeparableConv2D":
            d = depthwise(a, w["depthwise_kernel"], o["strides"], o["dilation_rate"], o["padding"])
            y = d @ w["pointwise_kernel"][0, 0] + w["bias"]
        elif kind == "BatchNormalization":
            y = (a - w["moving_mean"]) / np.sqrt(w["moving_variance"] + o["epsilon"]) * w["gamma"] + w["beta"]
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            y = pool(a, o["pool_size"], o["strides"], o["padding"], "max" if kind == "MaxPooling2D" else "avg")
        elif kind == "LeakyReLU":
            y = np.where(a > 0, a, o["alpha"] * a)
        elif kind == "ELU":
            y = np.where(a > 0, a, o["alpha"] * (np.exp(a) - 1))
        elif kind == "ReLU":
            y = np.maximum(a, 0)
        elif kind == "Flatten":
            y = a.reshape(len(a), -1)  # NHWC memory order: Keras' (H, W, C)
        elif kind == "Dense":
            y = a @ w["kernel"] + w.get("bias", 0)
        elif kind in ("Dropout", "Activation"):
            y = a
        elif kind == "Add":
            y = sum(args)
        elif kind == "Concatenate":
            y = np.concatenate(args, -1)
        else:
            raise AssertionError(kind)
        outs[name] = ACTIVATIONS[o.get("activation", "linear")](y)
        prev = outs[name]
    return outs


# ---------------------------------------------------------------------------------------
# writing the files as Keras does
# ---------------------------------------------------------------------------------------
def _weight_shapes(kind, o, shape) -> dict[str, tuple[int, ...]]:
    """Keras' weight shapes for a layer of class ``kind`` with options ``o`` on an input of ``shape``."""
    cin, k = shape[-1], tuple(o.get("kernel_size", ()))
    if kind == "Conv2D":
        return {"kernel": (*k, cin, o["filters"]), "bias": (o["filters"],)}
    if kind == "DepthwiseConv2D":
        return {"depthwise_kernel": (*k, cin, o["depth_multiplier"]), "bias": (cin * o["depth_multiplier"],)}
    if kind == "SeparableConv2D":
        return {
            "depthwise_kernel": (*k, cin, 1),
            "pointwise_kernel": (1, 1, cin, o["filters"]),
            "bias": (o["filters"],),
        }
    if kind == "BatchNormalization":
        return dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"), (cin,))
    return {"kernel": (math.prod(shape), o["units"]), "bias": (o["units"],)}  # Dense


def random_weights(layers, input_shape, seed=0):
    """Keras-shaped weights for every layer (input shapes found by running the NumPy forward)."""
    rng = np.random.default_rng(seed)
    weights: dict[str, dict[str, np.ndarray]] = {}
    x = np.zeros((1, *input_shape))
    for i, (kind, name, o, inbound, names) in enumerate(layers):
        if not names:
            continue
        shape = keras_forward(layers[:i], weights, x)[inbound[0] if inbound else layers[i - 1][1]].shape[1:]
        shapes = _weight_shapes(kind, o, shape)
        weights[name] = {n: rng.normal(0, 0.5, shapes[n]).astype(np.float32) for n in names}
        if kind == "BatchNormalization":
            weights[name]["moving_variance"] = rng.uniform(0.5, 2.0, shape[-1:]).astype(np.float32)
    return weights


def _shapes(layers, input_shape, weights):
    outs = keras_forward(layers, weights, np.zeros((1, *input_shape)))
    return {n: [None, *v.shape[1:]] for n, v in outs.items()}


def keras2_config(layers, input_shape, functional: bool) -> dict:
    """The model_config tf.keras 2.x writes into an .h5 (and the TF.js converter into model.json)."""
    entries = []
    for kind, name, o, inbound, _ in layers:
        config = {"name": name, "trainable": True, "dtype": "float32", **o}
        if kind == "InputLayer":
            config.update(batch_input_shape=[None, *input_shape], sparse=False, ragged=False)
        elif kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D", "Flatten"):
            config["data_format"] = "channels_last"
        if kind == "BatchNormalization":
            config["axis"] = [3]  # tf.keras stores the normalised axes as a list once built
        entry = {"class_name": kind, "config": config}
        if functional:
            entry.update(name=name, inbound_nodes=[[[n, 0, 0, {}] for n in inbound]] if inbound else [])
        entries.append(entry)
    if not functional:
        return {"class_name": "Sequential", "config": {"name": "sequential", "layers": entries}}
    return {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": entries,
            "input_layers": [[layers[0][1], 0, 0]],
            "output_layers": [[layers[-1][1], 0, 0]],
        },
    }


def keras3_config(layers, input_shape, functional: bool, weights) -> dict:
    """config.json as Keras 3 writes it into a .keras zip."""
    shapes = _shapes(layers, input_shape, weights)
    policy = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
    entries = []
    prev = None
    for kind, name, o, inbound, _ in layers:
        o = dict(o)
        if kind == "LeakyReLU":
            o["negative_slope"] = o.pop("alpha")
        config = {"name": name, "trainable": True, "dtype": policy, **o}
        if kind == "InputLayer":
            config = {"batch_shape": [None, *input_shape], "dtype": "float32", "sparse": False, "name": name}
        elif kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D", "Flatten"):
            config["data_format"] = "channels_last"
        if kind == "BatchNormalization":
            config["axis"] = -1
        entry = {"module": "keras.layers", "class_name": kind, "config": config, "registered_name": None}
        sources = inbound or ([prev] if prev else [])
        if kind != "InputLayer":
            entry["build_config"] = {
                "input_shape": shapes[sources[0]] if len(sources) == 1 else [shapes[n] for n in sources]
            }
        if functional:
            tensors = [
                {
                    "class_name": "__keras_tensor__",
                    "config": {"shape": shapes[n], "dtype": "float32", "keras_history": [n, 0, 0]},
                }
                for n in inbound
            ]
            args = [tensors] if len(tensors) > 1 else tensors
            entry.update(name=name, inbound_nodes=[{"args": args, "kwargs": {}}] if inbound else [])
        entries.append(entry)
        prev = name
    if not functional:
        return {
            "module": "keras",
            "class_name": "Sequential",
            "registered_name": None,
            "config": {"name": "sequential", "trainable": True, "dtype": policy, "layers": entries},
            "build_config": {"input_shape": [None, *input_shape]},
            "compile_config": None,
        }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "registered_name": "Functional",
        "config": {
            "name": "functional",
            "trainable": True,
            "layers": entries,
            "input_layers": [[layers[0][1], 0, 0]],
            "output_layers": [[layers[-1][1], 0, 0]],
        },
        "build_config": {"input_shape": [None, *input_shape]},
        "compile_config": None,
    }


def write_h5(path: Path, layers, input_shape, weights, functional: bool, config: dict | None = None) -> Path:
    """Keras 2's model.save('m.h5') layout (legacy hdf5_format.save_model_to_hdf5)."""
    config = config or keras2_config(layers, input_shape, functional)
    model_layers = layers if functional else layers[1:]  # a Sequential's model.layers has no InputLayer
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.15.0"
        f.attrs["model_config"] = json.dumps(config).encode("utf8")
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer[1].encode("utf8") for layer in model_layers]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.15.0"
        for _, name, _, _, names in sorted(model_layers, key=lambda layer: layer[1]):
            g = group.create_group(name)
            weight_names = [f"{name}/{n}:0".encode() for n in names]
            g.attrs["weight_names"] = weight_names
            for n, wn in zip(names, weight_names):
                g.create_dataset(wn.decode(), data=weights[name][n])
    return path


def keras_weights_h5(layers, weights, functional: bool) -> bytes:
    """model.weights.h5 of a .keras zip: each layer's variables under layers/<snake class>[_k]/vars."""
    buffer = io.BytesIO()
    seen: dict[str, int] = {}
    with h5py.File(buffer, "w") as h:
        h.create_group("vars")  # the model's own (none)
        for kind, name, _, _, names in layers if functional else layers[1:]:
            key = SNAKE[kind] if SNAKE[kind] not in seen else f"{SNAKE[kind]}_{seen[SNAKE[kind]]}"
            seen[SNAKE[kind]] = seen.get(SNAKE[kind], 0) + 1
            group = h.create_group(f"layers/{key}").create_group("vars")
            for i, n in enumerate(names):
                group[str(i)] = weights[name][n]
    return buffer.getvalue()


def write_keras(
    path: Path,
    layers,
    input_shape,
    weights,
    functional: bool,
    config: dict | None = None,
    weights_h5: bytes | None = None,
) -> Path:
    config = config or keras3_config(layers, input_shape, functional, weights)
    with zipfile.ZipFile(path, "w") as zf:  # Keras writes its members stored
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.5.0", "date_saved": "2024-09-01@12:00:00"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr(
            "model.weights.h5", weights_h5 if weights_h5 is not None else keras_weights_h5(layers, weights, functional)
        )
    return path


def write_tfjs(folder: Path, layers, input_shape, weights, functional: bool) -> Path:
    """The TF.js converter's model.json + one shard of the same model."""
    folder.mkdir(exist_ok=True)
    entries, data = [], b""
    for _, name, _, _, names in layers:
        for n in names:
            array = weights[name][n]
            entries.append({"name": f"{name}/{n}", "shape": list(array.shape), "dtype": "float32"})
            data += array.astype("<f4").tobytes()
    spec = {
        "format": "layers-model",
        "generatedBy": "keras v2.15.0",
        "convertedBy": "TensorFlow.js Converter v4.17.0",
        "modelTopology": {
            "keras_version": "2.15.0",
            "backend": "tensorflow",
            "model_config": keras2_config(layers, input_shape, functional),
        },
        "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": entries}],
    }
    (folder / "model.json").write_text(json.dumps(spec))
    (folder / "group1-shard1of1.bin").write_bytes(data)
    return folder / "model.json"


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def weights():
    return {kind: random_weights(layers, shape, seed=i) for i, (kind, (layers, shape)) in enumerate(MODELS.items())}


@pytest.fixture(scope="module")
def files(tmp_path_factory, weights):
    """Every test model as .h5, .keras and TF.js."""
    folder = tmp_path_factory.mktemp("keras-files")
    out = {}
    for kind, (layers, shape) in MODELS.items():
        functional = kind == "functional"
        out[kind, ".h5"] = write_h5(folder / f"{kind}.h5", layers, shape, weights[kind], functional)
        out[kind, ".keras"] = write_keras(folder / f"{kind}.keras", layers, shape, weights[kind], functional)
        out[kind, "tfjs"] = write_tfjs(folder / f"{kind}-tfjs", layers, shape, weights[kind], functional)
    return out


def _image_batch(shape, n=3, seed=7):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape))


def _ours(model, x_nhwc):
    with torch.no_grad():
        return model.net(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2).astype(np.float32)))


# ---------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sequential", "functional"])
@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_outputs_match_a_numpy_recomputation_of_keras(files, weights, kind, suffix):
    layers, shape = MODELS[kind]
    model = cs.load_model(files[kind, suffix])
    assert model.input_shape == (shape[2], *shape[:2])
    assert model.meta["format"] == ("keras" if suffix == ".keras" else "keras-h5")
    assert model.meta["output_activation"] == "softmax"  # dropped from the net: it returns logits
    x = _image_batch(shape)
    reference = keras_forward(layers, weights[kind], x)
    probs = _ours(model, x).softmax(-1).numpy()
    np.testing.assert_allclose(probs, reference[layers[-1][1]], atol=2e-6, rtol=0)
    # a spatial layer's output, read through keras_outputs, is the Keras tensor in NCHW
    spatial = "separable" if kind == "sequential" else "joined"
    child = model.net.get_submodule(model.meta["keras_outputs"][spatial])
    seen = []
    handle = child.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
    _ours(model, x)
    handle.remove()
    np.testing.assert_allclose(seen[0].permute(0, 2, 3, 1).numpy(), reference[spatial], atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_tfjs_and_h5_and_keras_files_of_one_model_give_identical_outputs(files, kind):
    x = torch.from_numpy(_image_batch(MODELS[kind][1]).transpose(0, 3, 1, 2).astype(np.float32))
    outputs = []
    for suffix in ("tfjs", ".h5", ".keras"):
        model = cs.load_model(files[kind, suffix])
        with torch.no_grad():
            outputs.append(model.net(x))
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])


def test_functional_children_and_trace_carry_the_keras_names(files):
    model = cs.load_model(files["functional", ".h5"])
    children = [n for n, _ in model.net.named_children()]
    assert children == ["conv_a", "conv_a_relu", "conv_b", "merge", "side", "joined", "bn", "pool", "flat", "out"]
    trace = cs.trace(model, torch.rand(1, 3, 10, 9))
    kinds = {r.name: r.kind for r in trace}
    assert kinds == {
        "input": "input",
        "conv_a": "conv",
        "conv_a_relu": "relu",
        "conv_b": "conv",
        "merge": "add",
        "side": "conv",
        "joined": "concat",
        "bn": "batchnorm",
        "pool": "maxpool",
        "flat": "flatten",
        "out": "linear",
    }  # the merges too are recorded under their Keras names
    assert trace["merge"].inputs == ["conv_a_relu", "conv_b"] and trace["joined"].inputs == ["merge", "side"]
    sequential = cs.load_model(files["sequential", ".keras"])
    assert [n for n, _ in sequential.net.named_children()][:4] == [
        "conv_same",
        "conv_same_relu",
        "depthwise_pad",
        "depthwise",
    ]
    assert [n for n, _ in sequential.net.get_submodule("separable").named_children()] == ["depthwise", "pointwise"]


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_unknown_layer_class_is_one_line_naming_layer_and_class(tmp_path, weights, suffix):
    w = weights["sequential"]
    if suffix == ".h5":
        config, writer = keras2_config(SEQUENTIAL, SEQUENTIAL_INPUT, False), write_h5
    else:
        config, writer = keras3_config(SEQUENTIAL, SEQUENTIAL_INPUT, False, w), write_keras
    entry = next(e for e in config["config"]["layers"] if e["config"]["name"] == "pool_same")
    entry["class_name"] = "Cropping2D"
    path = writer(tmp_path / f"m{suffix}", SEQUENTIAL, SEQUENTIAL_INPUT, w, False, config=config)
    with pytest.raises(
        ConvscopeError, match=r"layer 'pool_same' is a Keras 'Cropping2D', which convscope cannot"
    ) as info:
        cs.load_model(path)
    assert "\n" not in str(info.value)


def test_keras3_addresses_variables_by_class_not_by_layer_name(tmp_path, weights):
    """Two Conv2D layers are conv2d and conv2d_1 in model.weights.h5; stored by name they are not found."""
    w = weights["sequential"]
    good = write_keras(tmp_path / "good.keras", SEQUENTIAL, SEQUENTIAL_INPUT, w, False)
    assert cs.load_model(good).net.get_submodule("conv_valid").weight.shape == (4, 5, 2, 1)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as h:
        for _, name, _, _, names in SEQUENTIAL[1:]:
            group = h.create_group(f"layers/{name}").create_group("vars")
            for i, n in enumerate(names):
                group[str(i)] = w[name][n]
    by_name = write_keras(
        tmp_path / "by-name.keras", SEQUENTIAL, SEQUENTIAL_INPUT, w, False, weights_h5=buffer.getvalue()
    )
    with pytest.raises(ConvscopeError, match=r"layer 'conv_same' \(Conv2D\) has no weights in the file"):
        cs.load_model(by_name)


@pytest.mark.parametrize("suffix", [".h5", "tfjs"])
def test_layer_named_like_a_module_attribute_is_refused(tmp_path, weights, suffix):
    """A child named 'forward' or 'training' cannot be added to a module (the TF.js loader raised KeyError)."""
    layers = [(k, "forward" if n == "leaky" else n, o, i, w) for k, n, o, i, w in SEQUENTIAL[:5]]
    path = (
        write_h5(tmp_path / "m.h5", layers, SEQUENTIAL_INPUT, weights["sequential"], False)
        if suffix == ".h5"
        else write_tfjs(tmp_path / "tfjs", layers, SEQUENTIAL_INPUT, weights["sequential"], False)
    )
    with pytest.raises(ConvscopeError, match="'forward' is not a usable name"):
        cs.load_model(path)


def test_hostile_h5_files_are_refused_before_reading(tmp_path, weights):
    w = weights["sequential"]
    path = write_h5(tmp_path / "m.h5", SEQUENTIAL, SEQUENTIAL_INPUT, w, False)
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(24, dtype="<f4").tobytes())

    def replace(dataset: str, make):
        with h5py.File(path, "a") as f:
            del f[dataset]
            make(f, dataset)

    cases = [
        (
            lambda f, d: f.create_dataset(d, shape=(65536, 65536, 4), dtype="f4", chunks=(1, 64, 4)),
            r"more than the \d+ bytes of float32",
        ),  # declared, never written: the file stays small
        (
            lambda f, d: f.create_dataset(d, shape=(24, 1), dtype="<f4", external=[(str(secret), 0, 96)]),
            "keeps its data in other files",
        ),
        (lambda f, d: f.__setitem__(d, h5py.SoftLink("/model_weights/hidden/hidden/bias:0")), "SoftLink"),
        (lambda f, d: f.__setitem__(d, h5py.ExternalLink(str(secret), "/x")), "ExternalLink"),
        (lambda f, d: f.create_dataset(d, data=np.zeros((24, 8), dtype="i4")), "not float16/32/64"),
    ]
    for make, message in cases:
        write_h5(path, SEQUENTIAL, SEQUENTIAL_INPUT, w, False)
        replace("model_weights/hidden/hidden/kernel:0", make)
        with pytest.raises(ConvscopeError, match=message) as info:
            cs.load_model(path)
        assert "\n" not in str(info.value)
    with h5py.File(path, "w") as f:  # model.save_weights(): no architecture
        f.attrs["layer_names"] = [b"conv_same"]
    with pytest.raises(ConvscopeError, match=r"weights only \(model.save_weights\)"):
        cs.load_model(path)


def test_hostile_keras_zips_are_refused_by_declared_size(tmp_path, weights):
    w = weights["sequential"]
    path = tmp_path / "big.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", " " * (17 << 20))  # 17 MB of spaces, 17 KB deflated
        zf.writestr("model.weights.h5", keras_weights_h5(SEQUENTIAL, w, False))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ConvscopeError, match=r"config.json declares 17825792 bytes, more than"):
        cs.load_model(path)
    npz = tmp_path / "npz.keras"
    with zipfile.ZipFile(npz, "w") as zf:
        zf.writestr("config.json", json.dumps(keras3_config(SEQUENTIAL, SEQUENTIAL_INPUT, False, w)))
        zf.writestr("model.weights.npz", b"PK")
    with pytest.raises(ConvscopeError, match="model.weights.npz, a NumPy store Keras unpickles; refused"):
        cs.load_model(npz)
    (tmp_path / "not.keras").write_bytes(b"not a zip at all")
    with pytest.raises(ConvscopeError, match=r"not a .keras archive"):
        cs.load_model(tmp_path / "not.keras")
    (tmp_path / "not.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    with pytest.raises(ConvscopeError, match="not a readable HDF5 file"):
        cs.load_model(tmp_path / "not.h5")


class _Genuine(tuple):
    def __repr__(self) -> str:
        return "<the genuine test files>"


@pytest.fixture(scope="module")
def genuine(weights):
    w = weights["functional"]
    return _Genuine(
        (
            keras2_config(FUNCTIONAL, FUNCTIONAL_INPUT, True),
            keras3_config(SEQUENTIAL, SEQUENTIAL_INPUT, False, weights["sequential"]),
            keras_weights_h5(SEQUENTIAL, weights["sequential"], False),
            w,
            weights["sequential"],
        )
    )


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_fuzzed_h5_model_config_raises_only_convscope_errors(genuine, tmp_path_factory, data):
    config = copy.deepcopy(genuine[0])
    paths = _paths(config)
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        _mutate(data, config, paths)
    text = json.dumps(config).replace('"__deep__"', "[" * 30_000 + "]" * 30_000)
    path = tmp_path_factory.mktemp("h5-fuzz") / "m.h5"
    write_h5(path, FUNCTIONAL, FUNCTIONAL_INPUT, genuine[3], True)
    with h5py.File(path, "a", libver="latest") as f:  # dense attribute storage: a config over 64 KB
        f.attrs["model_config"] = text.encode()
    accepted_or_refused(lambda: cs.load_model(path))


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(data=st.data())
def test_fuzzed_keras_zips_raise_only_convscope_errors(genuine, tmp_path_factory, data):
    config, weights_h5 = copy.deepcopy(genuine[1]), bytearray(genuine[2])
    mode = data.draw(st.sampled_from(["config", "weights bytes", "zip bytes"]), label="mode")
    if mode == "config":
        paths = _paths(config)
        for _ in range(data.draw(st.integers(1, 3), label="changes")):
            _mutate(data, config, paths)
    elif mode == "weights bytes":  # a damaged model.weights.h5 in an intact zip: h5py meets the damage
        for _ in range(data.draw(st.integers(1, 8), label="flips")):
            at = data.draw(st.integers(0, len(weights_h5) - 1), label="at")
            weights_h5[at] = data.draw(st.integers(0, 255), label="byte")
        cut = data.draw(st.sampled_from([None, 100, 1000, len(weights_h5) // 2]), label="cut")
        weights_h5 = weights_h5[:cut] if cut else weights_h5
    text = json.dumps(config).replace('"__deep__"', "[" * 30_000 + "]" * 30_000)
    path = tmp_path_factory.mktemp("keras-fuzz") / "m.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", "{}")
        zf.writestr("config.json", text)
        zf.writestr("model.weights.h5", bytes(weights_h5))
    if mode == "zip bytes":  # the archive itself truncated or garbled
        raw = bytearray(path.read_bytes())
        for _ in range(data.draw(st.integers(0, 4), label="flips")):
            at = data.draw(st.integers(0, len(raw) - 1), label="at")
            raw[at] = data.draw(st.integers(0, 255), label="byte")
        path.write_bytes(bytes(raw[: data.draw(st.integers(0, len(raw)), label="length")]))
    accepted_or_refused(lambda: cs.load_model(path))


def test_cli_summary_of_an_h5_file(files, capsys):
    from convscope.cli.main import main

    assert main(["summary", "--model", str(files["functional", ".h5"])]) == 0
    out = capsys.readouterr().out
    assert "conv_a" in out and "merge" in out and "joined" in out
