"""The TF.js layers loader against TensorFlow.js' own numbers (CNN Explainer's Tiny VGG),
and against a NumPy re-implementation of Keras' NHWC semantics for the layer options the
fixture does not use ('same' padding, strides, BatchNorm, fused activations)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_vgg_names import TINY_VGG_CHILDREN

from convscope.errors import ConvscopeError
from convscope.models import load_model
from convscope.models.tfjs import load_tfjs_model


@pytest.fixture(scope="module")
def reference(cnn_explainer_reference):
    return cnn_explainer_reference


@pytest.fixture(scope="module")
def tiny_vgg(cnn_explainer_dir):
    from cnn_explainer import CLASSES

    return load_model(cnn_explainer_dir / "model.json", classes=CLASSES)


def _child_outputs(net: torch.nn.Module, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o.detach()))
        for n, m in net.named_children()
    ]
    try:
        with torch.no_grad():
            y = net(x)
    finally:
        for h in hooks:
            h.remove()
    return outputs, y


def test_structure_names_and_preprocessing(tiny_vgg):
    names = [n for n, _ in tiny_vgg.net.named_children()]
    assert names == TINY_VGG_CHILDREN
    assert sum(p.numel() for p in tiny_vgg.net.parameters()) == 19_920
    assert tiny_vgg.input_shape == (3, 64, 64)
    assert tiny_vgg.preprocessing.mean == (0.0,) and tiny_vgg.preprocessing.std == (255.0,)
    assert tiny_vgg.meta["output_activation"] == "softmax"  # dropped: the net returns logits
    assert tiny_vgg.class_name(6) == "espresso"


def test_every_layer_matches_tfjs_on_the_decoded_espresso(tiny_vgg, reference):
    detail = reference["detail"]
    assert detail["image"] == "espresso_1.jpeg"
    pixels = torch.from_numpy(np.array(detail["decoded_input_uint8"], dtype=np.uint8)).permute(2, 0, 1)
    x = tiny_vgg.preprocessing.normalize(pixels)[None]
    outputs, logits = _child_outputs(tiny_vgg.net, x)
    keras_outputs = tiny_vgg.meta["keras_outputs"]
    assert len(detail["layers"]) == 12
    for layer in detail["layers"]:
        ref = np.array(layer["output"], dtype=np.float32)
        ours = outputs[keras_outputs[layer["name"]]][0]
        if ours.dim() == 3:  # NCHW -> TF's HWC
            ours = ours.permute(1, 2, 0)
        elif layer["name"] == "flatten":  # PyTorch flattens (C, H, W); Keras (H, W, C)
            ours = ours.reshape(10, 13, 13).permute(1, 2, 0).reshape(-1)
        elif layer["name"] == "output":  # Keras' Dense(softmax) output is probabilities
            ours = ours.softmax(-1)
        assert ours.shape == ref.shape, layer["name"]
        np.testing.assert_allclose(ours.numpy(), ref, atol=1e-5, rtol=0, err_msg=layer["name"])
    assert int(logits.argmax()) == reference["classes"].index("espresso")


def test_pillow_decoded_images_match_tfjs_probabilities(tiny_vgg, reference, cnn_explainer_dir):
    images = reference["images"]
    assert len(images) == 20
    files = sorted(images)
    batch = torch.stack(
        [tiny_vgg.preprocess(Image.open(cnn_explainer_dir / "images" / f).convert("RGB")) for f in files]
    )
    assert batch.shape == (20, 3, 64, 64)
    with torch.no_grad():
        probs = tiny_vgg.net(batch).softmax(-1).numpy()
    for f, p in zip(files, probs):
        expected = images[f]["pillow_decode"]
        np.testing.assert_allclose(p, np.array(expected["probs"], dtype=np.float32), atol=1e-4, rtol=0, err_msg=f)
        assert int(p.argmax()) == expected["top_index"], f
    # and Model.predict reads the same out, with class names
    top = tiny_vgg.predict(cnn_explainer_dir / "images" / "espresso_1.jpeg", top=1)[0][0]
    assert top[0] == images["espresso_1.jpeg"]["pillow_decode"]["top_class"]


# -- errors ---------------------------------------------------------------------------
@pytest.fixture()
def model_copy(cnn_explainer_dir, tmp_path) -> Path:
    for name in ("model.json", "group1-shard1of1.bin"):
        shutil.copy(cnn_explainer_dir / name, tmp_path / name)
    return tmp_path / "model.json"


def test_missing_shard_is_named(model_copy):
    (model_copy.parent / "group1-shard1of1.bin").unlink()
    with pytest.raises(ConvscopeError, match=r"group1-shard1of1\.bin.*missing"):
        load_tfjs_model(model_copy)


def test_short_or_long_shard_is_named(model_copy):
    shard = model_copy.parent / "group1-shard1of1.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[:-40])  # sizes are compared before any shard is read
    with pytest.raises(
        ConvscopeError, match=r"group1-shard1of1\.bin hold 79640 bytes but the manifest describes 79680"
    ):
        load_tfjs_model(model_copy)
    shard.write_bytes(data + b"\0" * 8)
    with pytest.raises(ConvscopeError, match="hold 79688 bytes.*do not belong"):
        load_tfjs_model(model_copy)


def test_unknown_layer_and_non_sequential_are_named(model_copy):
    spec = json.loads(model_copy.read_text())
    spec["modelTopology"]["model_config"]["config"]["layers"][4]["class_name"] = "Cropping2D"
    model_copy.write_text(json.dumps(spec))
    with pytest.raises(ConvscopeError, match=r"max_pool_1.*'Cropping2D'"):
        load_tfjs_model(model_copy)
    spec["modelTopology"]["model_config"]["class_name"] = "Model"  # functional, but without its graph
    model_copy.write_text(json.dumps(spec))
    with pytest.raises(ConvscopeError, match="functional model's input_layers is None"):
        load_tfjs_model(model_copy)
    model_copy.write_text("{not json")
    with pytest.raises(ConvscopeError, match="not valid JSON"):
        load_tfjs_model(model_copy)


def test_sidecar_class_names(model_copy):
    (model_copy.parent / "labels.txt").write_text("\n".join(f"thing {i}" for i in range(10)) + "\n")
    assert load_tfjs_model(model_copy).classes[3] == "thing 3"
    (model_copy.parent / "classes.json").write_text(json.dumps([f"c{i}" for i in range(10)]))
    assert load_tfjs_model(model_copy).classes[9] == "c9"
    assert load_tfjs_model(model_copy, classes=list("abcdefghij")).classes[0] == "a"


# -- options the fixture does not use, against NumPy NHWC semantics -------------------
def _tf_same(size: int, k: int, s: int) -> tuple[int, int]:
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _np_conv(x, kernel, bias, stride, padding):
    """Keras Conv2D on one NHWC sample, by explicit loops over the kernel taps."""
    kh, kw, _, _ = kernel.shape
    if padding == "same":
        (t, b), (left, r) = _tf_same(x.shape[0], kh, stride), _tf_same(x.shape[1], kw, stride)
        x = np.pad(x, ((t, b), (left, r), (0, 0)))
    oh, ow = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    out = np.zeros((oh, ow, kernel.shape[3]), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = x[i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride]
            out += patch @ kernel[i, j]
    return out + bias


def _np_maxpool_same(x, k, s):
    (t, b), (left, r) = _tf_same(x.shape[0], k, s), _tf_same(x.shape[1], k, s)
    x = np.pad(x, ((t, b), (left, r), (0, 0)), constant_values=-np.inf)
    oh, ow = (x.shape[0] - k) // s + 1, (x.shape[1] - k) // s + 1
    return np.stack([[x[i * s : i * s + k, j * s : j * s + k].max(axis=(0, 1)) for j in range(ow)] for i in range(oh)])


def _write_model(tmp_path: Path, layers: list[dict], weights: list[tuple[str, np.ndarray]]) -> Path:
    data = b"".join(w.astype("<f4").tobytes() for _, w in weights)
    half = len(data) // 2  # two shards, split mid-weight, to test concatenation
    (tmp_path / "w1.bin").write_bytes(data[:half])
    (tmp_path / "w2.bin").write_bytes(data[half:])
    spec = {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}},
        "weightsManifest": [
            {
                "paths": ["w1.bin", "w2.bin"],
                "weights": [
                    {"name": f"sequential/{n}:0", "shape": list(w.shape), "dtype": "float32"} for n, w in weights
                ],
            }
        ],
    }
    (tmp_path / "model.json").write_text(json.dumps(spec))
    return tmp_path / "model.json"


def test_same_padding_strides_batchnorm_and_fused_activations(tmp_path):
    rng = np.random.default_rng(0)
    k1, b1 = rng.normal(size=(4, 4, 3, 5)), rng.normal(size=5)  # even kernel + stride 2: asymmetric 'same'
    k2, b2 = rng.normal(size=(3, 3, 5, 6)), rng.normal(size=6)
    gamma, beta = rng.normal(size=6), rng.normal(size=6)
    mean, var = rng.normal(size=6), rng.uniform(0.5, 2.0, size=6)
    layers = [
        {
            "class_name": "Conv2D",
            "config": {
                "name": "c1",
                "batch_input_shape": [None, 11, 9, 3],
                "filters": 5,
                "kernel_size": [4, 4],
                "strides": [2, 2],
                "padding": "same",
                "activation": "relu",
            },
        },
        {
            "class_name": "Conv2D",
            "config": {
                "name": "c2",
                "filters": 6,
                "kernel_size": [3, 3],
                "strides": [1, 1],
                "padding": "same",
                "activation": "linear",
            },
        },
        {"class_name": "BatchNormalization", "config": {"name": "bn", "axis": -1, "epsilon": 0.001}},
        {
            "class_name": "MaxPooling2D",
            "config": {"name": "pool", "pool_size": [2, 2], "strides": [2, 2], "padding": "same"},
        },
        {"class_name": "Flatten", "config": {"name": "flat"}},
        {"class_name": "Dropout", "config": {"name": "drop", "rate": 0.5}},
        {"class_name": "Dense", "config": {"name": "fc", "units": 4, "activation": "tanh"}},
        {"class_name": "Dense", "config": {"name": "out", "units": 3, "activation": "softmax"}},
    ]
    # shapes: 11x9 -> c1 (stride 2, same) 6x5 -> c2 6x5 -> pool (same) 3x3 -> 54 features
    k3, b3 = rng.normal(size=(54, 4)), rng.normal(size=4)
    k4, b4 = rng.normal(size=(4, 3)), rng.normal(size=3)
    weights = [
        ("c1/kernel", k1),
        ("c1/bias", b1),
        ("c2/kernel", k2),
        ("c2/bias", b2),
        ("bn/gamma", gamma),
        ("bn/beta", beta),
        ("bn/moving_mean", mean),
        ("bn/moving_variance", var),
        ("fc/kernel", k3),
        ("fc/bias", b3),
        ("out/kernel", k4),
        ("out/bias", b4),
    ]
    weights = [(n, w.astype(np.float32)) for n, w in weights]
    model = load_tfjs_model(_write_model(tmp_path, layers, weights))
    assert "c1_relu" in dict(model.net.named_children()) and "c1_pad" in dict(model.net.named_children())
    assert model.meta["keras_outputs"]["c1"] == "c1_relu"
    assert model.input_shape == (3, 11, 9) and model.classes is None

    x = rng.uniform(0, 1, size=(11, 9, 3)).astype(np.float32)
    w = dict(weights)
    h = np.maximum(_np_conv(x, w["c1/kernel"], w["c1/bias"], 2, "same"), 0)
    h = _np_conv(h, w["c2/kernel"], w["c2/bias"], 1, "same")
    h = (h - mean) / np.sqrt(var + 1e-3) * gamma + beta
    h = _np_maxpool_same(h, 2, 2)
    assert h.shape == (3, 3, 6)
    h = np.tanh(h.reshape(-1) @ w["fc/kernel"] + w["fc/bias"])  # Keras flattens (H, W, C)
    logits = h @ w["out/kernel"] + w["out/bias"]

    with torch.no_grad():
        ours = model.net(torch.from_numpy(x).permute(2, 0, 1)[None])[0].double().numpy()
    np.testing.assert_allclose(ours, logits, atol=1e-4, rtol=1e-4)


def test_depthwise_and_average_pooling(tmp_path):
    rng = np.random.default_rng(1)
    dk, db = rng.normal(size=(3, 3, 3, 2)).astype(np.float32), rng.normal(size=6).astype(np.float32)
    layers = [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_input_shape": [None, 6, 6, 3]}},
        {
            "class_name": "DepthwiseConv2D",
            "config": {
                "name": "dw",
                "kernel_size": [3, 3],
                "strides": [1, 1],
                "padding": "valid",
                "depth_multiplier": 2,
            },
        },
        {"class_name": "AveragePooling2D", "config": {"name": "avg", "pool_size": [2, 2], "padding": "valid"}},
        {"class_name": "GlobalMaxPooling2D", "config": {"name": "gmp"}},
    ]
    model = load_tfjs_model(_write_model(tmp_path, layers, [("dw/depthwise_kernel", dk), ("dw/bias", db)]))
    x = rng.uniform(size=(6, 6, 3)).astype(np.float32)
    # Keras depthwise: output channel c * multiplier + m uses input channel c and kernel [:, :, c, m]
    expected = np.zeros((4, 4, 6))
    for c in range(3):
        for m in range(2):
            expected[:, :, c * 2 + m] = _np_conv(
                x[:, :, c : c + 1], dk[:, :, c : c + 1, m : m + 1], db[c * 2 + m], 1, "valid"
            )[:, :, 0]
    expected = expected.reshape(2, 2, 2, 2, 6).mean(axis=(1, 3)).max(axis=(0, 1))
    with torch.no_grad():
        ours = model.net(torch.from_numpy(x).permute(2, 0, 1)[None])[0].double().numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_quantised_and_float16_weights(tmp_path):
    rng = np.random.default_rng(2)
    q = rng.integers(0, 256, size=(4, 3), dtype=np.uint8)
    scale, minimum = 0.01, -1.2
    bias = rng.normal(size=3).astype(np.float16)
    layers = [
        {"class_name": "Flatten", "config": {"name": "flat", "batch_input_shape": [None, 2, 2, 1]}},
        {"class_name": "Dense", "config": {"name": "fc", "units": 3, "activation": "linear"}},
    ]
    (tmp_path / "w.bin").write_bytes(q.tobytes() + bias.astype("<f2").tobytes())
    spec = {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Sequential", "config": {"layers": layers}}},
        "weightsManifest": [
            {
                "paths": ["w.bin"],
                "weights": [
                    {
                        "name": "fc/kernel",
                        "shape": [4, 3],
                        "dtype": "float32",
                        "quantization": {"dtype": "uint8", "scale": scale, "min": minimum},
                    },
                    {"name": "fc/bias", "shape": [3], "dtype": "float16"},
                ],
            }
        ],
    }
    (tmp_path / "model.json").write_text(json.dumps(spec))
    model = load_tfjs_model(tmp_path / "model.json")
    x = rng.uniform(size=(2, 2, 1)).astype(np.float32)
    expected = x.reshape(-1) @ (q.astype(np.float64) * scale + minimum) + bias.astype(np.float64)
    with torch.no_grad():
        ours = model.net(torch.from_numpy(x).permute(2, 0, 1)[None])[0].double().numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    assert model.input_shape == (1, 2, 2)


# -- untrusted model folders: symlinks, declared sizes, malformed configs -------------
def _outside(tmp_path: Path, name: str) -> Path:
    """A path beside (not inside) the model folder ``tmp_path``."""
    return tmp_path.parent / f"{tmp_path.name}-{name}"


def test_a_shard_symlinked_out_of_the_folder_is_refused(model_copy):
    shard = model_copy.parent / "group1-shard1of1.bin"
    secret = _outside(model_copy.parent, "secret.bin")
    secret.write_bytes(b"SECRET!!" * (shard.stat().st_size // 8))  # exactly the size the manifest declares
    shard.unlink()
    shard.symlink_to(secret)
    with pytest.raises(ConvscopeError, match=r"group1-shard1of1\.bin.*leads outside its folder"):
        load_model(model_copy)


def test_class_names_symlinked_out_of_the_folder_are_refused(model_copy):
    secret = _outside(model_copy.parent, "passwd")
    secret.write_text("".join(f"user{i}:x:{i}:{i}::/home/user{i}:/bin/sh\n" for i in range(10)))
    (model_copy.parent / "labels.txt").symlink_to(secret)
    with pytest.raises(ConvscopeError, match=r"labels\.txt.*leads outside its folder"):
        load_tfjs_model(model_copy)


def test_a_symlink_inside_the_folder_is_fine(model_copy):
    shard = model_copy.parent / "group1-shard1of1.bin"
    shard.rename(model_copy.parent / "real.bin")
    shard.symlink_to("real.bin")
    assert load_tfjs_model(model_copy).input_shape == (3, 64, 64)


def _mutated(model_copy: Path, mutate) -> Path:
    spec = json.loads(model_copy.read_text())
    mutate(spec)
    model_copy.write_text(json.dumps(spec))
    return model_copy


def _layer(spec: dict, index: int) -> dict:
    return spec["modelTopology"]["model_config"]["config"]["layers"][index]["config"]


def _weight(spec: dict, index: int) -> dict:
    return spec["weightsManifest"][0]["weights"][index]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda s: _weight(s, 0).update(shape=[1_000_000, 1_000_000]),
            r"declares 4000000078600 bytes of float32 weights, more than",
        ),
        (lambda s: _weight(s, 0).update(shape=[65536] * 4), "more than"),  # np.prod wraps to 0 in int64
        (lambda s: _weight(s, 0).update(shape=[-1, 3, 3, 10]), "sizes >= 0"),
        (lambda s: _weight(s, 0).update(shape="3x3"), "sizes >= 0"),
        (lambda s: _weight(s, 0).update(dtype=["float32"]), "not supported"),
        (lambda s: _weight(s, 0).update(quantization={"dtype": "uint8", "scale": "big", "min": 0}), "finite 'scale'"),
        (lambda s: _weight(s, 0).pop("name"), "'name' string"),
        (lambda s: _layer(s, 0).update(strides=[0, 0]), r"strides=\[0, 0\]"),
        (lambda s: _layer(s, 0).update(strides=[-2, 1]), "strides"),
        (lambda s: _layer(s, 4).update(pool_size=[2, 0]), "pool_size"),
        (lambda s: _layer(s, 0).update(dilation_rate=10**400), "dilation_rate"),
        (lambda s: _layer(s, 0).update(batch_input_shape=[None, 10**9, 64, 3]), "batch_input_shape"),
        (lambda s: _layer(s, 0).update(batch_input_shape=[None, -64, 64, 3]), "batch_input_shape"),
        (lambda s: _layer(s, 0).update(name=["conv"]), "not a usable name"),
        (lambda s: _layer(s, 0).update(name="conv.1"), "not a usable name"),
        (lambda s: _layer(s, 1).update(activation={"config": 3}), "activation"),
        (lambda s: s["modelTopology"]["model_config"]["config"]["layers"].insert(1, "Conv2D"), "layer 1 must be"),
        (
            lambda s: s["modelTopology"]["model_config"]["config"]["layers"][3].update(class_name=["ReLU"]),
            "layer 3 must be",
        ),
        (lambda s: s["modelTopology"].update(model_config=[1, 2]), "only Sequential"),
        (lambda s: s.update(weightsManifest=[{"paths": [3], "weights": []}]), "list of file names"),
        (lambda s: s.update(weightsManifest=[7]), r"weightsManifest\[0\] is not an object"),
        (lambda s: s["weightsManifest"][0].update(paths=["group1\0.bin"]), "not a valid file name"),
    ],
)
def test_malformed_model_json_is_one_line_error(model_copy, mutate, message):
    with pytest.raises(ConvscopeError, match=message) as info:
        load_tfjs_model(_mutated(model_copy, mutate))
    assert "\n" not in str(info.value) and len(str(info.value)) < 500


def test_deep_huge_or_odd_json_is_one_line_error(model_copy):
    model_copy.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConvscopeError, match="nested too deeply"):
        load_tfjs_model(model_copy)
    model_copy.write_text("1" * 5000)  # an integer Python refuses to parse
    with pytest.raises(ConvscopeError, match="not valid JSON"):
        load_tfjs_model(model_copy)
    model_copy.write_text("[1, 2]")
    with pytest.raises(ConvscopeError, match="not an object"):
        load_tfjs_model(model_copy)
    with open(model_copy, "wb") as f:  # 17 MB of whitespace: refused by its size, never parsed
        f.truncate(17 << 20)
    with pytest.raises(ConvscopeError, match="more than the 16777216"):
        load_tfjs_model(model_copy)
