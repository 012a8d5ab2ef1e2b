"""Model and checkpoint files: nothing in a file runs without trust; broken files get one clear line.

The pickle below, and the factories the checkpoints further down name, would create a
marker file if they ever ran. Every entry point (Python, ``convscope serve``,
``summary``, ``evaluate``, ``train --model`` / ``--resume``, the explorer's lazy model
loading) must refuse them with a message naming ``--trust`` and leave that file
unwritten. Small files that would make the loader allocate gigabytes, and malformed
metadata (also fuzzed), end in one :class:`ConvscopeError` line.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from train_words import train_words

from convscope.cli.main import main
from convscope.errors import ConvscopeError
from convscope.models import TinyVGG, load_checkpoint, load_model, save_checkpoint


class Payload:
    """Unpickling this calls open(marker, 'w'): the file appears if the pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")


@pytest.fixture(params=["torch-zip", "raw-pickle"])
def evil(request, tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pt"
    obj = {"format": "convscope.checkpoint", "version": 1, "meta": "{}", "state_dict": {}, "x": Payload(marker)}
    if request.param == "torch-zip":
        torch.save(obj, path)
    else:
        path.write_bytes(pickle.dumps(obj))
    return path, marker


def test_the_payload_really_runs_when_trusted(evil):
    """Control: with trust (an explicit opt-in) the same file does execute, so the refusals below mean something."""
    path, marker = evil
    try:
        load_model(str(path), trust=True)
    except Exception:
        pass
    assert marker.exists()


def test_python_refuses(evil):
    path, marker = evil
    with pytest.raises(ConvscopeError, match="refused"):
        load_model(str(path))
    assert not marker.exists()


def test_serve_refuses(evil, fake_uvicorn, capsys):
    path, marker = evil
    started = fake_uvicorn
    assert main(["serve", "--model", str(path)]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "--trust" in err and len(err.strip().splitlines()) == 1
    assert not started and not marker.exists()


def test_evaluate_refuses(evil, capsys, tmp_path):
    path, marker = evil
    assert main(["evaluate", str(path), "--offline", "--out", str(tmp_path / "eval")]) == 2
    assert "refused" in capsys.readouterr().err
    assert not marker.exists()


def test_explorer_refuses_a_lazily_loaded_model(evil):
    from fastapi.testclient import TestClient

    from convscope.server import Registry, create_app

    path, marker = evil
    reg = Registry(["default", str(path)])
    with TestClient(create_app(registry=reg), raise_server_exceptions=False) as c:
        r = c.get("/api/models/evil")
        assert r.status_code == 400 and "refused" in r.json()["detail"], r.text
        assert c.get("/api/models/evil/trace").status_code == 400
        assert c.get("/api/models/default").status_code == 200  # the other model is unaffected
    assert not marker.exists()


# -- TF.js ------------------------------------------------------------------------


def tfjs_model(folder: Path) -> Path:
    """A two-shard TF.js layers model: conv 3x3 (2 filters) -> flatten -> dense 3, on 5x5x1."""
    rng = np.random.default_rng(0)
    weights = [
        ("c/kernel", rng.normal(size=(3, 3, 1, 2))),
        ("c/bias", rng.normal(size=2)),
        ("d/kernel", rng.normal(size=(18, 3))),
        ("d/bias", rng.normal(size=3)),
    ]
    data = b"".join(w.astype("<f4").tobytes() for _, w in weights)
    (folder / "w1.bin").write_bytes(data[:100])
    (folder / "w2.bin").write_bytes(data[100:])
    layers = [
        {
            "class_name": "Conv2D",
            "config": {
                "name": "c",
                "batch_input_shape": [None, 5, 5, 1],
                "filters": 2,
                "kernel_size": [3, 3],
                "strides": [1, 1],
                "padding": "valid",
                "activation": "relu",
            },
        },
        {"class_name": "Flatten", "config": {"name": "f"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 3, "activation": "softmax"}},
    ]
    spec = {
        "format": "layers-model",
        "modelTopology": {"model_config": {"class_name": "Sequential", "config": {"name": "s", "layers": layers}}},
        "weightsManifest": [
            {
                "paths": ["w1.bin", "w2.bin"],
                "weights": [{"name": n, "shape": list(w.shape), "dtype": "float32"} for n, w in weights],
            }
        ],
    }
    (folder / "model.json").write_text(json.dumps(spec))
    return folder / "model.json"


def serve_error(spec: Path, monkeypatch, capsys) -> str:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("served a broken model"))
    monkeypatch.setattr("convscope.cli.commands.serve.check_port", lambda host, port: None)
    assert main(["serve", "--model", str(spec)]) == 2
    return capsys.readouterr().err


def test_tfjs_control_loads(tmp_path):
    assert load_model(str(tfjs_model(tmp_path))).input_shape == (1, 5, 5)


def test_tfjs_missing_shard(tmp_path, monkeypatch, capsys):
    spec = tfjs_model(tmp_path)
    (tmp_path / "w2.bin").unlink()
    assert "w2.bin" in serve_error(spec, monkeypatch, capsys)


@pytest.mark.parametrize("change", ["short", "long", "wrong-shape"])
def test_tfjs_mismatched_shards(tmp_path, monkeypatch, capsys, change):
    """Shards of the wrong size or weights of the wrong shape. (Same-size shards swapped cannot be
    detected: the TF.js manifest records no per-shard sizes or checksums.)"""
    spec = tfjs_model(tmp_path)
    w2 = tmp_path / "w2.bin"
    if change == "short":
        w2.write_bytes(w2.read_bytes()[:-8])
    elif change == "long":
        w2.write_bytes(w2.read_bytes() + b"\0" * 16)
    else:
        js = json.loads(spec.read_text())
        js["weightsManifest"][0]["weights"][2]["shape"] = [17, 3]  # the dense kernel no longer fits the layer
        js["weightsManifest"][0]["weights"].append({"name": "pad", "shape": [3], "dtype": "float32"})
        spec.write_text(json.dumps(js))
    err = serve_error(spec, monkeypatch, capsys)
    assert err.startswith("convscope") and len(err.strip().splitlines()) == 1, err
    if change in ("short", "long"):
        assert "w1.bin" in err and "w2.bin" in err


# -- code named inside a checkpoint: a factory runs only with trust ------------------
#
# A checkpoint's meta may name its architecture by a factory ("module:function" or
# "file.py:function"). Imported and called, that is code chosen by whoever wrote the
# file, so without trust it is refused; only zoo architectures rebuild by name.

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
EVIL_FACTORIES = ["subprocess:run", "os:system", "evil.py:f"]


def evil_factory_checkpoint(tmp_path: Path, factory: str) -> tuple[Path, Path, str]:
    """A checkpoint whose meta names ``factory`` so that calling it writes a marker file.

    Returns (checkpoint, marker, the factory as written in the file)."""
    marker = tmp_path / "PWNED"
    kwargs: dict = {}
    if factory == "subprocess:run":
        kwargs = {"args": f"id > {marker}", "shell": True}
    elif factory == "os:system":
        kwargs = {"command": f"id > {marker}"}
    else:  # a Python file beside the checkpoint that writes the marker when imported
        folder = tmp_path / "x"
        folder.mkdir()
        (folder / "evil.py").write_text(
            f"open({str(marker)!r}, 'w').write('ran')\n"
            "from convscope.models import TinyVGG\n"
            "def f():\n    return TinyVGG(1, 10, (28, 28))\n"
        )
        factory = f"{folder / 'evil.py'}:f"
    path = save_checkpoint(
        tmp_path / "evil-factory.pt",
        TinyVGG(1, 10, (28, 28)).state_dict(),
        {
            "architecture": {"factory": factory, "kwargs": kwargs},
            "classes": list("0123456789"),
            "dataset": {"name": "digits", "split_seed": 0},
        },
    )
    return path, marker, factory


def assert_refused(message: str, factory: str) -> None:
    assert factory in message and "--trust" in message and "trust=True" in message, message
    assert len(message.strip().splitlines()) == 1, message


@pytest.mark.parametrize("factory", EVIL_FACTORIES)
def test_a_factory_named_in_a_checkpoint_runs_only_with_trust(tmp_path, factory):
    path, marker, named = evil_factory_checkpoint(tmp_path, factory)
    with pytest.raises(ConvscopeError) as refused:
        load_model(path)
    assert_refused(str(refused.value), named)
    assert not marker.exists()
    # control: with trust the factory really is imported and called, so the refusal above means something
    try:
        load_model(path, trust=True)
    except ConvscopeError:
        pass  # subprocess.run / os.system return no nn.Module, after running
    assert marker.exists()


def test_a_trusted_user_factory_in_a_checkpoint_still_loads(tmp_path):
    path, _, _ = evil_factory_checkpoint(tmp_path, "evil.py:f")
    model = load_model(path, trust=True)
    x = torch.rand(2, 1, 28, 28)
    expected = TinyVGG(1, 10, (28, 28))
    expected.load_state_dict(torch.load(path, weights_only=True)["state_dict"])
    assert torch.equal(model.net(x), expected.eval()(x)) and model.classes == list("0123456789")


def run_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command line in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "convscope", *argv],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("command", ["summary", "evaluate"])
def test_the_cli_refuses_a_factory_named_in_a_checkpoint(tmp_path, command):
    path, marker, named = evil_factory_checkpoint(tmp_path, "subprocess:run")
    argv = [command, str(path)] + (["--offline", "--out", str(tmp_path / "ev")] if command == "evaluate" else [])
    done = run_cli(*argv, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_refused(done.stderr, named)
    assert not marker.exists()


@pytest.mark.parametrize(
    "argv",
    [["serve", "--model", "CKPT"], ["train", "--model", "CKPT", "--data", "digits", "--epochs", "1", "--no-progress"]],
)
def test_serve_and_train_refuse_a_factory_named_in_a_checkpoint(tmp_path, argv, monkeypatch, capsys):
    import uvicorn

    path, marker, named = evil_factory_checkpoint(tmp_path, "os:system")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: pytest.fail("served an untrusted model"))
    monkeypatch.setattr("convscope.cli.commands.serve.check_port", lambda host, port: None)
    argv = [str(path) if a == "CKPT" else a for a in argv]
    if argv[0] == "train":
        argv += ["--out", str(tmp_path / "run")]
    assert main(argv) == 2
    assert_refused(capsys.readouterr().err, named)
    assert not marker.exists()


def write_netfile(folder: Path) -> str:
    (folder / "netfile.py").write_text(
        "from convscope.models import TinyVGG\n\ndef make():\n    return TinyVGG(1, 10, (28, 28))\n"
    )
    return f"{folder / 'netfile.py'}:make"


def test_a_factory_the_user_types_needs_no_trust(tmp_path, capsys):
    spec = write_netfile(tmp_path)
    torch.save(TinyVGG(1, 10, (28, 28)).state_dict(), tmp_path / "w.pt")
    assert main(["summary", f"{spec}@{tmp_path / 'w.pt'}", "--json", "--size", "28", "28"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == 4440


@pytest.fixture(scope="module")
def factory_run(tmp_path_factory) -> tuple[Path, Path]:
    """A real run fine-tuned, with --trust, from a checkpoint whose architecture is the user's own factory."""
    folder = tmp_path_factory.mktemp("factory-run")
    spec = write_netfile(folder)
    start = save_checkpoint(
        folder / "start.pt",
        TinyVGG(1, 10, (28, 28)).state_dict(),
        {
            "architecture": {"factory": spec},
            "classes": [str(i) for i in range(10)],
            "preprocessing": {"size": [28, 28], "channels": 1},
        },
    )
    out = folder / "run"
    assert main(train_words(out, 1, "--trust", model=start)) == 0
    return out, folder


def test_resume_passes_trust_to_the_model_it_reloads(factory_run, capsys):
    out, _ = factory_run
    resume = ["train", "--resume", "--out", str(out), "--epochs", "2", "--no-progress"]
    assert main(resume) == 2
    assert_refused(capsys.readouterr().err, "netfile.py:make")
    assert main([*resume, "--trust"]) == 0
    assert load_checkpoint(out / "last.pt")["train_state"]["epoch"] == 2
    # its best.pt names the factory too: loading it needs trust, and with trust it works
    with pytest.raises(ConvscopeError, match="netfile.py:make"):
        load_model(out / "best.pt")
    assert load_model(out / "best.pt", trust=True).classes == [str(i) for i in range(10)]


def test_resume_never_imports_a_python_file_that_last_pt_names(tmp_path):
    """A stranger's run folder whose last.pt records ``model: /tmp/x/evil.py:f``."""
    from convscope.train import TrainConfig

    _, marker, named = evil_factory_checkpoint(tmp_path, "evil.py:f")
    out = tmp_path / "run"
    out.mkdir()
    config = TrainConfig(model=named, data="digits", out=str(out), epochs=2)
    save_checkpoint(out / "last.pt", {}, {"config": config.to_dict()}, train_state={"epoch": 1})
    done = run_cli("train", "--resume", "--out", str(out), "--no-progress", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert_refused(done.stderr, named)
    assert not marker.exists()


def test_zoo_checkpoints_load_without_trust(tmp_path):
    out = tmp_path / "run"
    assert main(train_words(out, 1)) == 0
    assert load_model(out / "best.pt").meta["architecture"]["zoo"] == "tiny-vgg"
    assert load_model("default").meta["architecture"]["zoo"] == "tiny-vgg"


def test_torchscript_needs_trust(tmp_path, capsys):
    net = TinyVGG(1, 10, (28, 28)).eval()
    path = tmp_path / "net.ts"
    torch.jit.trace(net, torch.zeros(1, 1, 28, 28)).save(str(path))
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err
    assert "TorchScript" in err and "--trust" in err and len(err.strip().splitlines()) == 1
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(load_model(path, trust=True).net(x), net(x))


# -- small files that would allocate a lot ---------------------------------------


def rezip(src: Path, dst: Path, compression: int) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info.filename))
    return dst


def test_a_compressed_checkpoint_is_refused_before_it_is_inflated(tmp_path):
    """64 MB of zeros deflate to ~64 KB; torch would inflate the member whole before any check."""
    path = save_checkpoint(tmp_path / "big.pt", {"w": torch.zeros(16 * 1024 * 1024)}, {})
    bomb = rezip(path, tmp_path / "bomb.pt", zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ConvscopeError, match="member .* is compressed"):
        load_model(bomb)
    rezip(path, tmp_path / "stored.pt", zipfile.ZIP_STORED)  # control: the same archive stored is read
    with pytest.raises(ConvscopeError, match="does not say which architecture"):
        load_model(tmp_path / "stored.pt")


def test_a_zip_member_that_claims_more_than_the_file_holds_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", TinyVGG(1, 10, (28, 28)).state_dict(), {})
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory record: its sizes sit at +20 and +24
    data[entry + 20 : entry + 28] = (2**31).to_bytes(4, "little") * 2
    path.write_bytes(bytes(data))
    with pytest.raises(ConvscopeError, match="declares more data than the file holds"):
        load_model(path)


# -- malformed metadata: one ConvscopeError line, never a traceback -----------------

ZOO = {"zoo": "tiny-vgg", "kwargs": {"in_channels": 1, "input_size": [28, 28]}}
MALFORMED_META = {
    "num_classes 3e9": {"architecture": {"zoo": "tiny-vgg", "kwargs": {"in_channels": 1, "num_classes": 3e9}}},
    "256 GB of output layer": {
        "architecture": {"zoo": "tiny-vgg", "kwargs": {"num_classes": 100_000, "input_size": [1024, 1024]}}
    },
    "negative classes": {"architecture": {"zoo": "tiny-vgg", "kwargs": {"num_classes": -1}}},
    "input too small": {"architecture": {"zoo": "tiny-vgg", "kwargs": {"input_size": [1, 1]}}},
    "input_size a number": {"architecture": {"zoo": "tiny-vgg", "kwargs": {"input_size": 28}}},
    "unknown zoo argument": {"architecture": {"zoo": "tiny-vgg", "kwargs": {"filters": 99}}},
    "channels as text": {"architecture": {"zoo": "tiny-vgg", "kwargs": {"in_channels": "1"}}},
    "kwargs a list": {"architecture": {"zoo": "tiny-vgg", "kwargs": [1, 2]}},
    "zoo name a list": {"architecture": {"zoo": ["tiny-vgg"]}},
    "architecture a string": {"architecture": "tiny-vgg"},
    "classes a string": {"architecture": ZOO, "classes": "0123456789"},
    "split seed text": {"architecture": ZOO, "dataset": {"name": "digits", "split_seed": "zero"}},  # evaluate: int()
    "preprocessing without size": {"architecture": ZOO, "preprocessing": {"channels": 1}},
    "preprocessing size 1e6": {"architecture": ZOO, "preprocessing": {"size": [10**6, 10**6], "channels": 1}},
    "preprocessing size text": {"architecture": ZOO, "preprocessing": {"size": "big", "channels": 1}},
    "preprocessing mean overflow": {"architecture": ZOO, "preprocessing": {"size": [28, 28], "mean": [10**400]}},
}


@pytest.mark.parametrize("case", list(MALFORMED_META))
def test_malformed_meta_is_one_line(case, tmp_path, capsys):
    path = save_checkpoint(tmp_path / "m.pt", TinyVGG(1, 10, (28, 28)).state_dict(), MALFORMED_META[case])
    assert main(["evaluate", str(path), "--data", "digits", "--offline", "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convscope evaluate: error:") and len(err.strip().splitlines()) == 1, err


RAW_PAYLOADS = {
    "version text": {"version": "one"},
    "meta a number": {"meta": 7},
    "meta a JSON list": {"meta": "[]"},
    "meta nested 100,000 deep": {"meta": '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"},
    "meta with a 5000-digit number": {"meta": '{"name": ' + "9" * 5000 + "}"},
    "state_dict a list": {"state_dict": [1, 2]},
    "train_state a string": {"train_state": "x"},
}


@pytest.mark.parametrize("case", list(RAW_PAYLOADS))
def test_malformed_checkpoint_payload_is_one_line(case, tmp_path, capsys):
    payload = {
        "format": "convscope.checkpoint",
        "version": 1,
        "meta": json.dumps({"architecture": ZOO}),
        "state_dict": TinyVGG(1, 10, (28, 28)).state_dict(),
        **RAW_PAYLOADS[case],
    }
    torch.save(payload, tmp_path / "m.pt")
    assert main(["summary", str(tmp_path / "m.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convscope summary: error:") and len(err.strip().splitlines()) == 1, err


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
SIDE = st.integers(-2, 70) | st.sampled_from([1024, 1025, 10**12])
KWARGS = st.fixed_dictionaries(
    {},
    optional={
        "in_channels": st.integers(-1, 70) | JSON,
        "num_classes": st.integers(-1, 200_000) | JSON,
        "input_size": st.lists(SIDE, max_size=3) | JSON,
        "activation": st.sampled_from(["relu", "tanh", "swish"]) | JSON,
        "dropout": st.floats() | JSON,
        "filters": JSON,
    },
)
ARCH = (
    st.fixed_dictionaries(
        {},
        optional={
            "zoo": st.sampled_from(["tiny-vgg", "mnist-cnn", "cifar-cnn", "nope"]) | JSON,
            "kwargs": KWARGS | JSON,
            "factory": st.sampled_from(["os:system", "subprocess:run", "x.py:f", "no-colon"]) | JSON,
        },
    )
    | JSON
)
PREP = (
    st.fixed_dictionaries(
        {},
        optional={
            "size": st.lists(SIDE, max_size=3) | JSON,
            "channels": st.integers(-1, 4) | JSON,
            "mean": st.lists(st.floats(), max_size=4) | JSON,
            "std": st.lists(st.floats(), max_size=4) | JSON,
            "resize": st.sampled_from(["shorter", "stretch"]) | JSON,
        },
    )
    | JSON
)
META = st.fixed_dictionaries(
    {},
    optional={
        "architecture": ARCH,
        "classes": st.lists(st.text(max_size=3), max_size=12) | JSON,
        "preprocessing": PREP,
        "name": st.text(max_size=8) | JSON,
        "dataset": JSON,
        "config": JSON,
        "history": JSON,
        "extra": JSON,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(meta=META)
def test_fuzzed_meta_loads_or_raises_one_convscope_error(tmp_path, meta):
    """Whatever the meta says, load_model either returns a model or raises ConvscopeError; nothing runs."""
    path = save_checkpoint(tmp_path / "fuzz.pt", TinyVGG(1, 10, (28, 28)).state_dict(), meta)
    try:
        model = load_model(path)
    except ConvscopeError as exc:
        assert len(str(exc).splitlines()) == 1, str(exc)
    else:
        assert model.meta["architecture"]["zoo"] == "tiny-vgg"
