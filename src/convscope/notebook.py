"""``cs.explore(model, image)``: the web explorer inline in a notebook, one call from Python.

>>> import convscope as cs
>>> m = cs.load_model("default")
>>> cs.explore(m, "digit.png")        # the last expression of a cell: the explorer in an iframe

The model object itself is served (its current weights, no file): a uvicorn server in a
background daemon thread on 127.0.0.1, on a random free port, behind a random access
token (:mod:`convscope.server.security`: the frame's first load with ``?token=`` sets an
HttpOnly cookie and the page takes the token out of its address). The page may be framed
only by loopback origins (a local Jupyter). The server stops with :meth:`Explorer.stop`,
when the Explorer is garbage-collected, or when the kernel exits (``weakref.finalize``,
which also runs at exit).

The frame's address names the host 127.0.0.1: open Jupyter at 127.0.0.1 too (the cookie
is same-site only); at ``localhost`` the page loads but its API calls are refused.
"""

from __future__ import annotations

import html
import io
import secrets
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .errors import ConvscopeError
from .models.model import Model, as_model

HOST = "127.0.0.1"
# the pages that may frame the explorer: a notebook served on this machine, on any port
NOTEBOOK_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*", "https://127.0.0.1:*", "https://localhost:*")
START_TIMEOUT_S = 30.0


class Explorer:
    """A running explorer: ``url`` (with its token), ``stop()``, and an iframe in a notebook."""

    def __init__(self, url: str, server: Any, thread: threading.Thread, height: int = 820) -> None:
        self.url, self.height = url, height
        self._server = server
        self._stop = weakref.finalize(self, _shutdown, server, thread)

    @property
    def port(self) -> int:
        return int(self.url.split(":")[2].split("/")[0])

    @property
    def running(self) -> bool:
        return self._stop.alive

    def stop(self) -> None:
        """Stop the server (idempotent); the port is closed when this returns."""
        self._stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Explorer({self.url.split('?')[0]}, {state})"

    def _repr_html_(self) -> str:
        if not self.running:
            return f"<p>{html.escape(repr(self))}</p>"
        return (
            f"<iframe src='{html.escape(self.url)}' width='100%' height='{self.height}' "
            f"style='border:1px solid #d1d9e0' title='convscope explorer'></iframe>"
        )


def explore(model: Model | Any, image: Any = None, *, port: int = 0, height: int = 820) -> Explorer:
    """Serve ``model`` (a :class:`~convscope.Model` or ``nn.Module``) in the explorer and return
    it as an :class:`Explorer` that shows itself as an iframe; ``image`` (a path, bytes, PIL
    image, uint8 array or a tensor the model takes) is the one opened first, else the model's
    first sample. ``port``: 0 picks a free one. The explorer puts the net in eval mode.
    """
    import uvicorn

    from .server import Registry, create_app

    m = as_model(model)
    registry = Registry([m.name], loader=lambda _spec: m)
    name = next(iter(registry.models))
    registry.load_all()  # before serving: fx graph preparation must not race a request
    query = {"model": name}
    if image is not None:
        query["image"] = registry.uploads.add(_image_bytes(m, image))
        registry.trace(name, query["image"])
    else:
        registry.warm(name)
    token = secrets.token_urlsafe(16)
    sock = _listen(port)
    bound = sock.getsockname()[1]
    app = create_app(registry=registry, token=token, host=HOST, port=bound, frame_ancestors=NOTEBOOK_ORIGINS)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="convscope-explore")
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise ConvscopeError(f"the explorer did not start on {HOST}:{bound}")
        time.sleep(0.02)
    url = f"http://{HOST}:{bound}/?" + urlencode({"token": token, **query})
    return Explorer(url, server, thread, height)


def _listen(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (``port`` 0: a free one), bound before the app is built
    so the app knows its own address."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ConvscopeError(f"cannot listen on {HOST} port {port}: {exc.strerror or exc}") from None
    return sock


def _shutdown(server: Any, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(timeout=10)


def _image_bytes(model: Model, image: Any) -> bytes:
    """The image as file bytes for the server's upload store: files and bytes as they are,
    PIL images, uint8 arrays and input tensors as PNG."""
    import numpy as np
    import torch
    from PIL import Image

    from .render import png_bytes

    if isinstance(image, (str, Path)):
        try:
            return Path(image).read_bytes()
        except OSError as exc:
            raise ConvscopeError(f"cannot read image {image}: {exc.strerror or exc}") from None
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, Image.Image):
        buf = io.BytesIO()
        image.save(buf, "PNG")
        return buf.getvalue()
    if isinstance(image, torch.Tensor):
        return png_bytes(model.to_display(model.batch(image)[0]))
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return png_bytes(image)
    raise ConvscopeError(
        f"explore takes an image as a path, bytes, PIL image, uint8 array or tensor, not {type(image).__name__}"
    )
