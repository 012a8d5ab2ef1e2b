"""Fetch an image the user names by URL, on the server, without becoming a way into its network.

A URL upload makes the server send a request wherever the page asks, so the fetch refuses
what would reach the machine itself or its private network: after resolving the host,
every address it resolves to must be public (no loopback, private, link-local, multicast,
reserved or unspecified address). The connection then goes to the very address that was
checked (the Host header and, for https, the certificate name stay the host's), so a name
that resolves differently a moment later (DNS rebinding) cannot slip past the check.
Redirects are refused rather than followed: each hop would need the same check, and a
user can paste the final address. The body is bounded in size (the upload cap) and the
whole fetch in time.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
import urllib.parse

from ..errors import ConvscopeError

DEADLINE_S = 10.0  # the whole fetch: connect, headers and body
CHUNK = 1 << 16


class UrlRefused(ConvscopeError):
    """The URL may not be fetched: its scheme, its address, a redirect, its size or its pace."""


def address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why the server must not connect to ``ip`` ("a loopback address"), or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_problem(ip.ipv4_mapped)
    for test, what in (
        ("is_loopback", "a loopback address"),  # the narrower kinds first: Python counts them private too
        ("is_link_local", "a link-local address"),
        ("is_unspecified", "an unspecified address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(ip, test):
            return what
    return None if ip.is_global else "not a public address"


def check_address(host: str, ip: str) -> None:
    """Refuse ``ip`` (what ``host`` resolved to) unless it is a public address."""
    problem = address_problem(ipaddress.ip_address(ip.split("%")[0]))
    if problem:
        raise UrlRefused(
            f"refused: {host} is {ip}, {problem}; URL uploads fetch only from public addresses "
            "(upload the file instead)"
        )


def resolve(host: str, port: int) -> str:
    """The one address of ``host`` to connect to, after checking every address it resolves to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise UrlRefused(f"cannot resolve {host!r}: {e.strerror or e}") from None
    ips = list(dict.fromkeys(info[4][0] for info in infos))
    for ip in ips:
        check_address(host, ip)
    return ips[0]


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address, verifying the certificate for the URL's host name."""

    def __init__(self, ip: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.ip = ip

    def connect(self) -> None:
        sock = socket.create_connection((self.ip, self.port), self.timeout)
        self.sock = self.pinned = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTP(http.client.HTTPConnection):
    """Plain HTTP to a checked address (the Host header stays the URL's host)."""

    def __init__(self, ip: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.ip = ip

    def connect(self) -> None:
        self.sock = self.pinned = socket.create_connection((self.ip, self.port), self.timeout)


def fetch(url: str, max_bytes: int, deadline: float = DEADLINE_S) -> bytes:
    """The body of ``url`` (http or https, a public address, no redirect), at most ``max_bytes``
    long, read within ``deadline`` seconds; anything else raises :class:`UrlRefused`."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefused(f"only http(s) URLs can be fetched, not {url[:200]!r}")
    host, https = parts.hostname, parts.scheme == "https"
    try:
        port = parts.port or (443 if https else 80)
    except ValueError:
        raise UrlRefused(f"{url[:200]!r} has no valid port") from None
    started = time.monotonic()
    ip = resolve(host, port)
    conn = (_PinnedHTTPS if https else _PinnedHTTP)(ip, host, port, timeout=deadline)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request("GET", target, headers={"User-Agent": "convscope", "Accept": "image/*"})
        response = conn.getresponse()
        if 300 <= response.status < 400:
            raise UrlRefused(
                f"{url[:200]} redirects to {response.getheader('Location', '?')[:200]}; URL uploads follow "
                "no redirects: give the image's own address"
            )
        if response.status != 200:
            raise UrlRefused(f"{url[:200]} answered HTTP {response.status} {response.reason}")
        declared = response.getheader("Content-Length", "")
        if declared.strip().isdigit() and int(declared) > max_bytes:
            raise UrlRefused(f"{url[:200]} announces {int(declared)} bytes; the limit is {max_bytes}")
        body = bytearray()
        while True:
            left = deadline - (time.monotonic() - started)
            if left <= 0:
                raise UrlRefused(f"{url[:200]} took longer than {deadline:g} s; fetch stopped")
            conn.pinned.settimeout(left)  # no read waits past the deadline (conn.sock is gone once the body is in)
            chunk = response.read1(CHUNK)
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > max_bytes:
                raise UrlRefused(f"{url[:200]} sent more than the {max_bytes} bytes allowed; fetch stopped")
    except (OSError, http.client.HTTPException) as e:
        raise UrlRefused(f"could not fetch {url[:200]}: {e}") from None
    finally:
        conn.close()
