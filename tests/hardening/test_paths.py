"""Paths: no endpoint reads a file outside what it serves, however the path is spelled."""

from __future__ import annotations

import pytest

from convscope.server.app import STATIC

SECRETS = ("def create_app", "root:x:0:0", "[build-system]")  # server/app.py, /etc/passwd, pyproject.toml

TRAVERSALS = [
    "../app.py",
    "../../../../../../etc/passwd",
    "/etc/passwd",
    "//etc/passwd",
    "..%2fapp.py",
    "%2e%2e/app.py",
    "%2e%2e%2fapp.py",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "%252e%252e%252fapp.py",
    "..%252fapp.py",
    "..\\app.py",
    "..%5capp.py",
    "%2fetc%2fpasswd",
    "....//....//etc/passwd",
    "js/../../app.py",
    "js/%2e%2e/%2e%2e/app.py",
    "%c0%ae%c0%ae/app.py",
]


def assert_safe(r) -> None:
    assert r.status_code in (400, 401, 403, 404, 405, 422), (r.request.url, r.status_code)
    for secret in SECRETS:
        assert secret not in r.text, (r.request.url, secret)


def test_the_secrets_exist_so_the_test_means_something(client):
    assert (STATIC.parent / "app.py").read_text().find("def create_app") >= 0
    assert "ApiError" in client.get("/static/js/api.js").text  # /static does serve its own files


@pytest.mark.parametrize("path", TRAVERSALS)
def test_static_cannot_leave_its_folder(client, path):
    assert_safe(client.get("/static/" + path))


@pytest.mark.parametrize("path", TRAVERSALS)
def test_image_ids_cannot_name_files(client, path):
    assert_safe(client.get(f"/api/models/default/images/{path}.png"))
    assert_safe(client.get(f"/api/models/default/images/{path}"))
    for endpoint in ("trace", "summary", "softmax"):
        assert_safe(client.get(f"/api/models/default/{endpoint}", params={"image": path}))


@pytest.mark.parametrize("path", TRAVERSALS)
def test_model_and_layer_names_cannot_name_files(client, path):
    assert_safe(client.get(f"/api/models/{path}"))
    assert_safe(client.get(f"/api/models/{path}/trace"))
    assert_safe(client.get(f"/api/models/default/layers/{path}/activations"))
    assert_safe(client.get(f"/api/models/default/layers/{path}/detail"))
    assert_safe(client.get("/api/models/default/playground", params={"layer": path}))
    assert_safe(client.get("/api/models/default/activations", params={"pages": f"{path}:0:4:float16"}))


def test_unknown_names_are_404_with_the_name(client):
    r = client.get("/api/models/default/trace", params={"image": "../../etc/passwd"})
    assert r.status_code == 404 and "../../etc/passwd" in r.json()["detail"]
    r = client.get("/api/models/default/layers/..%2f..%2fetc/detail")
    assert r.status_code == 404


def test_safe_join(tmp_path):
    from convscope.errors import NotFound
    from convscope.server.security import safe_join

    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("secret")
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "outside.txt")
    root = tmp_path / "runs"
    assert safe_join(root, "a") == (root / "a").resolve()
    assert safe_join(root, "a/../a") == (root / "a").resolve()
    for bad in (
        "../outside.txt",
        "a/../../outside.txt",
        str(tmp_path / "outside.txt"),
        "/etc/passwd",
        "link",
        "",
        "a\x00b",
    ):
        with pytest.raises(NotFound):
            safe_join(root, bad)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_explain_and_feature_routes_cannot_name_files(client, path):
    assert_safe(client.get(f"/api/models/default/layers/{path}/kernels"))
    assert_safe(client.get(f"/api/models/default/layers/{path}/visualization"))
    assert_safe(client.get("/api/models/default/explain", params={"layer": path, "metrics": "false"}))
    assert_safe(client.get("/api/models/default/explain", params={"method": path}))
    assert_safe(client.get(f"/api/jobs/{path}"))
    assert_safe(client.get(f"/api/models/default/dataset/{path}/summary"))


def test_runs_routes_cannot_leave_the_runs_folder(tmp_path):
    from fastapi.testclient import TestClient

    from convscope.server import create_app

    from hardening_helpers import make_registry

    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True)
    (runs / "a" / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1.0}\n')
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 123456.0}\n')
    (runs / "link").symlink_to(outside, target_is_directory=True)
    with TestClient(create_app(registry=make_registry(), runs=runs), raise_server_exceptions=False) as c:
        names = [r["name"] for r in c.get("/api/runs").json()["runs"]]
        assert names == ["a"]  # the symlink out of the folder is not listed
        assert c.get("/api/runs/a/metrics").status_code == 200
        for bad in [
            "../outside",
            "link",
            "a/../../outside",
            str(outside),
            "%2e%2e/outside",
            "..%2foutside",
            "%252e%252e%252foutside",
            "a/%2e%2e/%2e%2e/outside",
        ]:
            for tail in ("metrics", "snapshots/1"):
                r = c.get(f"/api/runs/{bad}/{tail}")
                assert r.status_code in (400, 404, 422), (bad, r.status_code)
                assert "123456" not in r.text
