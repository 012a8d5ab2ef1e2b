"""Make the README's pictures (docs/img/*.png) from the real explorer, in one command.

    python docs/screenshots.py                      # every picture, into docs/img
    python docs/screenshots.py --only explorer-why  # one (repeatable), e.g. after changing why.js
    python docs/screenshots.py --list               # the names

It serves the default model, CNN Explainer's Tiny VGG (``../shared/fixtures`` or fetched from
its site, as the tests find it: ``tests/cnn_explainer.py``) and EfficientNet-Lite0 (the zoo
extra's weights) from one uvicorn server on 127.0.0.1, drives the page in Debian's headless
Chromium at 1600x1000 and writes each picture, cropped to the panel it is about where that
reads better. A PNG over ``MAX_BYTES`` is saved with a 256-colour palette (and scaled down only
if that is still too big), so the repository stays small. Not a test (it takes minutes): the
browser tests check the same views' numbers; this only takes their pictures.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # live_server (LiveServer, CHROMIUM_ARGS) and cnn_explainer

import cnn_explainer  # noqa: E402
from live_server import CHROMIUM_ARGS, LiveServer  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
WINDOW = {"width": 1600, "height": 1000}
MAX_BYTES = 400_000
CNN_EXPLAINER = "cnn-explainer"  # the model id the server gives CNN Explainer's model.json
LITE0 = "efficientnet-lite0"

# name -> function(Shooter) that leaves the page as the picture should show it and saves it
SHOTS: dict[str, Callable[[Shooter], None]] = {}


def shot(name: str):
    def register(f):
        SHOTS[name] = f
        return f

    return register


def save_png(data: bytes, path: Path, max_bytes: int = MAX_BYTES) -> tuple[int, tuple[int, int]]:
    """Write ``data`` (a PNG) to ``path``, no bigger than ``max_bytes``: as it is if small enough,
    else quantised to a 256-colour palette, else also scaled down. Returns (bytes, size)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data)).convert("RGB")
    scale = 1.0
    while True:
        size = (round(img.width * scale), round(img.height * scale))
        candidate = img if scale == 1.0 else img.resize(size, Image.LANCZOS)
        out = io.BytesIO()
        if scale == 1.0 and len(data) <= max_bytes:
            out.write(data)
        else:
            candidate.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                out, format="PNG", optimize=True
            )
        if out.tell() <= max_bytes or scale < 0.5:
            path.write_bytes(out.getvalue())
            return out.tell(), size
        scale *= 0.85


class Shooter:
    """The server, the browser and the folder the pictures go to; one fresh page per picture."""

    def __init__(self, browser, live: LiveServer, out: Path) -> None:
        self.browser, self.url, self.out = browser, live.url, out
        self.registry = live.app.state.registry
        self.context = None

    def layer(self, model: str, image: str, name: str):
        """The server's own trace record of layer ``name`` (shapes to aim the pointer with)."""
        return self.registry.trace(model, image).trace[name]

    def open(self, query: str, locale: str = "en-US", wait: str = "overview"):
        if self.context is not None:
            self.context.close()
        self.context = self.browser.new_context(viewport=WINDOW, locale=locale)
        page = self.context.new_page()
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.goto(f"{self.url}/?{query}")
        self.wait(page, wait)
        return page

    @staticmethod
    def wait(page, key: str, timeout: float = 180_000) -> None:
        page.wait_for_function("(k) => ['ready', 'error'].includes(document.body.dataset[k])", arg=key, timeout=timeout)
        state = page.evaluate("(k) => document.body.dataset[k]", key)
        if state != "ready":
            raise RuntimeError(f"{key}: {state}; {page.locator('#message').all_inner_texts()}")

    @staticmethod
    def settle(page, ms: int = 300) -> None:
        """Two animation frames and a pause: columns re-spread, canvases painted, hovers drawn."""
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.wait_for_timeout(ms)

    def save(self, page, name: str, selector: str | None = None) -> None:
        """The window (or the element ``selector``) as docs/img/NAME.png."""
        if self.errors:
            raise RuntimeError(f"{name}: the page threw {self.errors}")
        data = page.locator(selector).screenshot() if selector else page.screenshot()
        n, size = save_png(data, self.out / f"{name}.png")
        print(f"{name}.png  {size[0]}x{size[1]}  {n / 1000:.0f} KB", flush=True)


def neuron(page, layer: str, channel: int):
    return page.locator(f'canvas.neuron[data-layer="{layer}"][data-channel="{channel}"]')


def at_cell(locator, y: int, x: int, h: int, w: int) -> dict:
    """The position inside a map's canvas of cell (y, x) of an h x w map."""
    box = locator.bounding_box()
    return {"x": (x + 0.5) * box["width"] / w, "y": (y + 0.5) * box["height"] / h}


def open_detail(s: Shooter, page, layer: str, channel: int) -> None:
    neuron(page, layer, channel).click()
    s.wait(page, "detail")
    s.settle(page)


@shot("explorer-overview")
def overview(s: Shooter) -> None:
    page = s.open("model=default&image=sample-7")
    s.settle(page, 600)
    s.save(page, "explorer-overview")


@shot("explorer-cnn-explainer-model")
def cnn_explainer_model(s: Shooter) -> None:
    """CNN Explainer's model on the coffee photo: 'espresso' in the prediction and the class
    scores, and the output strip's tooltip naming the unit under the pointer."""
    page = s.open(f"model={CNN_EXPLAINER}&image=sample-0")
    s.settle(page, 600)
    strip = page.locator('canvas.neuron.strip[data-layer="output"]')
    strip.hover(position=at_cell(strip, 6, 0, 10, 1))
    page.wait_for_function("() => !document.getElementById('tooltip').hidden")
    s.settle(page)
    s.save(page, "explorer-cnn-explainer-model")


@shot("explorer-side-panel")
def side_panel(s: Shooter) -> None:
    """A conv neuron's elastic view and step-by-step formula beside the overview."""
    page = s.open("model=default&image=sample-7")
    open_detail(s, page, "conv_1_2", 1)
    s.settle(page, 600)
    s.save(page, "explorer-side-panel")


@shot("explorer-pool-formula")
def pool_formula(s: Shooter) -> None:
    """max(…) of one max-pool window with its real values, the arg-max marked."""
    page = s.open("model=default&image=sample-7")
    open_detail(s, page, "max_pool_1", 1)
    out = page.locator("#detail .inout canvas").nth(1)
    h, w = s.layer("default", "sample-7", "max_pool_1").output.shape[-2:]
    out.click(position=at_cell(out, 5, 6, h, w))
    page.wait_for_function("() => document.querySelector('#detail .formula-numbers .term.argmax') !== null")
    s.settle(page)
    s.save(page, "explorer-pool-formula", "#detail")


@shot("explorer-flatten")
def flatten(s: Shooter) -> None:
    """Which flat index an input position goes to, and back: the flatten elastic view."""
    page = s.open("model=default&image=sample-7")
    flat = s.layer("default", "sample-7", "flatten").input[0]  # (C, H, W)
    c, h, w = flat.shape
    strip = page.locator('canvas.neuron.strip[data-layer="flatten"]')
    strip.click(position=at_cell(strip, 2 * h * w + w + 3, 0, c * h * w, 1))  # channel 2, (1, 3)
    s.wait(page, "detail")
    page.wait_for_function("() => document.querySelector('#detail .flatten-readout')?.dataset.index !== undefined")
    maps = page.locator("#detail .flatten-elastic canvas.map")
    maps.nth(0).hover(position=at_cell(maps.nth(0), 2, 1, h, w))
    s.settle(page)
    s.save(page, "explorer-flatten", "#detail")


@shot("explorer-softmax")
def softmax(s: Shooter) -> None:
    """The softmax formula with one hovered term, highlighted in the sum and the bars."""
    page = s.open("model=default&image=sample-7")
    page.locator(".score").first.click()
    s.wait(page, "detail")
    row = page.locator("#detail .softmax-table tr[data-index]").nth(1)
    row.hover()
    page.wait_for_function("() => document.querySelector('#detail .softmax-table tr.hovered') !== null")
    s.settle(page)
    s.save(page, "explorer-softmax", "#detail")


@shot("explorer-efficientnet")
def efficientnet(s: Shooter) -> None:
    """EfficientNet-Lite0 folded to its blocks, the search box jumping to a layer inside one."""
    page = s.open(f"model={LITE0}&image=sample-0")
    page.click("#btn-fold")
    page.wait_for_function("() => document.querySelector('.group.folded') !== null")
    s.wait(page, "overview")
    s.settle(page)
    page.focus("#search")
    page.keyboard.type("_blocks.9._depthwise_conv")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('.column.search-hit') !== null")
    s.wait(page, "overview")
    s.settle(page, 800)
    s.save(page, "explorer-efficientnet")


@shot("explorer-why")
def why(s: Shooter) -> None:
    """Grad-CAM on EfficientNet-Lite0 and the coffee photo, its metrics and their reading."""
    page = s.open(f"model={LITE0}&image=sample-0")
    page.click("#btn-why")
    s.wait(page, "why")
    s.wait(page, "whymetrics")
    s.settle(page)
    s.save(page, "explorer-why", "#why")


@shot("explorer-why-sanity")
def why_sanity(s: Shooter) -> None:
    """The cascading-randomisation check of Grad-CAM on the default model: table, verdict, figure."""
    page = s.open("model=default&image=sample-7")
    page.click("#btn-why")
    s.wait(page, "why")
    page.click("#why-sanity")
    s.wait(page, "sanity")
    page.wait_for_function("() => document.querySelector('#why .sanity-figure')?.naturalWidth > 0")
    s.settle(page)
    s.save(page, "explorer-why-sanity", "#why .why-sanity")


@shot("explorer-lookfor")
def lookfor(s: Shooter) -> None:
    """What the default model's conv_2_2 channel 0 looks for (the panel is offered on convolutions):
    a dead channel, constant over the data (its ReLU, relu_2_2's channel 0, is all zeros), said so."""
    page = s.open("model=default&image=sample-7")
    open_detail(s, page, "conv_2_2", 0)
    page.click(".lookfor-offer")
    s.wait(page, "lookfor")
    s.wait(page, "featvis")
    s.wait(page, "examples")
    page.click("#detail .close")  # the detail panel would sit over the look-for panel's right part
    page.locator("#lookfor").scroll_into_view_if_needed()
    s.settle(page)
    s.save(page, "explorer-lookfor", "#lookfor")


def learn_conv(s: Shooter, locale: str, name: str) -> None:
    page = s.open("model=default&image=sample-7", locale=locale)
    open_detail(s, page, "conv_1_2", 2)
    page.click("#detail .learn-link")
    page.wait_for_function(
        "() => { const p = document.getElementById('learn'); return p && !p.hidden && p.dataset.state === 'ready'; }"
    )
    s.settle(page)
    s.save(page, name)


@shot("learn-conv-en")
def learn_en(s: Shooter) -> None:
    learn_conv(s, "en-US", "learn-conv-en")


@shot("learn-conv-zh")
def learn_zh(s: Shooter) -> None:
    learn_conv(s, "zh-CN", "learn-conv-zh")


@shot("tour")
def tour(s: Shooter) -> None:
    """The first-visit walkthrough at its neuron step (?tour=1: a browser under automation gets
    no tour by itself)."""
    page = s.open("model=default&image=sample-7&tour=1")
    page.wait_for_selector("#tour")
    for _ in range(3):
        page.click("#tour [data-k='next']")
    page.wait_for_function("() => document.getElementById('tour').dataset.key === 'neuron'")
    s.settle(page)
    s.save(page, "tour")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", action="append", choices=sorted(SHOTS), metavar="NAME", help="this picture only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder (default: docs/img)")
    parser.add_argument("--list", action="store_true", help="print the picture names and stop")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(SHOTS))
        return 0
    from playwright.sync_api import sync_playwright

    from convscope.server import create_app

    names = args.only or list(SHOTS)
    args.out.mkdir(parents=True, exist_ok=True)
    model_json = cnn_explainer.locate() / "model.json"
    app = create_app(["default", str(model_json), LITE0])
    with tempfile.TemporaryDirectory() as cache:
        app.state.explain.cache_dir = cache  # feature visualisations computed afresh, not from ~/.cache
        start = time.time()
        with LiveServer(app) as live, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                shooter = Shooter(browser, live, args.out)
                for name in names:
                    SHOTS[name](shooter)
            finally:
                browser.close()
        print(f"{len(names)} pictures in {time.time() - start:.0f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
