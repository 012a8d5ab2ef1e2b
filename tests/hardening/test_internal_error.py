"""A bug in a route is a one-line 500 that still carries the security headers, and is logged."""

from __future__ import annotations

import logging

from fastapi.testclient import TestClient

from convscope.server import create_app


def test_a_500_carries_the_csp_and_says_one_line(caplog):
    app = create_app(["default"])

    @app.get("/api/boom")
    def boom():
        raise ZeroDivisionError("a bug")

    with (
        caplog.at_level(logging.ERROR, logger="convscope.server.app"),
        TestClient(app, raise_server_exceptions=False) as c,
    ):
        r = c.get("/api/boom")
    assert r.status_code == 500
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    assert r.json()["detail"].startswith("internal error (ZeroDivisionError)")
    assert any("GET /api/boom failed" in rec.getMessage() and rec.exc_info for rec in caplog.records)
