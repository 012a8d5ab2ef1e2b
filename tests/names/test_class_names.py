"""Class names: known published models get theirs, any model takes ``--classes FILE`` / ``classes=``."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from convscope.cli.main import main
from convscope.errors import ConvscopeError
from convscope.models import load_model
from convscope.server import create_app

from cnn_explainer import CLASSES

DIGITS = [f"digit {i}" for i in range(10)]


def test_cnn_explainers_model_is_recognised_by_its_weights(cnn_explainer_dir, tmp_path):
    # a copy under another folder name, no sidecar class file: the weights alone name it
    for name in ("model.json", "group1-shard1of1.bin"):
        (tmp_path / name).write_bytes((cnn_explainer_dir / name).read_bytes())
    model = load_model(tmp_path / "model.json")
    assert model.classes == CLASSES
    assert model.predict(cnn_explainer_dir / "images" / "espresso_1.jpeg")[0][0][0] == "espresso"


def test_the_explorer_names_espresso(cnn_explainer_dir):
    c = TestClient(create_app([str(cnn_explainer_dir / "model.json")]))
    data = (cnn_explainer_dir / "images" / "espresso_1.jpeg").read_bytes()
    image = c.post("/api/models/cnn-explainer/images", files={"file": ("espresso_1.jpeg", data)}).json()["image"]
    assert c.get("/api/models/cnn-explainer").json()["classes"] == CLASSES
    trace = c.get("/api/models/cnn-explainer/trace", params={"image": image}).json()
    assert trace["prediction"]["top"][0]["name"] == "espresso"
    assert trace["prediction"]["names"] == CLASSES  # the output strip (index order) is labelled unit by unit
    rows = c.get("/api/models/cnn-explainer/softmax", params={"image": image}).json()["rows"]
    assert rows[0]["name"] == "espresso"


def test_convscope_explain_names_espresso(cnn_explainer_dir, tmp_path, capsys):
    image = cnn_explainer_dir / "images" / "espresso_1.jpeg"
    assert (
        main(
            [
                "explain",
                str(image),
                "--model",
                str(cnn_explainer_dir / "model.json"),
                "--layers",
                "conv_1_1",
                "--out",
                str(tmp_path / "out"),
                "--no-progress",
            ]
        )
        == 0
    )
    first = capsys.readouterr().out.splitlines()[1]
    assert first.split()[:2] == ["1.", "espresso"]


def _write(tmp_path, kind: str, names: list[str]):
    if kind == "json":
        path = tmp_path / "names.json"
        path.write_text(json.dumps(names))
    else:
        path = tmp_path / "names.txt"
        path.write_text("\n".join(names) + "\n")
    return path


@pytest.mark.parametrize("kind", ["json", "lines"])
@pytest.mark.parametrize(
    ("command", "check"),
    [
        (["explain", "{digit}", "--layers", "conv_1_1", "--out", "{out}", "--no-progress"], "explain"),
        (["attribute", "{digit}", "--method", "saliency", "--out", "{out}", "--no-progress"], "attribute"),
        (["serve", "--model", "default"], "serve"),
    ],
)
def test_classes_file_names_the_units_on_every_command(kind, command, check, tmp_path, capsys, fake_uvicorn):
    from PIL import Image

    from convscope.server.images import mnist_digits

    digit = tmp_path / "digit.png"
    Image.fromarray(mnist_digits()[0][1]).save(digit)
    names = _write(tmp_path, kind, DIGITS)
    argv = [a.format(digit=digit, out=tmp_path / "out") for a in command] + ["--classes", str(names)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    if check == "explain":
        assert out.splitlines()[1].split()[1] == "digit"
    elif check == "serve":
        app, _ = fake_uvicorn[-1]
        info = TestClient(app, base_url="http://127.0.0.1:8000").get("/api/models/default").json()
        assert info["classes"] == DIGITS
    else:
        assert re.search(r"explaining class \d \(digit \d\)", out)


def test_classes_in_python():
    assert load_model("default", classes=DIGITS).classes == DIGITS
    with pytest.raises(ConvscopeError, match="3 class names but default has 10 output units"):
        load_model("default", classes=["a", "b", "c"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such class-name file"),
        (["a", "b"], "2 class names but default has 10 output units"),
        ([str(i) for i in range(11)], "11 class names but default has 10 output units"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_a_bad_classes_file_is_one_line(content, message, tmp_path, capsys):
    path = tmp_path / "names.json"
    if isinstance(content, list):
        path.write_text(json.dumps(content))
    elif content is not None:
        path.write_text(content)
    assert main(["summary", "--model", "default", "--classes", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_read_classes_bounds_the_file(tmp_path):
    from convscope.models.class_names import read_classes

    path = tmp_path / "huge.txt"
    path.write_text("x\n" * (1 << 20))
    with pytest.raises(ConvscopeError, match="more than"):
        read_classes(path)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("names.txt", "\n".join(DIGITS[:3]) + "\n\n" + "\r\n".join(DIGITS[3:]) + "\r\n\n"),
        ("names.json", json.dumps(DIGITS)),
        ("names-json.txt", json.dumps(DIGITS)),  # a JSON list under a .txt name
    ],
)
def test_a_classes_file_saved_with_a_byte_order_mark(name, body, tmp_path):
    """Notepad / Excel "UTF-8" files start with a BOM; blank lines and CRLF are not names either."""
    from convscope.models.class_names import read_classes

    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    assert read_classes(path) == DIGITS
    assert main(["summary", "--model", "default", "--classes", str(path)]) == 0
