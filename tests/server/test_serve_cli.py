"""``convscope serve``: arguments, the 127.0.0.1 default, warming, and the printed address."""

from __future__ import annotations

from convscope.cli.main import main


def test_serve_binds_localhost_loads_every_model_and_warms_the_first(fake_uvicorn, capsys):
    assert main(["serve", "--model", "mnist-cnn", "--model", "tiny-vgg", "--port", "8123"]) == 0
    app, kw = fake_uvicorn[0]
    assert kw["host"] == "127.0.0.1" and kw["port"] == 8123
    reg = app.state.registry
    assert list(reg.models) == ["mnist-cnn", "tiny-vgg"]
    # every model is loaded (and its fx graph built) before serving: fx patches nn.Module.__call__
    # process-wide while tracing, which must not happen while jobs run other models
    assert reg.entry("mnist-cnn").loaded and reg.entry("tiny-vgg").loaded
    assert any(key[0] == "mnist-cnn" for key in reg._traces)  # the first model's first sample is traced
    out = capsys.readouterr()
    assert "open http://127.0.0.1:8123/" in out.out and "warning" not in out.err


def test_serve_warns_on_other_addresses(fake_uvicorn, capsys):
    assert main(["serve", "--model", "mnist-cnn", "--host", "0.0.0.0"]) == 0
    assert "reachable from other machines" in capsys.readouterr().err


def test_serve_refuses_an_unknown_model(fake_uvicorn, capsys):
    assert main(["serve", "--model", "no-such-net"]) == 2
    assert "no-such-net" in capsys.readouterr().err and not fake_uvicorn
