"""The dataset view in headless Chromium: default model on digits.

Clicking a confusion cell shows exactly that cell's images, clicking one opens it in
the explorer with the pass's prediction, hovering an embedding point shows its
thumbnail and clicking it opens that image. The scatter's grid hit-test is checked
against brute force on 10,000 points (its timings are printed, not asserted).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from server_helpers import LiveServer, digits_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with digits_app(tmp_path_factory.mktemp("cache")) as app, LiveServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def page(live, browser):
    pg = browser.new_page(viewport={"width": 1300, "height": 900})
    pg.errors = []
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    pg.close()


def open_dataset_view(page, live) -> None:
    page.goto(live.url + "/?view=dataset")
    page.wait_for_function(
        "() => ['ready', 'error'].includes(document.body.dataset.dataset) && "
        "document.body.dataset.embedding === 'ready'",
        timeout=120_000,
    )
    assert page.evaluate("document.body.dataset.dataset") == "ready", page.locator("#dataset-view").inner_text()


def explorer_image(page) -> str:
    page.wait_for_function(
        "() => new URLSearchParams(location.search).get('image')?.startsWith('data-') && "
        "document.body.dataset.overview === 'ready'",
        timeout=60_000,
    )
    return page.evaluate("new URLSearchParams(location.search).get('image')")


def test_confusion_cell_shows_its_images_and_opens_one(page, live):
    import httpx

    open_dataset_view(page, live)
    shots = os.environ.get("CONVSCOPE_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / "dataset.png"), full_page=True)
    summary = httpx.get(live.url + "/api/models/default/dataset/test/summary").json()
    cm = np.array(summary["confusion"])
    off = cm - np.diag(np.diag(cm))
    t, p = np.unravel_index(off.argmax(), off.shape)  # the most frequent confusion
    shown = page.locator(f'table.confusion td[data-true="{t}"][data-pred="{p}"]')
    assert int(shown.inner_text()) == cm[t, p]
    shown.click()
    page.wait_for_function(f"() => document.body.dataset.cell === '{t},{p}'")
    cell = httpx.get(live.url + "/api/models/default/dataset/test/cell", params={"true": t, "pred": p}).json()
    thumbs = page.locator(".cell-box .thumb")
    assert thumbs.count() == cm[t, p] == cell["count"]
    assert [thumbs.nth(i).get_attribute("data-image") for i in range(thumbs.count())] == [
        r["image"] for r in cell["rows"]
    ]
    thumbs.first.click()
    assert explorer_image(page) == cell["rows"][0]["image"]
    assert page.evaluate("document.body.dataset.prediction") == summary["classes"][p]
    assert not page.errors, page.errors


def test_embedding_point_hover_and_click_open_that_image(page, live):
    import httpx

    open_dataset_view(page, live)
    e = httpx.get(live.url + "/api/models/default/dataset/test/embedding", params={"method": "pca"}).json()
    screen = np.array(
        page.evaluate(f"Array.from({{length: {len(e['x'])}}}, (_, i) => window.__convscopeScatter.position(i))")
    )
    d = np.sqrt(((screen[:, None] - screen[None]) ** 2).sum(-1)) + np.eye(len(screen)) * 1e9
    i = int(d.min(1).argmax())  # the most isolated point: nothing else under the mouse
    page.locator("canvas.scatter").scroll_into_view_if_needed()
    box = page.locator("canvas.scatter").bounding_box()
    x, y = box["x"] + screen[i, 0], box["y"] + screen[i, 1]
    page.mouse.move(x, y)
    tip = page.locator(".emb-tip")
    tip.wait_for(state="visible")
    assert tip.locator("img").get_attribute("src").endswith(f"/images/{i}.png")
    assert f"row {i}" in tip.inner_text()
    page.mouse.click(x, y)
    assert explorer_image(page) == f"data-test-{i}"
    assert page.evaluate("document.body.dataset.prediction") == e["classes"][e["pred"][i]]
    assert not page.errors, page.errors


def test_scatter_hit_test_on_10000_points(page, live):
    open_dataset_view(page, live)
    result = page.evaluate("""async () => {
      const { Scatter } = await import('/static/js/scatter.js');
      const cv = document.createElement('canvas');
      cv.style.width = '720px'; cv.style.height = '520px';
      document.body.appendChild(cv);
      let s = 1; const rnd = () => (s = (s * 16807) % 2147483647) / 2147483647;
      const n = 10000, pts = { x: [], y: [], label: [], correct: [] };
      for (let i = 0; i < n; i++) { pts.x.push(rnd()); pts.y.push(rnd()); pts.label.push(i % 10); pts.correct.push(i % 7 > 0); }
      const sc = new Scatter(cv, pts);
      let t = performance.now(); sc.draw(); const drawMs = performance.now() - t;
      const probes = []; for (let k = 0; k < 2000; k++) probes.push([rnd() * 720, rnd() * 520]);
      t = performance.now(); const hits = probes.map(([x, y]) => sc.hit(x, y)); const hitMs = (performance.now() - t) / probes.length;
      const brute = probes.map(([x, y]) => {
        let best = -1, bd = (sc.r + 4) ** 2;
        for (let i = 0; i < n; i++) { const d = (sc.sx[i] - x) ** 2 + (sc.sy[i] - y) ** 2; if (d <= bd) { bd = d; best = i; } }
        return best < 0 ? -1 : bd;
      });
      const dist = hits.map((i, k) => i < 0 ? -1 : (sc.sx[i] - probes[k][0]) ** 2 + (sc.sy[i] - probes[k][1]) ** 2);
      cv.remove();
      return { drawMs, hitMs, same: dist.every((d, k) => Math.abs(d - brute[k]) < 1e-6), found: hits.filter((i) => i >= 0).length };
    }""")
    print(f"\n10,000-point scatter: draw {result['drawMs']:.1f} ms, hit-test {1000 * result['hitMs']:.1f} µs per probe")
    assert result["same"] and result["found"] > 100
