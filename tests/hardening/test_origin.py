"""Other web sites stay out: a real explorer on 127.0.0.1 (as ``convscope serve`` builds it)
refuses foreign Host names (DNS rebinding), cross-site changes and form bodies, and
every answer carries the Content-Security-Policy; the page itself still works under it."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from live_server import LiveServer, free_port

EVIL = "http://evil.example"
CSP = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'"
)  # issue 11's policy


@pytest.fixture(scope="module")
def live():
    from convscope.server import create_app

    port = free_port()
    app = create_app(["default"], host="127.0.0.1", port=port)  # the address serve passes
    app.state.registry.warm()
    with LiveServer(app, port=port) as server:
        yield server


@pytest.fixture()
def http(live):
    with httpx.Client(base_url=live.url, timeout=60) as c:
        yield c


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.arange(28 * 28) % 256).astype(np.uint8).reshape(28, 28)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1.evil.example:{port}",
        "testserver",
        "127.0.0.1:{port}@evil.example",
        "localhost:1",
    ],
)
@pytest.mark.parametrize("path", ["/", "/api/models", "/static/js/main.js"])
def test_foreign_host_names_are_refused(live, http, host, path):
    r = http.get(path, headers={"Host": host.format(port=live.port)})
    assert r.status_code == 403, r.text
    assert "host name" in r.json()["detail"]


@pytest.mark.parametrize(
    "host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}", "localhost", "127.0.0.1"]
)
def test_own_and_loopback_names_are_answered(live, http, host):
    assert http.get("/api/models", headers={"Host": host.format(port=live.port)}).status_code == 200


@pytest.mark.parametrize("origin", [EVIL, "http://localhost:1", "null", "http://127.0.0.1.evil.example"])
def test_posts_from_another_origin_are_refused(live, http, origin):
    upload = http.post(
        "/api/models/default/images", files={"file": ("x.png", png_bytes(), "image/png")}, headers={"Origin": origin}
    )
    job = http.post(
        "/api/models/default/explain", params={"method": "saliency", "metrics": "false"}, headers={"Origin": origin}
    )
    cancel = http.delete("/api/jobs/job-1", headers={"Origin": origin})
    assert [upload.status_code, job.status_code, cancel.status_code] == [403, 403, 403]
    assert "another origin" in job.json()["detail"]


def test_cross_site_fetch_metadata_is_refused(http):
    """No-cors fetches and <img> from another site say so in Sec-Fetch-Site, Origin or not."""
    assert http.get("/api/models", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert http.post("/api/models/default/explain", headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
    assert http.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200  # a link to the page is fine


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", None])
def test_form_bodies_are_refused_with_415(http, kind):
    """What a cross-site <form> or a 'simple' fetch can send never reaches a route."""
    headers = {"Content-Type": kind} if kind else {}
    r = http.post("/api/models/default/explain", content=b'{"method": "saliency"}', headers=headers)
    assert r.status_code == 415, r.text
    assert "application/json" in r.json()["detail"]


def test_same_origin_requests_work(live, http):
    own = {"Origin": live.url, "Sec-Fetch-Site": "same-origin"}
    job = http.post(
        "/api/models/default/explain", params={"method": "saliency", "metrics": "false"}, json={}, headers=own
    )
    assert job.status_code == 200 and job.json()["kind"] == "explain"
    bare = http.post("/api/models/default/explain", params={"method": "gradcam", "metrics": "false"}, headers=own)
    assert bare.status_code == 200  # the page's job POSTs carry no body
    assert http.delete(f"/api/jobs/{bare.json()['id']}", headers=own).status_code == 200
    up = http.post("/api/models/default/images", files={"file": ("x.png", png_bytes(), "image/png")}, headers=own)
    assert up.status_code == 200 and up.json()["image"].startswith("upload-")
    assert http.post("/api/models/default/explain", headers={"Content-Type": "application/json"}).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/static/js/main.js",
        "/api/models",
        "/api/no-such-thing",
        "/docs",
        "/openapi.json",
        "/api/models/default/images/sample-0.png",
    ],
)
def test_every_answer_carries_the_security_headers(http, path):
    r = http.get(path)
    assert r.status_code == (404 if "no-such" in path else 200)
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_refusals_carry_the_security_headers_too(http):
    r = http.get("/api/models", headers={"Host": "evil.example"})
    assert r.status_code == 403 and r.headers["content-security-policy"] == CSP


def test_the_docs_page_has_no_inline_script(http):
    html = http.get("/docs").text
    assert "<script>" not in html and 'src="/swagger-ui/convscope-init.js"' in html
    js = http.get("/swagger-ui/convscope-init.js")
    assert (
        js.status_code == 200
        and "SwaggerUIBundle(" in js.text
        and js.headers["content-type"].startswith("text/javascript")
    )


@pytest.mark.browser
def test_the_page_works_under_the_policy(live, browser, tmp_path):
    """The real page on its real address: it draws, uploads through its file input and runs
    a job with its own code, with no CSP violation and no refused request."""
    picture = tmp_path / "digit.png"
    picture.write_bytes(png_bytes())
    page = browser.new_page()
    problems: list[str] = []
    answers: list[tuple[str, int, str]] = []
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("response", lambda r: answers.append((r.request.method, r.status, r.url)))
    try:
        page.goto(live.url + "/")
        page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=60_000)
        page.set_input_files("#upload", str(picture))
        page.wait_for_function("() => document.getElementById('input-preview').src.includes('upload-')", timeout=30_000)
        job = page.evaluate("""async () => {
            const jobs = await import('/static/js/jobs.js');
            return (await jobs.runJob('/api/models/default/explain?method=saliency&metrics=false', null, 'x')).status;
        }""")
    finally:
        page.close()
    assert job == "done"
    assert not problems, problems
    posts = {u.split("?")[0].rsplit("/", 1)[-1] for m, _, u in answers if m == "POST"}
    assert {"images", "explain"} <= posts, answers
    assert all(s < 400 for _, s, _ in answers), [a for a in answers if a[1] >= 400]
