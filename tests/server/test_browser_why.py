"""The Why? and What does it look for? panels in headless Chromium against a real uvicorn
server on 127.0.0.1: Grad-CAM's overlay drawn and the metrics shown with the server's
numbers, the sanity check run, a feature visualisation run, cancelled, and loaded from
the disk cache.

Screenshots go to ``$CONVSCOPE_SCREENSHOTS`` when set (else a temp dir);
``docs/img/explorer-why.png`` and ``docs/img/explorer-lookfor.png`` are two of them::

    CONVSCOPE_SCREENSHOTS=/tmp/shots python -m pytest -q tests/server/test_browser_why.py
"""

from __future__ import annotations

import numpy as np
import pytest

from convscope import explain, features
from convscope.explain.interpret import describe_metrics
from convscope.render.heatmap import overlay

from server_helpers import LiveServer, digits_dataset

pytestmark = pytest.mark.browser
STEPS = 24  # the page's default optimisation steps on this server: quick
LAYER, CHANNEL = "conv_2_2", 3


@pytest.fixture(scope="module")
def live(registry, tmp_path_factory):
    from convscope.server import create_app

    app = create_app(registry=registry)
    app.state.explain.cache_dir = tmp_path_factory.mktemp("features")
    app.state.explain.data = digits_dataset()
    app.state.explain.steps = STEPS
    registry.warm("default")
    with LiveServer(app) as server:
        yield server


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    wait(page, "overview")
    return page, errors


def wait(page, key: str, states=("ready",), timeout: float = 90_000) -> str:
    done = list(states) + ["error"]
    page.wait_for_function(f"() => {done!r}.includes(document.body.dataset.{key})", timeout=timeout)
    state = page.evaluate(f"document.body.dataset.{key}")
    assert state in states, page.locator(".why-error").all_inner_texts()
    return state


def value(page, key: str) -> float:
    return float(page.locator(f'[data-k="{key}"]').first.get_attribute("data-value"))


def drawn_pixels(page, selector: str) -> np.ndarray:
    """The RGB pixels of an <img> as the browser decoded them (through a canvas)."""
    data = page.evaluate(
        """(sel) => {
        const img = document.querySelector(sel);
        const c = document.createElement("canvas");
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext("2d");
        ctx.drawImage(img, 0, 0);
        return [c.width, c.height, Array.from(ctx.getImageData(0, 0, c.width, c.height).data)];
    }""",
        selector,
    )
    w, h, rgba = data
    return np.array(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3]


def test_why_panel_grad_cam_overlay_metrics_and_sanity(live, browser, shots, registry):
    page, errors = open_page(browser, live.url + "/?model=default&image=sample-3")
    model = registry.entry("default").model
    x = registry.input_batch("default", "sample-3")
    page.click("#btn-why")
    wait(page, "why")
    predicted = int(model.net(x).detach().argmax())
    assert page.input_value("#why-method") == "gradcam" and page.input_value("#why-layer") == "max_pool_2"
    assert page.input_value("#why-class") == str(predicted)
    direct = explain.GradCAM(model)(x)
    expected = overlay(model.to_display(x[0]), direct.numpy()[0])
    assert np.array_equal(drawn_pixels(page, "#why .why-overlay"), expected)  # the overlay, pixel for pixel
    wait(page, "whymetrics")
    d = explain.deletion(model, x, direct, steps=32)
    i = explain.insertion(model, x, direct, steps=32)
    assert value(page, "deletion_auc") == pytest.approx(float(d.auc[0]), rel=1e-6)
    assert value(page, "insertion_auc") == pytest.approx(float(i.auc[0]), rel=1e-6)
    shown = float(page.locator('[data-k="deletion_auc"]').inner_text())
    assert shown == pytest.approx(float(d.auc[0]), rel=1e-3)
    assert page.locator("#why svg.why-curves path").count() >= 2
    assert page.locator("#why .why-reading").inner_text() == describe_metrics(d.fractions, d.scores[0], i.scores[0])
    # another class: the map follows
    page.select_option("#why-class", "5")
    page.wait_for_function("() => document.querySelector('#why .why-ov figcaption').innerText.endsWith('5')")
    wait(page, "why")
    five = overlay(model.to_display(x[0]), explain.GradCAM(model)(x, 5).numpy()[0])
    assert np.array_equal(drawn_pixels(page, "#why .why-overlay"), five)
    wait(page, "whymetrics")
    page.select_option("#why-class", str(predicted))  # back to the prediction: answered from the server's cache
    wait(page, "whymetrics")
    assert np.array_equal(drawn_pixels(page, "#why .why-overlay"), expected)
    page.click("#why-sanity")
    wait(page, "sanity")
    rows = page.locator(".sanity-table tbody tr")
    assert rows.count() == 1 + len(explain.sanity.randomization_groups(model.net, x))
    assert value(page, "spearman") == pytest.approx(1.0)
    assert page.locator(".sanity-figure").evaluate("img => img.naturalWidth") > 400
    verdicts = explain.sanity_check(model, x, ["gradcam"], predicted, "max_pool_2", progress=False).verdicts
    shown = page.locator(".sanity-verdicts li").all_inner_texts()
    assert shown == [f"{m}: {why}" for m, (_, why) in verdicts.items()]
    page.locator("#why").screenshot(path=str(shots / "why.png"))
    # another input: the open panel explains it, for its own predicted class
    page.click('#samples [data-image="sample-6"]')
    page.wait_for_function("() => document.querySelector('#why .why-figure.why-in img')?.src.includes('sample-6')")
    wait(page, "why")
    x6 = registry.input_batch("default", "sample-6")
    six = explain.GradCAM(model)(x6)
    assert page.input_value("#why-class") == str(int(six.targets[0]))
    assert np.array_equal(drawn_pixels(page, "#why .why-overlay"), overlay(model.to_display(x6[0]), six.numpy()[0]))
    assert errors == []


def test_look_for_run_cancel_and_load_a_finished_one(live, browser, shots, registry):
    page, errors = open_page(browser, live.url + "/?model=default&image=sample-3")
    model = registry.entry("default").model
    page.locator(f'canvas.neuron[data-layer="{LAYER}"][data-channel="{CHANNEL}"]').click()
    wait(page, "detail")
    page.click(".lookfor-offer")
    wait(page, "lookfor")
    # not cached yet: the page optimised it (STEPS steps) with a progress bar, then shows it
    wait(page, "featvis")
    direct = features.visualize(model, LAYER, [CHANNEL], steps=STEPS)
    img = "#lookfor .lookfor-image"
    assert page.get_attribute(img, "data-cached") == "false"
    assert np.array_equal(drawn_pixels(page, img), np.repeat(direct.images[0], 3, -1))
    assert value(page, "vis-value") == pytest.approx(float(direct.values[0]), rel=1e-5)
    w = model.net.conv_2_2.weight[CHANNEL].detach()
    assert value(page, "scale") == pytest.approx(float(w.abs().max()), rel=1e-6)
    assert value(page, "bias") == pytest.approx(float(model.net.conv_2_2.bias[CHANNEL].detach()), rel=1e-6)
    wait(page, "examples")
    assert page.locator(".lookfor-examples-img").evaluate("img => img.naturalWidth") > 0
    page.locator("#lookfor").screenshot(path=str(shots / "lookfor.png"))
    # a long optimisation, cancelled from the page: the server's job stops and nothing is cached
    page.select_option("#lookfor-steps", "2048")
    wait(page, "featvis", ("running",), timeout=10_000)
    page.wait_for_function("() => document.querySelector('#lookfor .job-text')?.innerText.includes('%')")
    job_id = page.get_attribute("#lookfor .lookfor-vis .why-progress", "data-job")
    page.click("#lookfor .task-cancel")
    wait(page, "featvis", ("cancelled",))
    assert page.locator("#lookfor .lookfor-run").is_visible()
    assert "cancelled" in page.locator("#lookfor .lookfor-vis").inner_text()
    job = live.app.state.jobs.get(job_id)
    assert job.kind == "visualization" and job.status == "cancelled" and job.done < job.total == 2048
    # back to the finished one: read from the disk cache, no new job
    before = len(live.app.state.jobs)
    page.select_option("#lookfor-steps", str(STEPS))
    wait(page, "featvis")
    assert page.get_attribute(img, "data-cached") == "true"
    assert np.array_equal(drawn_pixels(page, img), np.repeat(direct.images[0], 3, -1))
    assert len(live.app.state.jobs) == before
    assert errors == []
