"""Guards in front of the explorer's API: an access token, a request-body cap, safe paths.

The explorer binds 127.0.0.1 by default. Binding another address makes it reachable
from other machines, so ``convscope serve`` then requires an access token (generated
when ``--token`` / ``CONVSCOPE_TOKEN`` gives none) and prints the page's address with
it. The token is checked on every ``/api`` call (and the OpenAPI pages) in any of:

- ``Authorization: Bearer TOKEN`` or ``X-Convscope-Token: TOKEN`` (what the page sends),
- ``?token=TOKEN`` (the first load of the printed address),
- the ``convscope_token`` cookie, set when ``/?token=TOKEN`` is loaded, so that plain
  ``<img src>`` requests of the page carry it too.

Comparisons are constant-time (:func:`hmac.compare_digest`). The page and its static
files stay public: they hold no data.

:class:`BodyLimit` refuses a request body over the upload cap (HTTP 413) before the
multipart parser spools it to disk; :func:`safe_join` resolves a user-given name inside
a folder and refuses anything that would leave it.

:class:`SiteGuard` keeps other web sites out, as Jupyter's server does: a request whose
``Host`` is not this server's (DNS rebinding: evil.example resolved to 127.0.0.1) is
403; a state-changing request (POST, PUT, PATCH, DELETE) from a page on another origin
(its ``Origin`` is not this server's, or ``Sec-Fetch-Site`` says cross-site) is 403, as
is any cross-site ``/api`` request; a body that is neither JSON nor a multipart upload
is 415, so a plain cross-site ``<form>`` or ``text/plain`` fetch never starts work.
Which Host names are ours (:meth:`Hosts.for_address`): the bound address and the
loopback names ``127.0.0.1``, ``localhost``, ``[::1]``, with the server's port or none,
plus ``convscope serve --allow-host`` names; a server bound to another address
(``0.0.0.0``, a LAN address: a token is then required anyway) answers any Host name
but keeps the Origin check. :class:`SecurityHeaders` puts a strict
Content-Security-Policy, ``nosniff`` and ``Referrer-Policy: no-referrer`` on every answer.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from ..errors import ConvscopeError, NotFound

LOOPBACK = ("127.0.0.1", "localhost", "::1")
TOKEN_ENV = "CONVSCOPE_TOKEN"
COOKIE = "convscope_token"
HEADER = "x-convscope-token"
PROTECTED_PREFIXES = ("/api/", "/api", "/openapi.json", "/docs", "/redoc")
MULTIPART_SLACK = 64 * 1024  # room for the multipart boundaries and headers around the file
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")  # the Host names a local server always answers
TEST_HOST = "testserver"  # what Starlette's TestClient sends: accepted only by an app built without an address
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
BODY_TYPES = ("application/json", "multipart/form-data")  # what a cross-site <form> cannot send
CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    return host.strip("[]") in LOOPBACK or host.startswith("127.")


def resolve_token(
    host: str, token: str | None = None, environ: dict[str, str] | None = None, err: TextIO | None = None
) -> str | None:
    """The access token a server on ``host`` should require (None: no token).

    ``token`` (``--token``) wins over ``$CONVSCOPE_TOKEN``. On a non-loopback address a
    warning is printed to ``err`` and, when neither gives a token, a random one is made
    (``secrets.token_urlsafe``, 128 bits): an explorer reachable from the network is
    never open to anyone who finds the port.
    """
    env = os.environ if environ is None else environ
    err = sys.stderr if err is None else err
    token = token if token is not None else env.get(TOKEN_ENV) or None
    if token is not None and not token.strip():
        raise ConvscopeError("--token must not be empty")
    if not is_loopback(host):
        print(
            f"convscope serve: warning: binding {host} makes the explorer reachable from other machines; "
            "every API call needs the access token",
            file=err,
        )
        if token is None:
            token = secrets.token_urlsafe(16)
            print(
                "convscope serve: generated an access token (set --token or $CONVSCOPE_TOKEN to choose one)", file=err
            )
    return token


def page_url(host: str, port: int, token: str | None) -> str:
    """The address to open: loopback names as 127.0.0.1, IPv6 in brackets, the token as ?token=."""
    shown = "127.0.0.1" if host in ("127.0.0.1", "localhost") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            out[name] = value
    return out


def presented_tokens(scope: Scope) -> list[str]:
    """Every token a request carries: bearer header, X-Convscope-Token, ?token=, cookie."""
    headers = _headers(scope)
    found = []
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        found.append(auth[7:].strip())
    if HEADER in headers:
        found.append(headers[HEADER].strip())
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    found.extend(query.get("token", []))
    cookie = _cookies(headers.get("cookie", "")).get(COOKIE)
    if cookie:
        found.append(cookie)
    return found


def token_matches(scope: Scope, token: str) -> bool:
    expected = token.encode()
    return any(hmac.compare_digest(t.encode("utf-8", "replace"), expected) for t in presented_tokens(scope))


async def _send_json(send: Send, status: int, detail: str, extra_headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra_headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class TokenGuard:
    """ASGI middleware: 401 for API calls without the access token; ``/?token=`` sets the cookie."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        protected = any(path == p or path.startswith(p.rstrip("/") + "/") for p in PROTECTED_PREFIXES)
        ok = token_matches(scope, self.token)
        if protected and not ok:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            return await _send_json(
                send,
                401,
                "this explorer needs its access token: open the address "
                "`convscope serve` printed (it ends in ?token=...), or send the header "
                "'Authorization: Bearer TOKEN'",
                [(b"www-authenticate", b"Bearer")],
            )
        if path == "/" and ok:
            cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

            async def send_with_cookie(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
                await send(message)

            return await self.app(scope, receive, send_with_cookie)
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit()`` bytes with 413, before parsing.

    A declared ``Content-Length`` over the limit is refused without reading the body; a
    body sent without one (chunked) is buffered up to the limit and refused past it.
    ``limit`` is a callable so a changed upload cap takes effect at once.
    """

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        limit = self.limit()
        too_big = (
            f"the request is larger than the upload limit of {(limit - MULTIPART_SLACK) / 2**20:g} MB "
            "(convscope serve --max-upload-mb raises it)"
        )
        declared = _headers(scope).get("content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                return await _send_json(send, 400, "bad Content-Length header")
            if size > limit:
                return await _send_json(send, 413, too_big)
            return await self.app(scope, receive, send)
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > limit:
                return await _send_json(send, 413, too_big)
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay_receive() -> dict[str, Any]:
            return replay.pop() if replay else await receive()

        await self.app(scope, replay_receive, send)


@dataclass(frozen=True)
class Hosts:
    """The ``Host`` header values a server answers: ``names`` (None: any) on ``port`` (None: any)."""

    names: frozenset[str] | None
    port: int | None = None

    @classmethod
    def for_address(cls, host: str | None, port: int | None, extra: Iterable[str] = ()) -> Hosts:
        """What a server bound to ``host:port`` answers.

        A loopback address: itself, the loopback names and ``extra``, with ``port`` or no
        port. Another address (``0.0.0.0``, ``::``, a LAN address or name): any Host, as
        other machines may call it by any name (the token guards it then). No address (an
        app built by tests or embedded in one's own server): the loopback names on any
        port, and TestClient's ``testserver``.
        """
        if host is None:
            return cls(frozenset((*LOOPBACK_NAMES, TEST_HOST, *map(_bare, extra))))
        if not is_loopback(host):
            return cls(None)
        return cls(frozenset((*LOOPBACK_NAMES, _bare(host), *map(_bare, extra))), port)

    def allows(self, header: str | None) -> bool:
        if header is None:
            return False
        try:
            parts = urlsplit("//" + header.strip())
            name, port = parts.hostname, parts.port
        except ValueError:  # a bad port or bracket
            return False
        if not name or parts.path or parts.username is not None:
            return False
        if self.names is None:
            return True
        return name in self.names and (port is None or self.port is None or port == self.port)


def _bare(host: str) -> str:
    """A host name as :func:`urllib.parse.urlsplit` gives it: lower case, IPv6 without brackets."""
    return host.strip().strip("[]").lower()


def same_origin(origin: str, host: str) -> bool:
    """True when ``Origin`` names the server the request was sent to (scheme http/https, same host:port)."""
    try:
        parts = urlsplit(origin.strip())
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower() and not parts.path


def refusal(scope: Scope, hosts: Hosts) -> tuple[int, str] | None:
    """Why a request must be refused, as (status, reason), or None when it may pass."""
    headers = _headers(scope)
    host = headers.get("host")
    if not hosts.allows(host):
        return 403, (
            f"this explorer does not answer to the host name {host!r}; open it at its own address "
            "(convscope serve --allow-host NAME adds a name)"
        )
    path, method = scope.get("path", ""), scope.get("method", "GET")
    site = headers.get("sec-fetch-site", "").lower()
    if site == "cross-site" and (path == "/api" or path.startswith("/api/")):
        return 403, "cross-site requests to the explorer's API are refused"
    if method in STATE_CHANGING or scope["type"] == "websocket":
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, host):
            return 403, f"requests from another origin ({origin}) may not change anything here"
        if origin is None and site in ("cross-site", "same-site"):
            return 403, "requests from another site may not change anything here"
    if method in ("POST", "PUT", "PATCH") and _has_body(headers):
        kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if kind not in BODY_TYPES:
            return 415, f"send application/json or a multipart/form-data upload, not {kind or 'no content type'}"
    return None


def _has_body(headers: dict[str, str]) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


class SiteGuard:
    """ASGI middleware: 403 for a foreign ``Host`` or a cross-site change, 415 for a form body (see :func:`refusal`)."""

    def __init__(self, app: ASGIApp, hosts: Hosts) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refused = refusal(scope, self.hosts)
            if refused is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                return await _send_json(send, *refused)
        await self.app(scope, receive, send)


def security_headers(frame_ancestors: Iterable[str] = ()) -> tuple[tuple[bytes, bytes], ...]:
    """:data:`SECURITY_HEADERS`, with the pages that may show the explorer in a frame (CSP
    ``frame-ancestors``; none by default, so no other site can frame it: clickjacking).
    ``cs.explore`` names the loopback origins a local notebook is served from."""
    sources = " ".join(frame_ancestors)
    if not sources:
        return SECURITY_HEADERS
    csp = CSP.replace("frame-ancestors 'none'", f"frame-ancestors {sources}")
    return ((b"content-security-policy", csp.encode()), *SECURITY_HEADERS[1:])


class SecurityHeaders:
    """ASGI middleware: the Content-Security-Policy, nosniff and no-referrer headers on every answer."""

    def __init__(self, app: ASGIApp, frame_ancestors: Iterable[str] = ()) -> None:
        self.app = app
        self.headers = security_headers(frame_ancestors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(
    app: Any,
    token: str | None = None,
    max_body: Callable[[], int] | None = None,
    hosts: Hosts | None = None,
    frame_ancestors: Iterable[str] = (),
) -> None:
    """Put the guards in front of ``app``, innermost first: the body cap, the token check,
    the site guard (``hosts``: what :meth:`Hosts.for_address` gives; default, no address),
    and outermost the security headers, so that every refusal carries them too."""
    if max_body is not None:
        app.add_middleware(BodyLimit, limit=max_body)
    if token:
        app.add_middleware(TokenGuard, token=token)
    app.add_middleware(SiteGuard, hosts=hosts if hosts is not None else Hosts.for_address(None, None))
    app.add_middleware(SecurityHeaders, frame_ancestors=tuple(frame_ancestors))


def safe_join(root: str | Path, name: str) -> Path:
    """``root / name`` resolved, refused (404) when it would leave ``root``.

    For endpoints that map a user-given name to a file (run folders, cached pictures):
    absolute names, ``..`` components and symlinks pointing outside are all refused.
    """
    root_path = Path(root).resolve()
    if not name or "\x00" in name or Path(name).is_absolute() or name.startswith(("/", "\\")):
        raise NotFound(f"no such file {name!r}")
    target = (root_path / name).resolve()
    if target != root_path and root_path not in target.parents:
        raise NotFound(f"no such file {name!r}")
    return target
