"""The sentences the server composes, shown in the reader's language (issue 12), in headless
Chromium on a real server: the Why? panel's reading of its deletion/insertion curves, the
sanity check's verdicts and the polarity warning for a dark-on-light 7 uploaded into the
default model. A browser asking for Chinese gets each in Chinese, one asking for English
gets the English sentence the API and the CLI print; the expected text is computed here from
the model itself (Grad-CAM, the curves, the cascading randomisation, the input check) and put
in words by convscope.i18n, the catalogues the page reads too.

A screenshot of the Chinese Why? panel goes to ``$CONVSCOPE_SCREENSHOTS`` (else a temp dir).
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from convscope import explain
from convscope.explain.interpret import reading_message, sanity_message
from convscope.i18n import text
from convscope.models.checks import input_warnings
from convscope.server.explain_views import METRIC_STEPS
from convscope.server.images import mnist_digits

from live_server import serving

pytestmark = pytest.mark.browser
CJK = re.compile(r"[\u4e00-\u9fff]")
IMAGE = "sample-3"


@pytest.fixture(scope="module")
def live():
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def expected(live):
    """The three kinds of messages for this page, computed without the server's routes."""
    reg = live.app.state.registry
    model, x = reg.entry("default").model, reg.input_batch("default", IMAGE)
    cam = explain.GradCAM(model)(x)  # the panel's default: Grad-CAM at max_pool_2, the predicted class
    d = explain.deletion(model, x, cam, steps=METRIC_STEPS, progress=False)
    i = explain.insertion(model, x, cam, steps=METRIC_STEPS, progress=False)
    predicted = int(cam.targets[0])
    report = explain.sanity_check(model, x, ["gradcam"], predicted, "max_pool_2", progress=False)
    seven = 255 - dict(mnist_digits())["7"]
    (warning,) = input_warnings(model, Image.fromarray(seven))
    return {
        "reading": reading_message(d.fractions, d.scores[0], i.scores[0]),
        "verdicts": [sanity_message(report, m)[1] for m in report.methods],
        "warning": warning["message_i18n"],
        "dark7": seven,
    }


def _said(msg: dict, lang: str) -> str:
    return text(msg["key"], "zh-CN" if lang.startswith("zh") else "en", **msg["params"])


def _wait(page, key: str, timeout: float = 90_000) -> None:
    page.wait_for_function(f"() => ['ready', 'error'].includes(document.body.dataset.{key})", timeout=timeout)
    assert page.evaluate(f"() => document.body.dataset.{key}") == "ready", page.locator(".why-error").all_inner_texts()


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_why_sanity_and_polarity_warning_in_the_readers_language(live, browser, expected, locale, shots, tmp_path):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, locale=locale)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/?model=default&image={IMAGE}")
    _wait(page, "overview")
    assert page.evaluate("() => document.documentElement.lang") == ("zh-CN" if locale == "zh-CN" else "en")

    page.click("#btn-why")
    _wait(page, "why")
    _wait(page, "whymetrics")
    reading = page.locator("#why .why-reading").inner_text()
    assert reading == _said(expected["reading"], locale)

    page.click("#why-sanity")
    _wait(page, "sanity")
    shown = page.locator(".sanity-verdicts li").all_inner_texts()
    reasons = [_said(m, locale) for m in expected["verdicts"]]
    assert len(shown) == len(reasons) and all(r in s for s, r in zip(shown, reasons)), (shown, reasons)
    if locale == "zh-CN":
        page.locator("#why").screenshot(path=str(shots / "i18n-zh-why-server.png"))

    path = tmp_path / "dark7.png"
    buffer = io.BytesIO()
    Image.fromarray(expected["dark7"]).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    page.set_input_files("#upload", str(path))
    page.wait_for_function("() => document.body.dataset.warnings === 'polarity'", timeout=60_000)
    warning = page.locator('.pred-warning[data-kind="polarity"]').inner_text()
    assert _said(expected["warning"], locale) in warning
    if locale == "zh-CN":
        page.locator(".pred-warning").screenshot(path=str(shots / "i18n-zh-polarity-warning.png"))

    for said in (reading, *shown, warning):
        if locale == "zh-CN":  # Chinese, and not the English sentence
            assert CJK.search(said) and "the map" not in said and "expects" not in said, said
        else:
            assert not CJK.search(said), said
    assert expected["reading"]["text"] in reading or locale == "zh-CN"
    assert not errors
    ctx.close()
