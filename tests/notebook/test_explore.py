"""``cs.explore`` in a real notebook: a headless kernel (nbclient) runs the cells, the cell's
HTML output is put in a page served from another loopback port (as Jupyter serves it) and
opened in Chromium, where the iframe must show the explorer's overview; when the kernel
shuts down, the explorer's port is closed."""

from __future__ import annotations

import html
import http.server
import re
import socket
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELL = 'import convscope as cs\nm = cs.load_model("default")\ne = cs.explore(m)\ne'


class NotebookPage:
    """A page holding one cell's HTML output, served on 127.0.0.1 like a local Jupyter."""

    def __init__(self, body: str) -> None:
        page = f"<!doctype html><html><body><div class=output>{body}</div></body></html>".encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_explore_runs_inline_in_a_notebook_and_stops_with_the_kernel(browser, tmp_path):
    nbformat = pytest.importorskip("nbformat", reason="the notebook test needs nbformat (the test extra)")
    nbclient = pytest.importorskip("nbclient", reason="the notebook test needs nbclient and ipykernel (the test extra)")
    from convscope.server import Registry

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        client.execute_cell(nb.cells[0], 0)
        (result,) = [o for o in nb.cells[0].outputs if o.output_type == "execute_result"]
        frame_html = result.data["text/html"]
        url = html.unescape(re.search(r"<iframe src='([^']+)'", frame_html).group(1))
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.port and port_open(parts.port)
        assert parse_qs(parts.query)["model"] == ["default"] and len(parse_qs(parts.query)["token"][0]) >= 16
        notebook = NotebookPage(frame_html)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and errors.append(m.text))
        try:
            page.goto(notebook.url)
            frame = page.wait_for_selector("iframe").content_frame()
            frame.wait_for_function(
                "() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=120_000
            )
            assert frame.evaluate("document.body.dataset.overview") == "ready", errors
            trace = Registry(["default"]).trace("default", "sample-0").trace
            columns = [r for r in trace.layers if r.output is not None and r.output.dim() >= 2]
            assert frame.locator(".column").count() == len(columns) + 1  # + the class scores
            assert "token" not in frame.url  # the page took its token out of the address
            assert errors == []
        finally:
            page.close()
            notebook.close()
    assert not port_open(parts.port)  # the kernel is gone, and its explorer with it
