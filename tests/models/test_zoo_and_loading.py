"""The zoo's architectures, preprocessing and safe loading, checked against independent facts."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import convscope as cs
from convscope.errors import ConvscopeError, NotFound
from convscope.models import Preprocessing, TinyVGG, build, save_checkpoint
from convscope.models.reference_nets import resnet18_shaped


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_parameter_counts_match_the_published_models():
    assert n_params(TinyVGG(3, 10, (64, 64))) == 19_920  # CNN Explainer's Tiny VGG
    assert n_params(build("mnist-cnn")) == 93_322  # TensorFlow's MNIST CNN tutorial summary
    assert n_params(build("cifar-cnn")) == 122_570  # TensorFlow's CIFAR-10 CNN tutorial summary
    assert n_params(resnet18_shaped()) == 11_689_512  # torchvision.models.resnet18


def test_tiny_vgg_shapes_follow_valid_padding():
    net = TinyVGG(1, 10, (28, 28))
    x = torch.zeros(2, 1, 28, 28)
    shapes = {}
    for name, module in net.named_children():
        x = module(x)
        shapes[name] = tuple(x.shape[1:])
    assert shapes["conv_1_1"] == (10, 26, 26)
    assert shapes["max_pool_1"] == (10, 12, 12)
    assert shapes["max_pool_2"] == (10, 4, 4)
    assert shapes["output"] == (10,)


def test_activation_choice_and_dropout():
    net = build("tiny-vgg", activation="tanh", dropout=0.5)
    kinds = {type(m).__name__ for m in net.modules()}
    assert "Tanh" in kinds and "Dropout" in kinds and "ReLU" not in kinds
    with pytest.raises(NotFound, match="unknown activation"):
        build("tiny-vgg", activation="swish")


def test_preprocessing_matches_a_hand_computation():
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)  # left half red, right half black
    prep = Preprocessing(size=(10, 10), channels=3, mean=(127.0,), std=(128.0,))
    x = prep(rgb)  # centre crop keeps columns 5..14
    assert x.shape == (3, 10, 10)
    assert torch.allclose(x[0, :, 0], torch.full((10,), (255 - 127) / 128))
    assert torch.allclose(x[0, :, -1], torch.full((10,), -127 / 128))
    back = prep.to_display(x)
    assert back.shape == (10, 10, 3) and back[0, 0, 0] == 255 and back[0, -1, 0] == 0


def test_preprocessing_handles_alpha_palette_grey_and_16_bit():
    prep = Preprocessing(size=(8, 8), channels=1)
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent -> white
    assert torch.allclose(prep(rgba), torch.ones(1, 8, 8))
    pal = Image.new("P", (8, 8))
    assert prep(pal).shape == (1, 8, 8)
    i16 = Image.fromarray(np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8))
    x = prep(i16)
    assert x.min() == 0 and x.max() == 1
    rgb = Preprocessing(size=(8, 8), channels=3)(Image.new("L", (8, 8), 51))
    assert torch.allclose(rgb, torch.full((3, 8, 8), 0.2))


def test_exif_orientation_is_honoured():
    img = Image.new("RGB", (20, 10), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 10, 10))  # white left half
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW when shown
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif)
    x = Preprocessing(size=(20, 10), channels=1, resize="stretch")(buf.getvalue())
    assert x.shape == (1, 20, 10)  # portrait after rotation
    assert x[0, :5].mean() > 0.9 and x[0, -5:].mean() < 0.1  # white half now on top


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"not an image at all", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "damaged|truncated|not an image"),
    ],
)
def test_bad_images_raise_a_clear_error(data, message):
    with pytest.raises(ConvscopeError, match=message):
        Preprocessing(size=(8, 8))(data)


def test_checkpoint_round_trip_rebuilds_the_net(tmp_path):
    net = build("tiny-vgg", in_channels=1, input_size=(28, 28))
    prep = Preprocessing(size=(28, 28), channels=1)
    meta = {
        "architecture": {"zoo": "tiny-vgg", "kwargs": {"in_channels": 1, "input_size": [28, 28]}},
        "classes": list("abcdefghij"),
        "preprocessing": prep.to_dict(),
    }
    path = save_checkpoint(tmp_path / "m.pt", net.state_dict(), meta)
    model = cs.load_model(path)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model.net(x), net.eval()(x))
    assert model.classes == list("abcdefghij") and model.preprocessing == prep


def test_a_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(ConvscopeError, match="pickled Python objects"):
        cs.load_model(path)
    assert not marker.exists()


def test_a_bare_state_dict_gets_a_hint(tmp_path):
    torch.save(build("mnist-cnn").state_dict(), tmp_path / "sd.pt")
    with pytest.raises(ConvscopeError, match="bare state_dict"):
        cs.load_model(tmp_path / "sd.pt")


def test_pickled_module_and_torchscript_need_trust(tmp_path):
    net = build("mnist-cnn").eval()
    torch.save(net, tmp_path / "full.pt")
    with pytest.raises(ConvscopeError, match="trust=True"):
        cs.load_model(tmp_path / "full.pt")
    x = torch.rand(1, 1, 28, 28)
    assert torch.equal(cs.load_model(tmp_path / "full.pt", trust=True).net(x), net(x))
    torch.jit.script(net).save(str(tmp_path / "net.ts"))  # its code runs on load, so it is trusted code too
    with pytest.raises(ConvscopeError, match="TorchScript.*trust=True"):
        cs.load_model(tmp_path / "net.ts")
    assert torch.allclose(cs.load_model(tmp_path / "net.ts", trust=True).net(x), net(x))


def test_refusals_of_other_files_are_plain_one_liners(tmp_path):
    """A whole pickled nn.Sequential: the refusal names the class torch's allow-list stopped at, with
    none of torch's terminal bold (ANSI escapes) or its 'two options' text; five bytes of text are
    'not a readable PyTorch file' with the exception's type (torch raised a bare KeyError: 101)."""
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)), tmp_path / "whole.pt")
    with pytest.raises(ConvscopeError) as refused:
        cs.load_model(tmp_path / "whole.pt")
    text = str(refused.value)
    assert "(the first: torch.nn.modules.container.Sequential)" in text and "trust=True" in text
    assert "\x1b" not in text and "two options" not in text and "\n" not in text
    (tmp_path / "junk.pt").write_bytes(b"hello")
    with pytest.raises(ConvscopeError, match=r"not a readable PyTorch file \(.*\): [A-Za-z]+Error: "):
        cs.load_model(tmp_path / "junk.pt")


def test_zoo_arguments_from_a_file_are_bounded_before_anything_is_allocated(tmp_path):
    """The limits in words: a file may ask for any zoo net up to MAX_PARAMETERS, and no more."""
    from convscope.models import zoo

    net = zoo.build_from_file("tiny-vgg", {"in_channels": 3, "num_classes": 10, "input_size": [64, 64]}, "f")
    assert n_params(net) == 19_920
    largest = {"num_classes": zoo.MAX_CLASSES, "input_size": [64, 64]}  # 1690 * 100,000 weights: 169M
    with pytest.raises(ConvscopeError, match=r"169,\d{3},\d{3} parameters"):
        zoo.build_from_file("tiny-vgg", largest, "f")
    with pytest.raises(ConvscopeError, match="from 1 to 100,000"):
        zoo.build_from_file("tiny-vgg", {"num_classes": zoo.MAX_CLASSES + 1}, "f")


def test_factory_spec_with_weights(tmp_path):
    (tmp_path / "mynets.py").write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n"
    )
    spec = f"{tmp_path / 'mynets.py'}:make"
    first = cs.load_model(spec)
    torch.save(first.net.state_dict(), tmp_path / "w.pt")
    again = cs.load_model(f"{spec}@{tmp_path / 'w.pt'}")
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(first.net(x), again.net(x))
    assert again.preprocessing.channels == 3


@pytest.mark.parametrize(
    ("wrap", "key"),
    [
        (lambda sd: {"epoch": 3, "model_state_dict": sd, "optimizer_state_dict": {}, "loss": 0.1}, "model_state_dict"),
        (lambda sd: {"epoch": 3, "state_dict": {f"model.{k}": v for k, v in sd.items()}}, "state_dict"),  # Lightning
        (lambda sd: {f"module.{k}": v for k, v in sd.items()}, None),  # saved from nn.DataParallel
    ],
)
def test_another_tools_training_checkpoint_loads_with_its_architecture(tmp_path, wrap, key):
    """PyTorch's tutorial checkpoint, Lightning's .ckpt and a DataParallel state_dict: the weights
    inside are found (and their one common prefix dropped); alone, the file says what to add."""
    (tmp_path / "mynets.py").write_text(
        "from torch import nn\n"
        "def make():\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))\n"
    )
    spec = f"{tmp_path / 'mynets.py'}:make"
    trained = cs.load_model(spec).net
    torch.save(wrap(trained.state_dict()), tmp_path / "ckpt.pt")
    loaded = cs.load_model(f"{spec}@{tmp_path / 'ckpt.pt'}").net
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(loaded(x), trained(x))
    if key is not None:
        with pytest.raises(ConvscopeError, match=f"its weights under '{key}'.*--model file.py:factory@"):
            cs.load_model(tmp_path / "ckpt.pt")


def test_unknown_names_and_missing_files():
    with pytest.raises(NotFound, match="unknown model 'resnet9000'"):
        cs.load_model("resnet9000")
    with pytest.raises(ConvscopeError, match="no such model file"):
        cs.load_model("missing/model.pt")


def test_model_batch_rejects_wrong_channels():
    model = cs.load_model("mnist-cnn")
    with pytest.raises(ConvscopeError, match="expects 1-channel input"):
        model.batch(torch.zeros(2, 3, 28, 28))


def test_efficientnet_recognises_real_photos(efficientnet, photo_coffee, photo_chelsea):
    top_coffee = efficientnet.predict(photo_coffee, top=3)[0]
    top_cat = efficientnet.predict(photo_chelsea, top=5)[0]
    assert top_coffee[0][0] == "espresso" and top_coffee[0][1] > 0.5
    assert any("cat" in name.lower() or "mau" in name.lower() for name, _ in top_cat[:3])
