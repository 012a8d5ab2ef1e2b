"""The Learn drawer keeps the neuron and its detail view in view (issue 12's leftovers).

The article opened from a detail view reads that view's numbers, so the learner needs both at
once; the drawer was 760 px wide over the right of the page, which at 1280x720 covered the
whole detail view (the right 42% of the window) and part of the overview. Now it takes a third
of the window (380 to 760 px) and the page moves over beside it. In headless Chromium on a real
server, at 1280x720 and 2560x1440: the drawer, the detail view and the selected neuron's map do
not overlap and are all in the window, the article has room for its text, and closing the
drawer gives the page its width back.
"""

from __future__ import annotations

import pytest

from live_server import serving

pytestmark = pytest.mark.browser

BOX = "(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"


@pytest.fixture(scope="module")
def live():
    with serving() as server:
        yield server


@pytest.mark.parametrize("width, height", [(1280, 720), (2560, 1440)])
def test_learn_drawer_leaves_the_detail_and_neuron_in_view(live, browser, shots, width, height):
    ctx = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
    ctx.add_init_script("localStorage.setItem('convscope.tour', 'done')")  # no first-visit tour over the page
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/?model=default&image=sample-3")
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=90_000)
    page.locator('canvas.neuron[data-layer="conv_1_2"][data-channel="2"]').click()
    page.wait_for_function("() => document.body.dataset.detail === 'ready'")
    before = page.evaluate(BOX, "#detail")
    page.click("#detail .learn-link")
    page.wait_for_function("() => document.getElementById('learn')?.dataset.state === 'ready'")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    drawer = page.evaluate(BOX, "#learn")
    detail = page.evaluate(BOX, "#detail")
    neuron = page.evaluate(BOX, "canvas.neuron.selected")
    print(width, "drawer", drawer, "detail", detail, "neuron", neuron)
    assert 380 <= drawer[2] - drawer[0] <= 760
    assert detail[2] <= drawer[0] + 1 and detail[0] >= 0, (detail, drawer)  # the detail beside the drawer, whole
    assert detail[2] - detail[0] >= 400  # still room for its maps
    assert 0 <= neuron[0] and neuron[2] <= min(detail[0], drawer[0]) + 1, (neuron, detail)  # the neuron too
    assert 0 <= neuron[1] and neuron[3] <= height
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1  # no sideways scroll
    article = page.evaluate(BOX, "#learn .learn-article")
    assert article[2] - article[0] >= 300
    page.screenshot(path=str(shots / f"learn-drawer-{width}.png"))
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.getElementById('learn').hidden")
    page.wait_for_function(
        "(w) => Math.abs(document.getElementById('detail').getBoundingClientRect().width - w) < 2",
        arg=before[2] - before[0],
    )
    assert errors == []
    ctx.close()
