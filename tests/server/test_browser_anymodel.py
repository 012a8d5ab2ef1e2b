"""The overview of big and unusual nets in headless Chromium: a DenseNet-121-shaped net (dense
blocks of 6-12-24-16 layers joined by concatenation, transitions) and a ConvNeXt-tiny-shaped net
(depthwise 7x7, permute to channels-last, LayerNorm, Linear, GELU, layer scale, permute back),
narrow and with random weights, served by a real uvicorn server on 127.0.0.1.

Checks the blocks folded by the module tree, channels-last layers drawn as (H, W) maps, names
cut in the middle with the whole name on hover, concatenations drawn as bands, the folded page's
width; screenshots (folded and unfolded) go to ``$CONVSCOPE_SCREENSHOTS`` (else a temp dir);
``docs/img/anymodel-*.png`` are these, saved with a 256-colour palette.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from server_helpers import LiveServer

pytestmark = pytest.mark.browser

WINDOW = {"width": 1400, "height": 900}
WIDTH = "() => document.getElementById('overview').scrollWidth"  # the overview scrolls, not the page

class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size=2):
        super().__init__()
        self.norm1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU()
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2, self.relu2 = nn.BatchNorm2d(bn_size * growth), nn.ReLU()
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, inputs):
        x = torch.cat(inputs, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.ModuleDict):
    def __init__(self, n, cin, growth):
        super().__init__({f"denselayer{i + 1}": DenseLayer(cin + i * growth, growth) for i in range(n)})

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


def transition(cin, cout):
    return nn.Sequential(OrderedDict(norm=nn.BatchNorm2d(cin), relu=nn.ReLU(), conv=nn.Conv2d(cin, cout, 1, bias=False),
                                     pool=nn.AvgPool2d(2, 2)))


class DenseNetShaped(nn.Module):
    def __init__(self, blocks=(6, 12, 24, 16), growth=8, init=16, classes=10):
        super().__init__()
        mods = OrderedDict(conv0=nn.Conv2d(3, init, 7, 2, 3, bias=False), norm0=nn.BatchNorm2d(init), relu0=nn.ReLU(),
                           pool0=nn.MaxPool2d(3, 2, 1))
        c = init
        for i, n in enumerate(blocks):
            mods[f"denseblock{i + 1}"] = DenseBlock(n, c, growth)
            c += n * growth
            if i < len(blocks) - 1:
                mods[f"transition{i + 1}"] = transition(c, c // 2)
                c //= 2
        mods["norm5"] = nn.BatchNorm2d(c)
        self.features = nn.Sequential(mods)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        f = F.relu(self.features(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(f, 1), 1))


class Permute(nn.Module):
    def __init__(self, dims):
        super().__init__()
        self.dims = dims

    def forward(self, x):
        return torch.permute(x, self.dims)


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(dim, dim, 7, padding=3, groups=dim), Permute([0, 2, 3, 1]),
                                   nn.LayerNorm(dim), nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim),
                                   Permute([0, 3, 1, 2]))
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), 0.5))

    def forward(self, x):
        return x + self.layer_scale * self.block(x)


class ConvNeXtShaped(nn.Module):
    def __init__(self, dims=(8, 16, 32, 64), depths=(3, 3, 9, 3), classes=10):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0]))]
        for i, (d, n) in enumerate(zip(dims, depths)):
            layers.append(nn.Sequential(*[CNBlock(d) for _ in range(n)]))
            if i < len(dims) - 1:
                layers.append(nn.Sequential(LayerNorm2d(d), nn.Conv2d(d, dims[i + 1], 2, 2)))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1]), nn.Flatten(1), nn.Linear(dims[-1], classes))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


def loader(spec: str):
    from convscope.models import Model, Preprocessing

    torch.manual_seed(0)
    net = DenseNetShaped() if spec == "densenet" else ConvNeXtShaped()
    return Model(net.eval(), classes=[f"class {i}" for i in range(10)], preprocessing=Preprocessing(size=(64, 64)),
                 name=spec)


@pytest.fixture(scope="module")
def live():
    from convscope.server import Registry, create_app

    app = create_app(registry=Registry(["densenet", "convnext"], loader=loader))
    with LiveServer(app) as server:
        yield server


def open_overview(browser, live, model: str):
    page = browser.new_page(viewport=WINDOW)
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live.url}/?model={model}&image=sample-0")
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=120_000)
    assert page.evaluate("() => document.body.dataset.overview") == "ready", errors
    return page, errors


def trace_layers(live, model: str) -> list[dict]:
    from convscope.server.views import trace_json

    return trace_json(live.app.state.registry.trace(model, "sample-0"))["layers"]


def fold_all(page, folded: bool) -> None:
    if page.evaluate("() => document.querySelector('.group.folded') !== null") != folded:
        page.click("#btn-fold")
    page.wait_for_function("(f) => [...document.querySelectorAll('.group')].every(g => g.classList.contains('folded') === f)",
                           arg=folded)
    page.wait_for_function("() => document.body.dataset.overview === 'ready'")


def blocks(page) -> dict[str, int]:
    return page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.group')].map("
                         "g => [g.dataset.group, g.querySelectorAll('.column').length]))")


def test_densenet_folds_by_its_dense_blocks_and_bundles_the_concatenations(live, browser, shots):
    page, errors = open_overview(browser, live, "densenet")
    layers = trace_layers(live, "densenet")
    assert len(layers) == 432  # DenseNet-121's layer count, at growth 8
    # folded by the module tree below 'features' (which holds every layer): dense blocks and transitions
    got = blocks(page)
    assert list(got) == ["features.denseblock1", "features.transition1", "features.denseblock2", "features.transition2",
                         "features.denseblock3", "features.transition3", "features.denseblock4"]
    for i, n in enumerate((6, 12, 24, 16), 1):  # each dense layer: 6 modules + its concat; + the block's concat
        assert got[f"features.denseblock{i}"] == 7 * n + 1
    assert all(got[f"features.transition{i}"] == 4 for i in (1, 2, 3))
    labels = page.evaluate("() => [...document.querySelectorAll('.group-label')].map(b => b.innerText.replace(/^. /, ''))")
    assert labels[:2] == ["denseblock1", "transition1"]  # 'features.', shared by every block, left off
    # names are cut in the middle at dots, the whole name on hover
    name = page.locator('.column[data-layer="features.denseblock3.denselayer12.norm1"] .col-name')
    assert name.inner_text() == "denselayer12.norm1"
    assert name.get_attribute("title") == "features.denseblock3.denselayer12.norm1"
    cut = page.evaluate("() => [...document.querySelectorAll('.col-name')].filter(e => e.innerText.includes('…'))"
                        ".map(e => [e.innerText, e.title])")
    for text, title in cut:
        head, tail = text.split("…")
        assert title.startswith(head) and title.endswith(tail) and len(text) <= 18
    # the concatenations: one band each (with the count of columns feeding it), not a line per input
    bands = page.evaluate("() => [...document.querySelectorAll('svg.edges path.bundle')].map(p => +p.dataset.count)")
    concat_inputs = sum(len(r["inputs"]) for r in layers if r["kind"] == "concat")
    assert len(bands) >= 50 and max(bands) == 24  # the last concat of block 3 gathers its input and 24 layers
    assert page.locator("svg.edges path.arc").count() < 100 < concat_inputs
    page.screenshot(path=str(shots / "anymodel-densenet-unfolded.png"))
    unfolded = page.evaluate(WIDTH)
    fold_all(page, True)
    shown = page.evaluate("() => [...document.querySelectorAll('.column')].filter(c => c.offsetParent)"
                          ".map(c => c.dataset.layer)")
    assert len(shown) == 10 + 7 + 1  # the stem and head columns, a column per block, the class scores
    width = page.evaluate(WIDTH)
    assert width < 3 * WINDOW["width"] < unfolded, (width, unfolded)
    print(f"densenet page width: {unfolded} px unfolded, {width} px folded")
    page.screenshot(path=str(shots / "anymodel-densenet-folded.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_convnext_channels_last_layers_are_drawn_as_maps(live, browser, shots):
    page, errors = open_overview(browser, live, "convnext")
    layers = trace_layers(live, "convnext")
    by_name = {r["name"]: r for r in layers}
    # the first block's LayerNorm holds (1, 16, 16, 8): 8 maps of 16x16, not 16 stripes of 16x8
    ln = "features.1.0.block.2"
    assert by_name[ln]["shape"] == [16, 16, 8]
    col = page.locator(f'.column[data-layer="{ln}"]')
    page.wait_for_function("(n) => document.querySelector(`.column[data-layer=\"${n}\"]`).dataset.drawn === '1'", arg=ln)
    sizes = col.evaluate("c => [...c.querySelectorAll('canvas.neuron')].map(cv => [cv.width, cv.height])")
    assert sizes == [[16, 16]] * 8
    # the maps hold the channels: map k is channel k of the channels-last tensor
    entry = live.app.state.registry.trace("convnext", "sample-0")
    x = entry.array(ln)  # (16, 16, 8)
    k = 3
    hot = col.locator(f'canvas.neuron[data-channel="{k}"]')
    box = hot.bounding_box()
    page.mouse.move(box["x"] + box["width"] * (5 + 0.5) / 16, box["y"] + box["height"] * (2 + 0.5) / 16)
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    assert f"channel {k} · (2, 5)" in tip.inner_text()
    assert f"{float(x[2, 5, k]):.4g}"[:5] in tip.inner_text().replace("value ", "")
    # the Linear after it (16, 16, 32) too, paged like any map layer
    lin = page.locator('.column[data-layer="features.1.0.block.3"]')
    assert "/ 32" in lin.locator(".pager").inner_text()
    # folded: each stage shows its residual add, the stem its LayerNorm, never a permute
    fold_all(page, True)
    outs = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.group')].map("
                         "g => [g.dataset.group, g.querySelector('.column.block-output').dataset.layer]))")
    assert outs["features.0"] == "features.0.1"
    for stage in ("features.1", "features.3", "features.5", "features.7"):
        assert by_name[outs[stage]]["kind"] == "add", outs
    assert not any(by_name[n]["op"].endswith("permute") for n in outs.values()), outs
    width = page.evaluate(WIDTH)
    assert width < 3 * WINDOW["width"], width
    page.screenshot(path=str(shots / "anymodel-convnext-folded.png"), full_page=True)
    fold_all(page, False)
    page.screenshot(path=str(shots / "anymodel-convnext-unfolded.png"))
    assert not errors, errors
    page.close()
