"""Names from files and users are text on the page, never markup (issue 11, finding 2).

A real explorer behind an access token serves two models whose names are script
payloads: a checkpoint file (the trained default model re-saved with class names such as
``<img src=x onerror=...>`` and ``</script><script>...``) and a net whose layers are
named ``<img ...>`` / ``<svg onload=...>``; its runs folder holds a run whose folder
name and recorded command are payloads too. Chromium opens the overview, the softmax,
conv, activation, pool and linear views, the summary, a hover tooltip, the Why? panel,
the dataset view and the training view, and after each checks that no payload ran
(``window.__xss`` unset, no dialog), that no element the payloads describe exists, and
that the payloads are on screen as the text they are. The token leaves the address bar
after the first load and the page keeps working on the HttpOnly cookie.

Screenshots go to ``$CONVSCOPE_SCREENSHOTS`` when set.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from server_helpers import LiveServer

pytestmark = pytest.mark.browser
TOKEN = "xss-token-5b1e"
# class names (checkpoint meta): every class is a payload, so whichever is predicted shows one
FORMS = [
    "<img src=x onerror=window.__xss={}>",
    "</script><script>window.__xss={}</script>",
    '"><svg onload=window.__xss={}>',
]
CLASSES = [FORMS[i % 3].format(i) for i in range(10)]
# layer names: no '.' (torch refuses it in a module name) and no '/' (a layer is one URL segment)
CONV, RELU = "<img src=x onerror=__xss=11>", "<svg onload=__xss=12>"
RUN, COMMAND = "<img src=x onerror=__xss=21>", "</script><script>__xss=22</script>"
# anything the payloads would have made, had they been parsed as markup
INJECTED = "img[src='x'], [onerror], [onload], script:not([src]), svg:not(.edges):not(.chart):not(.elastic-lines)"


def payload_checkpoint(path: Path, **meta_changes) -> Path:
    """The trained default model's checkpoint, re-saved with ``meta_changes`` (e.g. payload class names)."""
    from convscope.models.checkpoint import load_checkpoint, save_checkpoint
    from convscope.models.loading import default_checkpoint_path

    ckpt = load_checkpoint(default_checkpoint_path())
    return save_checkpoint(path, ckpt["state_dict"], {**ckpt["meta"], **meta_changes})


def payload_layers_model():
    """A small CNN whose conv and ReLU layers are named with payloads (its classes too)."""
    from convscope.models import Model, Preprocessing

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        OrderedDict(
            [
                (CONV, torch.nn.Conv2d(1, 4, 3, padding=1)),
                (RELU, torch.nn.ReLU()),
                ("pool", torch.nn.MaxPool2d(2)),
                ("flat", torch.nn.Flatten()),
                ("fc", torch.nn.Linear(4 * 14 * 14, 10)),
            ]
        )
    )
    return Model(net.eval(), classes=CLASSES, preprocessing=Preprocessing(size=(28, 28), channels=1), name="layers")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from convscope.models import load_model
    from convscope.server import Registry, create_app

    tmp = tmp_path_factory.mktemp("xss")
    ckpt = payload_checkpoint(tmp / "classes.pt", classes=CLASSES, name="classes")
    run = tmp / "runs" / RUN
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps(
                {
                    "epoch": e,
                    "train_loss": 1.0 / e,
                    "val_loss": 1.2 / e,
                    "train_acc": 0.5 + e / 10,
                    "val_acc": 0.4 + e / 10,
                }
            )
            + "\n"
            for e in (1, 2)
        )
    )
    payload_checkpoint(run / "last.pt", command=COMMAND, config={"model": CONV, "data": RELU, "epochs": 2})
    registry = Registry(
        [str(ckpt), "layers"], loader=lambda spec: payload_layers_model() if spec == "layers" else load_model(spec)
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVSCOPE_CACHE", str(tmp / "cache"))
        app = create_app(registry=registry, token=TOKEN, runs=tmp / "runs", data="digits")
        with LiveServer(app) as server:
            yield server


@pytest.fixture(scope="module")
def page(live, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.errors, pg.dialogs = [], []
    pg.on("console", lambda m: m.type == "error" and pg.errors.append(m.text))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.goto(f"{live.url}/?token={TOKEN}")
    wait(pg, "overview")
    yield pg
    context.close()


def wait(page, key: str, timeout: float = 120_000) -> None:
    page.wait_for_function(f"() => ['ready', 'error'].includes(document.body.dataset.{key})", timeout=timeout)
    assert page.evaluate(f"document.body.dataset.{key}") == "ready", page.locator("#message").inner_text()


def shot(page, name: str) -> None:
    folder = os.environ.get("CONVSCOPE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"xss-{name}.png"))


def assert_inert(page, where: str, *shown: str) -> None:
    """Nothing ran, nothing was injected, and every string in ``shown`` is on screen as text."""
    assert page.evaluate("window.__xss") is None, f"{where}: a payload ran (window.__xss set)"
    assert not page.dialogs, f"{where}: a payload opened a dialog {page.dialogs}"
    injected = page.evaluate(f"[...document.querySelectorAll({INJECTED!r})].map(e => e.outerHTML.slice(0, 120))")
    assert injected == [], f"{where}: payload markup became elements: {injected}"
    text = page.locator("body").inner_text()
    for s in shown:
        assert s in text, f"{where}: {s!r} is not shown as text"


def neuron(page, layer: str, channel: int = 0):
    return page.locator(f'canvas.neuron[data-layer={json.dumps(layer)}][data-channel="{channel}"]')


def open_detail(page, locator, **click) -> None:
    locator.click(**click)
    wait(page, "detail")


def test_payload_names_are_shown_as_text_in_every_view(page, live):
    # overview of the checkpoint model: the prediction bar and the class-score column
    assert_inert(page, "overview", *CLASSES)
    shot(page, "overview")
    # the softmax view lists every class by name
    open_detail(page, page.locator(".score").first)
    assert page.locator("#detail").get_attribute("data-view") == "softmax"
    assert_inert(page, "softmax view", *CLASSES)
    # the Why? panel: the predicted class in its heading and in the overlay caption
    page.click("#btn-why")
    wait(page, "why")
    predicted = page.evaluate("document.body.dataset.prediction")
    assert predicted in CLASSES
    assert_inert(page, "Why? panel", f"predicted {predicted}", f"for class {predicted}")
    shot(page, "why")
    page.locator("#why .close").click()
    # the dataset view: per-class accuracy, the confusion matrix, galleries, the embedding legend
    page.click('.tabs [data-view="dataset"]')
    wait(page, "dataset", timeout=180_000)
    assert_inert(page, "dataset view", *CLASSES)
    assert page.locator(".confusion th").filter(has_text=CLASSES[1]).count() == 2  # its row and its column
    shot(page, "dataset")
    # the training view: a run folder and a recorded command that are payloads
    page.click('.tabs [data-view="training"]')
    wait(page, "training")
    assert page.locator(".run-row").get_attribute("data-run") == RUN
    assert_inert(page, "training view", RUN, COMMAND, f"{CONV} · {RELU}")
    shot(page, "training")
    # the model whose layers are payloads: conv, activation, pool and linear views, a tooltip, the summary
    page.click('.tabs [data-view="network"]')
    page.select_option("#model-select", "layers")
    page.wait_for_function(
        "() => new URLSearchParams(location.search).get('model') === 'layers' && "
        "document.body.dataset.overview === 'ready'",
        timeout=60_000,
    )
    assert (
        page.locator(f".column[data-layer={json.dumps(CONV)}] .col-head").get_attribute("title") == f"{CONV} (Conv2d)"
    )
    neuron(page, CONV, 1).hover()
    assert page.locator("#tooltip").inner_text().startswith(f"{CONV} channel 1")
    assert_inert(page, "tooltip", CONV)
    open_detail(page, neuron(page, CONV, 1))
    assert page.locator("#detail").get_attribute("data-view") == "conv"
    assert_inert(page, "conv view", f"{CONV} · channel 1", f"output: {CONV} · ch 1")
    shot(page, "conv")
    open_detail(page, neuron(page, RELU, 2))
    assert page.locator("#detail").get_attribute("data-view") == "activation"
    assert_inert(page, "activation view", f"{RELU} · channel 2", f"input: {CONV} · ch 2", "ReLU(x) = max(0, x)")
    open_detail(page, neuron(page, "pool", 0))
    assert page.locator("#detail").get_attribute("data-view") == "pool"
    assert_inert(page, "pool view", f"reads {RELU}", f"input: {RELU} · ch 0")
    open_detail(page, page.locator('canvas.neuron[data-layer="fc"]'), position={"x": 8, "y": 1})  # unit 0
    assert page.locator("#detail").get_attribute("data-view") == "linear"
    assert_inert(page, "linear view", f"fc · unit 0 (class {CLASSES[0]})")
    shot(page, "linear")
    page.click("#btn-summary")
    page.wait_for_selector("#summary .summary-table")
    assert_inert(page, "summary", CONV, RELU)
    page.click("#btn-why")
    wait(page, "why")
    page.select_option("#why-layer", CONV)  # explain at the payload-named conv layer
    wait(page, "why")
    assert_inert(page, "Why? panel of the layers model", f"heatmap at {CONV}")
    shot(page, "why-layers")
    assert page.errors == [], page.errors


def test_token_leaves_the_address_bar_and_the_cookie_carries_on(page, live):
    page.goto(f"{live.url}/?token={TOKEN}&model=layers")
    wait(page, "overview")
    assert "token" not in page.evaluate("location.href"), page.evaluate("location.href")
    assert page.evaluate("new URLSearchParams(location.search).get('model')") == "layers"  # the rest stays
    assert TOKEN not in page.evaluate("document.cookie + JSON.stringify({...sessionStorage, ...localStorage})")
    page.reload()  # the cleaned address works: every request rides on the HttpOnly cookie
    wait(page, "overview")
    assert page.evaluate("document.getElementById('input-preview').naturalWidth") > 0
    assert page.errors == [], page.errors
