"""Uploading an image by URL: the server fetches it, bounded, and never from its own network.

A URL upload makes the server send a request where the page says; an address that reaches
the machine itself (127.0.0.1, a real local web server here) or a private network must be
refused with a clear one-line message, and so must redirects, other schemes and bodies over
the upload cap. The positive path serves a real PNG from 127.0.0.1 with the address check
switched off in the test only (there is no public server to reach from here).
"""

from __future__ import annotations

import http.server
import socket
import threading

import numpy as np
import pytest

from convscope.server import url_fetch

from live_server import folder_site
from server_helpers import png


@pytest.fixture
def site(tmp_path):
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 12:16] = 255  # a one
    (tmp_path / "one.png").write_bytes(png(digit))
    (tmp_path / "big.png").write_bytes(b"\0" * 4096)
    requests: list[str] = []
    with folder_site(tmp_path, requests) as base:
        yield base, requests


def post(client, url: str):
    return client.post("/api/models/default/images/url", json={"url": url})


def test_loopback_url_is_refused_before_any_request(client, site):
    base, requests = site
    for url in (f"{base}/one.png", base.replace("127.0.0.1", "localhost") + "/one.png"):
        r = post(client, url)
        assert r.status_code == 400, r.text
        assert "loopback address" in r.json()["detail"] and "refused" in r.json()["detail"]
    assert requests == []  # refused after resolving, before connecting


@pytest.mark.parametrize(
    ("ip", "what"),
    [
        ("10.1.2.3", "a private address"),
        ("192.168.0.7", "a private address"),
        ("169.254.169.254", "link-local"),  # the cloud metadata address
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("fd00::1", "private"),
    ],
)
def test_private_addresses_are_refused(client, monkeypatch, ip, what):
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(family, socket.SOCK_STREAM, 6, "", (ip, 80))])
    r = post(client, "http://images.example.com/cat.png")
    assert r.status_code == 400
    assert what in r.json()["detail"] and ip in r.json()["detail"]


def test_other_schemes_are_refused(client):
    for url in ("file:///etc/passwd", "ftp://example.com/a.png", "not a url"):
        r = post(client, url)
        assert r.status_code == 400 and "only http(s) URLs" in r.json()["detail"]


@pytest.fixture
def open_loopback(monkeypatch):
    """The address check switched off (test only): 127.0.0.1 stands in for a public server."""
    monkeypatch.setattr(url_fetch, "check_address", lambda host, ip: None)


def test_fetched_image_goes_through_the_upload_store(client, site, open_loopback):
    base, requests = site
    r = post(client, f"{base}/one.png")
    assert r.status_code == 200, r.text
    image = r.json()["image"]
    assert image.startswith("upload-") and requests == ["/one.png"]
    trace = client.get("/api/models/default/trace", params={"image": image}).json()
    assert trace["prediction"]["top"][0]["name"] == "1"


def test_redirects_and_oversized_bodies_are_refused(client, site, open_loopback, monkeypatch):
    base, _ = site

    class Redirect(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"{base}/one.png")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = post(client, f"http://127.0.0.1:{server.server_address[1]}/x.png")
    finally:
        server.shutdown()
        server.server_close()
    assert r.status_code == 400 and "follow no redirects" in r.json()["detail"]
    monkeypatch.setattr(client.app.state.registry.uploads, "max_bytes", 1000)
    r = post(client, f"{base}/big.png")
    assert r.status_code == 400 and "announces 4096 bytes; the limit is 1000" in r.json()["detail"]
