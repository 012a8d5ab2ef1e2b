"""Network: 127.0.0.1 by default; any other address warns and requires the access token."""

from __future__ import annotations

import io
import socket

import pytest
from fastapi.testclient import TestClient

from convscope.cli.main import main
from convscope.server import create_app
from convscope.server.security import TOKEN_ENV, is_loopback, page_url, resolve_token

from hardening_helpers import make_registry

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def guarded():
    with TestClient(create_app(registry=make_registry(), token=TOKEN)) as c:
        yield c


@pytest.mark.parametrize(
    "path",
    [
        "/api/models",
        "/api/models/default",
        "/api/models/default/trace",
        "/api/models/default/images/sample-0.png",
        "/openapi.json",
        "/docs",
        "/api/nothing-here",
        "/api",
    ],
)
def test_every_api_call_needs_the_token(guarded, path):
    assert guarded.get(path).status_code == 401
    assert guarded.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert guarded.get(path, params={"token": TOKEN + "x"}).status_code == 401
    assert guarded.post(path, files={"file": ("x", b"junk")}).status_code == 401


def test_token_in_header_bearer_or_query(guarded):
    assert guarded.get("/api/models", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert guarded.get("/api/models", headers={"X-Convscope-Token": TOKEN}).status_code == 200
    assert guarded.get("/api/models", params={"token": TOKEN}).status_code == 200
    r = guarded.get("/api/models/default/trace", params={"token": TOKEN, "image": "sample-0"})
    assert r.status_code == 200 and r.json()["layers"]


def test_page_is_public_and_the_first_load_keeps_the_token():
    with TestClient(create_app(registry=make_registry(), token=TOKEN)) as c:
        assert c.get("/").status_code == 200 and "set-cookie" not in c.get("/").headers
        assert c.get("/static/js/api.js").status_code == 200
        assert c.get("/api/models").status_code == 401
        r = c.get("/", params={"token": TOKEN})
        assert r.status_code == 200 and "HttpOnly" in r.headers["set-cookie"]
        # the cookie now rides along, so plain <img src> requests of the page work
        assert c.get("/api/models/default/images/sample-0.png").status_code == 200
    with TestClient(create_app(registry=make_registry(), token=TOKEN)) as c:
        c.get("/", params={"token": "wrong"})
        assert c.get("/api/models").status_code == 401


def test_no_token_no_check(client):
    assert client.get("/api/models").status_code == 200


def test_resolve_token():
    err = io.StringIO()
    assert resolve_token("127.0.0.1", None, {}, err) is None and err.getvalue() == ""
    assert resolve_token("::1", "abc", {}, err) == "abc"
    assert resolve_token("localhost", None, {TOKEN_ENV: "env"}, err) == "env"
    assert resolve_token("0.0.0.0", "mine", {TOKEN_ENV: "env"}, err) == "mine" and "warning" in err.getvalue()
    err = io.StringIO()
    made = resolve_token("192.168.1.5", None, {}, err)
    assert made and len(made) >= 20 and made != resolve_token("192.168.1.5", None, {}, io.StringIO())
    assert "reachable from other machines" in err.getvalue() and "generated" in err.getvalue()
    assert is_loopback("127.0.0.2") and is_loopback("[::1]") and not is_loopback("0.0.0.0")
    assert page_url("0.0.0.0", 9, "t") == "http://0.0.0.0:9/?token=t"
    assert page_url("::", 9, None) == "http://[::]:9/"
    assert page_url("localhost", 9, None) == "http://127.0.0.1:9/"


@pytest.fixture()
def fake_uvicorn(fake_uvicorn, monkeypatch):
    """The root fixture, with no access token in the environment."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    return fake_uvicorn


def test_serve_defaults_to_localhost_without_token(fake_uvicorn, capsys):
    assert main(["serve", "--model", "default"]) == 0
    app, kw = fake_uvicorn[0]
    assert kw["host"] == "127.0.0.1"
    out = capsys.readouterr()
    assert "token" not in out.out and "warning" not in out.err
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:  # the address serve printed
        assert c.get("/api/models").status_code == 200
    with TestClient(app) as c:  # TestClient's own 'testserver' is no name of a real server's
        assert c.get("/api/models").status_code == 403


def test_serve_on_all_interfaces_generates_and_enforces_a_token(fake_uvicorn, capsys):
    assert main(["serve", "--model", "default", "--host", "0.0.0.0", "--port", "8765"]) == 0
    app, kw = fake_uvicorn[0]
    assert kw["host"] == "0.0.0.0"
    out = capsys.readouterr()
    assert "warning" in out.err and "reachable from other machines" in out.err
    url = next(w for w in out.out.split() if w.startswith("http://"))
    assert url.startswith("http://127.0.0.1:8765/?token=")  # an address a browser can open, not 0.0.0.0
    token = url.split("token=", 1)[1]
    others = next(line for line in out.out.splitlines() if "from other machines:" in line)
    assert f"http://{socket.gethostname()}:8765/?token={token}" in others and "0.0.0.0" not in out.out
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:  # the printed address is served
        assert c.get("/", params={"token": token}).status_code == 200
    with TestClient(app) as c:
        assert c.get("/api/models").status_code == 401
        assert c.get("/api/models", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_serve_token_from_flag_or_environment(fake_uvicorn, capsys, monkeypatch):
    assert main(["serve", "--model", "default", "--token", "flag-token"]) == 0
    monkeypatch.setenv(TOKEN_ENV, "env-token")
    assert main(["serve", "--model", "default"]) == 0
    for (app, _), token in zip(fake_uvicorn, ("flag-token", "env-token")):
        with TestClient(app, base_url="http://127.0.0.1:8000") as c:
            assert c.get("/api/models").status_code == 401
            assert c.get("/api/models", headers={"X-Convscope-Token": token}).status_code == 200
    assert "?token=flag-token" in capsys.readouterr().out


def test_serve_allow_host_adds_a_name(fake_uvicorn):
    assert main(["serve", "--model", "default", "--allow-host", "Convscope.Lan"]) == 0
    app, _ = fake_uvicorn[0]
    for url, status in [
        ("http://convscope.lan:8000", 200),
        ("http://convscope.lan", 200),
        ("http://localhost:8000", 200),
        ("http://evil.example:8000", 403),
        ("http://convscope.lan:9999", 403),
    ]:
        with TestClient(app, base_url=url) as c:
            assert c.get("/api/models").status_code == status, url


def test_serve_on_all_interfaces_answers_any_name_but_keeps_the_origin_check(fake_uvicorn):
    assert main(["serve", "--model", "default", "--host", "0.0.0.0", "--token", TOKEN]) == 0
    app, _ = fake_uvicorn[0]
    with TestClient(app, base_url="http://my-box.lan:8000", headers={"X-Convscope-Token": TOKEN}) as c:
        assert c.get("/api/models").status_code == 200  # other machines call it by any name
        url = "/api/models/default/explain"
        assert c.post(url, headers={"Origin": "http://evil.example"}).status_code == 403
        assert c.post(url, headers={"Origin": "http://my-box.lan:8000"}).status_code == 200
