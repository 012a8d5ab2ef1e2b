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

from server_helpers import LiveServer, fold_all

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
    return nn.Sequential(
        OrderedDict(
            norm=nn.BatchNorm2d(cin), relu=nn.ReLU(), conv=nn.Conv2d(cin, cout, 1, bias=False), pool=nn.AvgPool2d(2, 2)
        )
    )


class DenseNetShaped(nn.Module):
    def __init__(self, blocks=(6, 12, 24, 16), growth=8, init=16, classes=10):
        super().__init__()
        mods = OrderedDict(
            conv0=nn.Conv2d(3, init, 7, 2, 3, bias=False),
            norm0=nn.BatchNorm2d(init),
            relu0=nn.ReLU(),
            pool0=nn.MaxPool2d(3, 2, 1),
        )
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
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, 7, padding=3, groups=dim),
            Permute([0, 2, 3, 1]),
            nn.LayerNorm(dim),
            nn.Linear(dim, 4 * dim),
            nn.GELU(),
            nn.Linear(4 * dim, dim),
            Permute([0, 3, 1, 2]),
        )
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
    return Model(
        net.eval(), classes=[f"class {i}" for i in range(10)], preprocessing=Preprocessing(size=(64, 64)), name=spec
    )


@pytest.fixture(scope="module")
def live():
    from convscope.server import Registry, create_app

    app = create_app(registry=Registry(["densenet", "convnext"], loader=loader))
    with LiveServer(app) as server:
        yield server


class Overview:
    """One model's overview page, kept open for the module's tests, with the errors it logged."""

    def __init__(self, browser, live, model: str) -> None:
        from convscope.server.views import trace_json

        self.page = browser.new_page(viewport=WINDOW)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"{live.url}/?model={model}&image=sample-0")
        self.page.wait_for_function(
            "() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=120_000
        )
        assert self.page.evaluate("() => document.body.dataset.overview") == "ready", self.errors
        self.entry = live.app.state.registry.trace(model, "sample-0")
        self.layers = trace_json(self.entry)["layers"]
        self.by_name = {r["name"]: r for r in self.layers}

    def fold_all(self, folded: bool) -> None:
        fold_all(self.page, folded)

    def blocks(self) -> dict[str, int]:
        return self.page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('.group')].map("
            "g => [g.dataset.group, g.querySelectorAll('.column').length]))"
        )

    def outputs(self) -> dict[str, str]:
        """Each block's column shown when it is folded."""
        return self.page.evaluate(
            "() => Object.fromEntries([...document.querySelectorAll('.group')].map("
            "g => [g.dataset.group, [...g.querySelectorAll('.column')].find(c => c.offsetParent)"
            "?.dataset.layer]))"
        )


def _overview(live, browser, model: str):
    """A module fixture's body: the model's Overview, which must have logged no error by the end."""
    view = Overview(browser, live, model)
    yield view
    assert not view.errors, view.errors
    view.page.close()


@pytest.fixture(scope="module")
def densenet(live, browser):
    yield from _overview(live, browser, "densenet")


@pytest.fixture(scope="module")
def convnext(live, browser):
    yield from _overview(live, browser, "convnext")


def test_densenet_folds_by_its_dense_blocks_and_transitions(densenet):
    assert len(densenet.layers) == 432  # DenseNet-121's layer count, at growth 8
    densenet.fold_all(False)
    # 'features' holds every layer, so the blocks are the module tree below it
    got = densenet.blocks()
    assert list(got) == [
        "features.denseblock1",
        "features.transition1",
        "features.denseblock2",
        "features.transition2",
        "features.denseblock3",
        "features.transition3",
        "features.denseblock4",
    ]
    for i, n in enumerate((6, 12, 24, 16), 1):  # each dense layer: 6 modules + its concat; + the block's concat
        assert got[f"features.denseblock{i}"] == 7 * n + 1
    assert all(got[f"features.transition{i}"] == 4 for i in (1, 2, 3))
    labels = densenet.page.evaluate(
        "() => [...document.querySelectorAll('.group-label')].map(b => b.innerText.replace(/^. /, ''))"
    )
    assert labels[:2] == ["denseblock1", "transition1"]  # 'features.', shared by every block, left off
    densenet.fold_all(True)
    shown = densenet.page.evaluate("() => [...document.querySelectorAll('.column')].filter(c => c.offsetParent).length")
    assert shown == 10 + 7 + 1  # the stem and head columns, a column per block, the class scores


def test_names_are_cut_in_the_middle_with_the_whole_name_on_hover(densenet):
    densenet.fold_all(False)
    page = densenet.page
    name = page.locator('.column[data-layer="features.denseblock3.denselayer12.norm1"] .col-name')
    assert name.inner_text() == "denselayer12.norm1"
    assert name.get_attribute("title") == "features.denseblock3.denselayer12.norm1"
    cut = page.evaluate(
        "() => [...document.querySelectorAll('.col-name')].filter(e => e.innerText.includes('…'))"
        ".map(e => [e.innerText, e.title])"
    )
    assert cut
    for text, title in cut:  # a cut name keeps both ends of the name (whole dotted parts where it has them), and fits
        head, tail = text.split("…")
        dot = "." if "." in title else ""
        assert title.startswith(head + dot) and title.endswith(dot + tail) and len(text) <= 18, (text, title)


def test_concatenations_are_bands_not_a_line_per_input(densenet):
    densenet.fold_all(False)
    page = densenet.page
    bands = page.evaluate("() => [...document.querySelectorAll('svg.edges path.bundle')].map(p => +p.dataset.count)")
    concat_inputs = sum(len(r["inputs"]) for r in densenet.layers if r["kind"] == "concat")
    assert len(bands) >= 50 and max(bands) == 24  # block 3's last concat gathers its input and 23 layers' outputs
    counts = page.evaluate("() => [...document.querySelectorAll('svg.edges text.arc-count')].map(t => t.textContent)")
    assert sorted(counts) == sorted(f"×{n}" for n in bands)
    arcs = page.locator("svg.edges path.arc").count()
    print(f"densenet edges: {arcs} drawn for {concat_inputs} concat inputs")
    assert arcs < 100 < concat_inputs


def test_folded_densenet_page_is_a_few_windows_wide(densenet, shots):
    width = "() => document.getElementById('overview').scrollWidth"  # the overview scrolls, not the page
    densenet.fold_all(False)
    densenet.page.screenshot(path=str(shots / "anymodel-densenet-unfolded.png"))
    unfolded = densenet.page.evaluate(width)
    densenet.fold_all(True)
    folded = densenet.page.evaluate(width)
    print(f"densenet overview width: {unfolded} px unfolded, {folded} px folded")
    assert folded < 3 * WINDOW["width"] < unfolded, (folded, unfolded)
    densenet.page.screenshot(path=str(shots / "anymodel-densenet-folded.png"))


def test_convnext_channels_last_layers_are_drawn_as_maps(convnext, shots):
    convnext.fold_all(False)
    page = convnext.page
    # the first block's LayerNorm holds (1, 16, 16, 8): 8 maps of 16x16, not 16 stripes of 16x8
    ln = "features.1.0.block.2"
    assert list(convnext.entry.record(ln).output.shape) == [1, 16, 16, 8]
    col = page.locator(f'.column[data-layer="{ln}"]')
    page.wait_for_function(
        "(n) => document.querySelector(`.column[data-layer=\"${n}\"]`).dataset.drawn === '1'", arg=ln
    )
    sizes = col.evaluate("c => [...c.querySelectorAll('canvas.neuron')].map(cv => [cv.width, cv.height])")
    assert sizes == [[16, 16]] * 8
    # map k is channel k of the channels-last tensor: hover shows its value at (y, x)
    x = convnext.entry.record(ln).output[0]  # (16, 16, 8)
    k, y, xx = 3, 2, 5
    box = col.locator(f'canvas.neuron[data-channel="{k}"]').bounding_box()
    page.mouse.move(box["x"] + box["width"] * (xx + 0.5) / 16, box["y"] + box["height"] * (y + 0.5) / 16)
    tip = page.locator("#tooltip")
    tip.wait_for(state="visible")
    assert f"channel {k} · ({y}, {xx})" in tip.inner_text()
    shown = float(tip.inner_text().split("value")[-1])
    assert shown == pytest.approx(float(x[y, xx, k]), rel=1e-3, abs=1e-4)
    # the Linear after it (16, 16, 32) is paged over its 32 channels like any map layer
    assert "/ 32" in page.locator('.column[data-layer="features.1.0.block.3"] .pager').inner_text()
    page.mouse.move(0, 0)
    page.screenshot(path=str(shots / "anymodel-convnext-unfolded.png"))


def test_a_folded_convnext_stage_shows_its_residual_add_never_a_permute(convnext, shots):
    convnext.fold_all(True)
    outs = convnext.outputs()
    assert outs["features.0"] == "features.0.1"  # the stem's LayerNorm, not the permute back after it
    for stage in ("features.1", "features.3", "features.5", "features.7"):
        assert convnext.by_name[outs[stage]]["kind"] == "add", outs
    assert not any(convnext.by_name[n]["op"].endswith("permute") for n in outs.values()), outs
    convnext.page.screenshot(path=str(shots / "anymodel-convnext-folded.png"))
