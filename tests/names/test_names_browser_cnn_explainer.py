"""CNN Explainer's Tiny VGG in Chromium against a real server on 127.0.0.1 (issue #12, names):
the prediction, the class-score column and the output strip's tooltip say the class names
(CNN Explainer's published label list), not unit numbers."""

from __future__ import annotations

import pytest

from cnn_explainer import CLASSES
from live_server import LiveServer

pytestmark = pytest.mark.browser


def test_the_page_names_cnn_explainers_classes(browser, cnn_explainer_dir):
    from convscope.server import create_app

    app = create_app([str(cnn_explainer_dir / "model.json")])
    with LiveServer(app) as live:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live.url}/?model=cnn-explainer&image=sample-0")
        page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=120_000)
        trace = app.state.registry.trace("cnn-explainer", "sample-0").trace
        last = trace.layers[-1]
        logits = last.output[0]
        order = logits.argsort(descending=True).tolist()
        top = CLASSES[order[0]]
        assert top in page.locator("#prediction").inner_text()
        assert page.locator(".score .score-name").all_inner_texts() == [CLASSES[i] for i in order]  # all 10, by score
        strip = page.locator(f'canvas.neuron.strip[data-layer="{last.name}"]')
        box = strip.bounding_box()
        n = logits.numel()
        for unit in (order[0], order[-1]):
            strip.hover(position={"x": box["width"] / 2, "y": (unit + 0.5) * box["height"] / n})
            page.wait_for_function(
                "(u) => document.getElementById('tooltip').innerText.includes(`unit ${u} `)", arg=unit
            )
            assert CLASSES[unit] in page.locator("#tooltip").inner_text()
        assert errors == []
        page.close()
