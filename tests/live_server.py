"""A real uvicorn server on 127.0.0.1 in a background thread, and how Chromium is started:
shared by every test that drives the real page; and a plain static web folder on 127.0.0.1
for the download tests (a plain module: tests/ has no packages)."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Debian's chromium as root in a closed network: no sandbox, no GPU, no background requests
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def folder_site(root: str | Path, requests: list[str] | None = None) -> Iterator[str]:
    """Serve the files under ``root`` over http on 127.0.0.1; yields the base URL (no trailing
    slash). ``requests`` collects the paths asked for, in order."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            if requests is not None:
                requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def wait_for_job(client, job: dict, seconds: float = 120.0) -> dict:
    """Poll ``/api/jobs/{id}`` until the job ends (done, failed or cancelled); fail past ``seconds``."""
    deadline = time.time() + seconds
    while job["status"] not in ("done", "failed", "cancelled"):
        assert time.time() < deadline, job
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}").json()
    return job


class LiveServer:
    """uvicorn serving an app on 127.0.0.1 in a background thread."""

    def __init__(self, app, port: int | None = None) -> None:
        import uvicorn

        self.port = port or free_port()  # give the port when the app must know its own address
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise RuntimeError("the explorer server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serving(*models: str) -> Iterator[LiveServer]:
    """The explorer for ``models`` (default: the default model), warmed, on a free loopback port."""
    from convscope.server import create_app

    app = create_app(list(models or ("default",)))
    app.state.registry.warm()
    with LiveServer(app) as server:
        yield server
