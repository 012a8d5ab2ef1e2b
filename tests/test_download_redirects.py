"""Downloads follow redirects only to http(s), never from https down to http."""

from __future__ import annotations

import pytest

from convscope.io_utils import DownloadRefused, _SafeRedirects, download_to

from fault_server import FaultServer, Route


def test_a_redirect_to_another_http_path_is_followed(tmp_path):
    with FaultServer({"/moved": Route(size=0, redirect="/file"), "/file": Route(size=0, body=b"payload")}) as s:
        download_to(s.url + "/moved", tmp_path / "f", progress=False)
    assert (tmp_path / "f").read_bytes() == b"payload"


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/secret", "file:///etc/passwd"])
def test_a_redirect_to_another_scheme_is_refused(tmp_path, target):
    with FaultServer({"/moved": Route(size=0, redirect=target)}) as s:
        with pytest.raises(Exception, match="(?i)redirect"):  # ours for ftp; urllib refuses file: itself
            download_to(s.url + "/moved", tmp_path / "f", progress=False)
    assert not (tmp_path / "f").exists()


def test_https_is_never_downgraded_to_http():
    import urllib.request

    req = urllib.request.Request("https://example.org/data.gz")
    with pytest.raises(DownloadRefused, match="never https to http"):
        _SafeRedirects().redirect_request(req, None, 302, "Found", {}, "http://example.org/data.gz")
    assert _SafeRedirects().redirect_request(req, None, 302, "Found", {}, "https://mirror.example.org/x") is not None
