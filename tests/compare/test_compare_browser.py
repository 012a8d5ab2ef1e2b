"""The compare mode in headless Chromium against a real uvicorn server on 127.0.0.1: both
columns of maps and their difference per layer, the distance curve with the server's
numbers, the two-models form, and both attributions. Screenshots go to
``$CONVSCOPE_SCREENSHOTS`` when set (docs/img/compare-*.png are two of them)."""

from __future__ import annotations

import pytest

from live_server import LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live(perturbed_checkpoint):
    from convscope.server import create_app

    app = create_app(["default", str(perturbed_checkpoint)])
    with LiveServer(app) as server:
        yield server


def wait(page, key: str) -> str:
    page.wait_for_function("(k) => ['ready', 'error'].includes(document.body.dataset[k])", arg=key, timeout=90_000)
    state = page.evaluate("(k) => document.body.dataset[k]", key)
    assert state == "ready", page.locator(".compare-error").all_inner_texts()
    return state


def strips(page) -> dict[str, list[int]]:
    """Per layer strip: how many maps each of its three rows (A, B, difference) has."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.compare-strip')].map((s) =>
        [s.dataset.layer, [...s.querySelectorAll('.strip-row')].map((r) => r.querySelectorAll('canvas').length)]))""")


def shown_distances(page) -> dict[str, float]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.compare-strip')].map((s) =>
        [s.dataset.layer, Number(s.querySelector('[data-k="relative_l2"]').dataset.value)]))""")


def test_compare_mode_two_images_then_two_models(live, browser, shots):
    import httpx

    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live.url + "/?model=default&image=sample-3")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=90_000)
    page.click("#btn-compare")
    wait(page, "compare")

    b = page.locator(".compare-b").input_value()
    api = httpx.get(f"{live.url}/api/compare", params={"model": "default", "image": "sample-3", "image_b": b}).json()
    names = [row["name"] for row in api["layers"]]
    rows = strips(page)
    assert list(rows) == names  # a strip per compared layer, in the net's order
    assert rows["conv_1_1"] == [10, 10, 10] and rows["output"] == [1, 1, 1]  # A | B | difference
    assert shown_distances(page) == pytest.approx({r["name"]: r["relative_l2"] for r in api["layers"]})
    curve = page.locator("svg.compare-curve")
    assert curve.get_attribute("data-points") == str(2 * len(names))  # relative L2 and cosine per layer
    ys = page.evaluate("""() => [...document.querySelectorAll('svg.compare-curve [data-key="relative_l2"] circle')]
        .map((c) => Number(c.dataset.value))""")
    assert ys == pytest.approx([r["relative_l2"] for r in api["layers"]])
    page.click(".compare-explain")
    wait(page, "comparewhy")
    assert page.locator(".compare-why img").count() == 3
    page.locator("#compare").screenshot(path=str(shots / "compare-images.png"))

    page.locator(".compare-mode").select_option("models")
    page.wait_for_function(
        """() => document.querySelector('.compare-b')?.value === 'perturbed'
        && ['ready', 'error'].includes(document.body.dataset.compare)""",
        timeout=90_000,
    )
    wait(page, "compare")
    assert page.locator(".compare-b").input_value() == "perturbed"
    shown = shown_distances(page)
    assert all(v == 0 for k, v in shown.items() if k in ("input", "conv_1_1", "relu_1_2", "max_pool_1"))
    assert shown["conv_2_1"] > 0 and shown["output"] > 0
    page.locator("#compare").screenshot(path=str(shots / "compare-models.png"))
    assert errors == []
    page.close()
