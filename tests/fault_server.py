"""An HTTP server on 127.0.0.1 that misbehaves on purpose, for download tests: bodies
longer than announced or than expected, bodies that trickle a few bytes at a time. It
counts what it managed to send, so a test can check that a client stopped reading
(a plain module: tests/ has no packages)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class Route:
    """What one path answers: ``size`` bytes of ``fill``, sent ``chunk`` bytes at a time."""

    size: int
    length: int | None = None  # the Content-Length header; None sends none
    delay: float = 0.0  # seconds to wait before each chunk (a trickle)
    chunk: int = 1 << 16
    fill: bytes = b"\0"
    body: bytes | None = None  # exact bytes instead of ``size`` x ``fill``
    redirect: str | None = None  # answer 302 to this Location instead of a body

    def chunks(self) -> Iterable[bytes]:
        if self.body is not None:
            for i in range(0, len(self.body), self.chunk):
                yield self.body[i : i + self.chunk]
            return
        block = (self.fill * self.chunk)[: self.chunk]
        for start in range(0, self.size, self.chunk):
            yield block[: min(self.chunk, self.size - start)]


class FaultServer:
    """``with FaultServer({"/a": Route(...)}) as s:`` serves at ``s.url``; ``s.sent[path]`` counts bytes out."""

    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.sent: dict[str, int] = {}
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                if route.redirect is not None:
                    self.send_response(302)
                    self.send_header("Location", route.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                if route.length is not None:
                    self.send_header("Content-Length", str(route.length))
                self.end_headers()
                server.sent[self.path] = 0
                try:
                    for piece in route.chunks():
                        if route.delay:
                            time.sleep(route.delay)
                        self.wfile.write(piece)
                        self.wfile.flush()
                        server.sent[self.path] += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what a bounded download does
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
