"""Learn mode and the first-visit tour in headless Chromium (issue 12, js/learn.js and js/tour.js).

The conv article opened from a conv detail shows the detail's own numbers, and both equal a
plain-PyTorch recomputation of that neuron (F.conv2d on the layer's input); every article
opens on a model that has its kind of layer (the default Tiny VGG, CNN Explainer's Tiny VGG,
and a small BatchNorm + residual net written here, each number checked against PyTorch); a
zh-CN browser reads the Chinese articles, an en-US one the English; the tour shows on a first
visit (?tour=1: a browser under automation gets no tour by itself, so it cannot cover what
other tests click), not on the second, closes with Escape and replays from its button; axe-core
finds nothing critical or serious on the Learn panel or the tour. Screenshots:
learn-conv-en.png, learn-conv-zh.png, tour.png in the ``shots`` folder (docs/img has copies).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from server_helpers import LiveServer, seq_outputs

pytestmark = pytest.mark.browser


class ResBlockNet(torch.nn.Module):
    """conv → BN → ReLU → conv → BN, added to the block's input, ReLU, pool, linear: every kind
    Tiny VGG lacks (batch norm with non-trivial running statistics, a residual add), a grouped
    convolution (each output reads 2 of the 4 channels) and a dilated one."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = torch.nn.Conv2d(4, 4, 3, padding=1, groups=2)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=2, dilation=2)
        self.bn2 = torch.nn.BatchNorm2d(4)
        self.relu2 = torch.nn.ReLU()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.flatten = torch.nn.Flatten()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        s = self.stem(x)
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(s)))))
        return self.fc(self.flatten(self.pool(self.relu2(y + s))))


def resblock_model():
    from convscope.models import Model, Preprocessing

    torch.manual_seed(0)
    net = ResBlockNet()
    for bn in (net.bn1, net.bn2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return Model(net.eval(), classes=["a", "b", "c"], preprocessing=Preprocessing(size=(16, 16)), name="resblock")


@pytest.fixture(scope="module")
def registry():
    from convscope.models import load_model
    from convscope.server import Registry

    return Registry(
        ["default", "resblock"], loader=lambda spec: resblock_model() if spec == "resblock" else load_model(spec)
    )


@pytest.fixture(scope="module")
def live(registry):
    from convscope.server import create_app

    with LiveServer(create_app(registry=registry)) as server:
        yield server


@pytest.fixture()
def page(live, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    pg = ctx.new_page()
    yield pg
    ctx.close()


def wait(page, key: str = "overview") -> None:
    page.wait_for_function("(k) => ['ready', 'error'].includes(document.body.dataset[k])", arg=key, timeout=120_000)
    assert page.evaluate("(k) => document.body.dataset[k]", key) == "ready", key


def wait_article(page, article: str) -> None:
    page.wait_for_function(
        "(a) => { const p = document.getElementById('learn');"
        " return p && !p.hidden && p.dataset.state === 'ready' && p.dataset.article === a; }",
        arg=article,
        timeout=60_000,
    )


def values(page, selector: str) -> list[float]:
    """data-value of every element matching selector inside the open article ('pad' → nan)."""
    got = page.eval_on_selector_all(f"#learn .learn-live {selector}", "es => es.map((e) => e.dataset.value)")
    return [math.nan if v == "pad" else float(v) for v in got]


def value(page, key: str) -> float:
    vs = values(page, f'[data-k="{key}"]')
    assert vs, f"the article shows no {key}"
    return vs[0]


def where(page) -> tuple[int, ...]:
    """(channel, y, x) of the open article's numbers (its data-channel, data-y, data-x)."""
    d = page.evaluate("() => ({...document.querySelector('#learn .learn-article').dataset})")
    return int(d["channel"]), int(d["y"]), int(d["x"])


def open_from_contents(page, article: str) -> None:
    page.click(f'#learn .learn-toc button[data-article="{article}"]')
    wait_article(page, article)
    text = page.inner_text("#learn .learn-live")
    assert "has no layer" not in text and "Could not" not in text, text


def test_conv_article_from_a_conv_detail_shows_its_numbers_and_pytorchs(page, live, registry, shots):
    page.goto(live.url + "/?model=default")
    wait(page)
    page.locator('canvas.neuron[data-layer="conv_1_2"][data-channel="2"]').click()
    wait(page, "detail")
    at = page.evaluate("() => ({...document.querySelector('#detail .conv-formula').dataset})")
    y, x, index = int(at["y"]), int(at["x"]), int(at["index"])
    detail_value = float(page.get_attribute('#detail [data-k="value"]', "data-value"))
    detail_sum = float(page.get_attribute('#detail [data-k="channel-sum"]', "data-value"))
    detail_bias = float(page.get_attribute('#detail [data-k="bias"]', "data-value"))
    page.click("#detail .learn-link")
    wait_article(page, "conv")
    assert page.inner_text("#learn-title") == "Convolution"
    window, kernel = values(page, '[data-k="window"] td'), values(page, '[data-k="kernel"] td')
    products = values(page, '[data-k="products"] td')
    # the article shows the detail's numbers ...
    assert value(page, "value") == detail_value
    assert value(page, "channel-sum") == detail_sum
    assert value(page, "bias") == pytest.approx(detail_bias, abs=1e-7)
    # ... and they are PyTorch's: conv_1_2's input is relu_1_1's output
    image = page.evaluate("() => new URLSearchParams(location.search).get('image')")
    net = registry.entry("default").model.net
    inp = seq_outputs(net, registry.input_batch("default", image))["relu_1_1"]
    conv = net.conv_1_2
    want = F.conv2d(inp, conv.weight, conv.bias)[0, 2, y, x]
    assert value(page, "value") == pytest.approx(float(want), abs=1e-5)
    patch = inp[0, index, y : y + 3, x : x + 3].reshape(-1)
    w = conv.weight[2, index].reshape(-1)
    assert window == pytest.approx(patch.tolist(), abs=1e-6)
    assert kernel == pytest.approx(w.tolist(), abs=1e-7)
    assert products == pytest.approx((patch * w).tolist(), abs=1e-6)
    assert value(page, "channel-sum") == pytest.approx(float((patch * w).sum()), abs=1e-5)
    assert value(page, "bias") == pytest.approx(float(conv.bias[2]), abs=1e-7)
    text = page.inner_text("#learn .learn-yours")
    assert f"conv_1_2, output channel 2 at ({y}, {x})" in text and "10 input channels" in text, text
    page.screenshot(path=str(shots / "learn-conv-en.png"))
    # padding / stride / dilation from the contents: the same layer (the detail stays open)
    open_from_contents(page, "geometry")
    assert value(page, "out-size") == 24 == conv(inp).shape[-1]
    # with the drawer open, another neuron (the overview's left stays in view): the article follows it
    page.locator('canvas.neuron[data-layer="conv_1_1"][data-channel="1"]').click()
    page.wait_for_function(
        "() => (document.querySelector('#learn .learn-yours') || {}).textContent?.includes('conv_1_1 takes a 28×28 input')"
    )
    wait_article(page, "geometry")
    assert value(page, "out-size") == 26
    # Escape with the focus in the drawer closes the drawer, not the detail behind it
    page.focus("#learn-title")
    page.keyboard.press("Escape")
    page.wait_for_function("() => document.getElementById('learn').hidden")
    assert page.locator("#detail").is_visible()


def test_every_article_of_tiny_vgg_opens_on_its_numbers(page, live, registry):
    page.goto(live.url + "/?model=default")
    wait(page)
    image = page.evaluate("() => new URLSearchParams(location.search).get('image')")
    net = registry.entry("default").model.net
    x = registry.input_batch("default", image)
    outs = seq_outputs(net, x)
    page.click("#btn-learn")
    wait_article(page, "conv")  # nothing selected: the first article
    # from the contents: the first layer of the kind, its first channel that is not constant, at
    # that map's largest value (relu_1_2's channel 0 is dead: all zeros)
    open_from_contents(page, "activation")  # relu_1_1
    c, y, x = where(page)
    relu_in = outs["conv_1_1"][0, c]
    assert (y, x) == divmod(int(relu_in.clamp(min=0).abs().argmax()), 26)  # its output's peak
    assert value(page, "input") == pytest.approx(float(relu_in[y, x]), abs=1e-5)
    assert value(page, "output") == pytest.approx(max(0.0, float(relu_in[y, x])), abs=1e-5)
    open_from_contents(page, "pool")  # max_pool_1
    c, y, x = where(page)
    assert c > 0 and float(outs["max_pool_1"][0, 0].abs().max()) == 0  # channel 0 skipped
    window = outs["relu_1_2"][0, c, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2]
    assert values(page, '[data-k="window"] td') == pytest.approx(window.reshape(-1).tolist(), abs=1e-5)
    assert value(page, "value") == pytest.approx(float(window.max()), abs=1e-5) != 0
    open_from_contents(page, "flatten")  # a unit of (10, 4, 4): the peak of its channel
    unit = int(page.get_attribute("#learn .learn-article", "data-unit"))
    assert value(page, "index") == unit
    assert value(page, "value") == pytest.approx(float(outs["flatten"][0, unit]), abs=1e-5) != 0
    logits = outs["output"][0]
    top = int(logits.argmax())
    open_from_contents(page, "linear")  # the output layer: the predicted class's unit
    assert value(page, "value") == pytest.approx(float(logits[top]), abs=1e-4)
    assert value(page, "sum") + value(page, "bias") == pytest.approx(float(logits[top]), abs=1e-4)
    probs = logits.softmax(-1)
    open_from_contents(page, "softmax")
    assert value(page, "value") == pytest.approx(float(probs[top]), rel=1e-5)
    open_from_contents(page, "loss")
    assert value(page, "value") == pytest.approx(float(-torch.log(probs[top])), rel=1e-4, abs=1e-6)
    # another image: the open article reads its numbers
    before = page.inner_text("#learn .learn-yours")
    page.click(".sample >> nth=3")
    page.wait_for_function("(t) => document.querySelector('#learn .learn-yours')?.textContent !== t", arg=before)
    wait_article(page, "loss")
    image3 = page.evaluate("() => new URLSearchParams(location.search).get('image')")
    assert image3 != image
    p3 = seq_outputs(net, registry.input_batch("default", image3))["output"][0].softmax(-1)
    assert value(page, "value") == pytest.approx(float(-torch.log(p3.max())), rel=1e-4, abs=1e-6)
    open_from_contents(page, "optimizer")
    assert "A worked example" in page.inner_text("#learn .learn-live")  # no training run here
    w0 = float(net.conv_1_1.weight[0, 0, 0, 0])
    assert value(page, "w") == pytest.approx(w0, abs=1e-7)
    assert value(page, "value") == pytest.approx(w0 - 0.01 * value(page, "grad"), abs=1e-7)
    assert value(page, "lr") == 0.01
    # this model has neither batch norm nor a residual add: the articles say so
    page.click('#learn .learn-toc button[data-article="batchnorm"]')
    wait_article(page, "batchnorm")
    assert "has no layer for" in page.inner_text("#learn .learn-live")


def test_batchnorm_and_residual_articles_on_a_resblock(page, live, registry):
    page.goto(live.url + "/?model=resblock")
    wait(page)
    image = page.evaluate("() => new URLSearchParams(location.search).get('image')")
    net = registry.entry("resblock").model.net
    x = registry.input_batch("resblock", image)
    with torch.no_grad():
        s = net.stem(x)
        c1 = net.conv1(s)
        y = net.bn2(net.conv2(net.relu1(net.bn1(c1))))
    page.click("#btn-learn")
    wait_article(page, "conv")
    open_from_contents(page, "batchnorm")  # bn1
    c, i, j = where(page)
    bn = net.bn1
    assert value(page, "input") == pytest.approx(float(c1[0, c, i, j]), abs=1e-5)
    assert value(page, "mean") == pytest.approx(float(bn.running_mean[c]), abs=1e-6)
    assert value(page, "var") == pytest.approx(float(bn.running_var[c]), abs=1e-6)
    assert value(page, "value") == pytest.approx(float(bn(c1)[0, c, i, j]), abs=1e-5)
    open_from_contents(page, "add")  # y + s
    c, i, j = where(page)
    assert sorted(values(page, '[data-k="input"]')) == pytest.approx(
        sorted([float(y[0, c, i, j]), float(s[0, c, i, j])]), abs=1e-5
    )
    assert value(page, "value") == pytest.approx(float((y + s)[0, c, i, j]), abs=1e-5)
    open_from_contents(page, "geometry")  # the stem: 16x16, kernel 3, padding 1 -> 16
    assert value(page, "out-size") == 16
    # a grouped conv's detail, moved to its second input channel (channel 3 of group 2): the
    # article asks for that channel by its place in the neuron's list and shows PyTorch's numbers
    page.keyboard.press("Escape")
    page.locator('canvas.neuron[data-layer="conv1"][data-channel="3"]').click()
    wait(page, "detail")
    page.select_option("#detail select.in-channel", "3")
    page.wait_for_function("() => document.querySelector('#detail .conv-formula').dataset.index === '3'")
    at = page.evaluate("() => ({...document.querySelector('#detail .conv-formula').dataset})")
    i, j = int(at["y"]), int(at["x"])
    page.click("#detail .learn-link")
    wait_article(page, "conv")
    patch = torch.nn.functional.pad(s, (1, 1, 1, 1))[0, 3, i : i + 3, j : j + 3].reshape(-1)
    w = net.conv1.weight[3, 1].reshape(-1)  # output 3's second kernel reads input channel 3
    assert values(page, '[data-k="window"] td') == pytest.approx(patch.tolist(), abs=1e-6)
    assert values(page, '[data-k="kernel"] td') == pytest.approx(w.tolist(), abs=1e-7)
    assert value(page, "value") == pytest.approx(float(c1[0, 3, i, j]), abs=1e-5)
    assert "input channel 3" in page.inner_text("#learn .learn-yours")
    # opened from the detail of conv2 (dilation 2, padding 2): its own geometry
    page.keyboard.press("Escape")  # the drawer covers the right of the page
    page.locator('canvas.neuron[data-layer="conv2"][data-channel="1"]').click()
    wait(page, "detail")
    page.click("#detail .learn-link")
    wait_article(page, "conv")
    open_from_contents(page, "geometry")
    assert value(page, "out-size") == 16
    assert "dilation 2" in page.inner_text("#learn .learn-yours")


def test_optimizer_article_takes_a_training_runs_learning_rate(browser, registry, tmp_path):
    from test_routes_runs import write_run

    from convscope.models.zoo import TinyVGG
    from convscope.server import create_app

    write_run(tmp_path / "runs" / "small", 2, TinyVGG(in_channels=1, num_classes=10, input_size=(16, 16)))
    with LiveServer(create_app(registry=registry, runs=tmp_path / "runs")) as server:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
        page = ctx.new_page()
        page.goto(server.url + "/?model=default")
        wait(page)
        page.click("#btn-learn")
        wait_article(page, "conv")
        open_from_contents(page, "optimizer")
        text = page.inner_text("#learn .learn-live")
        assert "from your training run small (epoch 2)" in text, text
        assert value(page, "lr") == 0.001  # the run's last recorded learning rate
        assert value(page, "value") == pytest.approx(value(page, "w") - 0.001 * value(page, "grad"), abs=1e-9)
        ctx.close()


def test_cnn_explainers_tiny_vgg_articles(browser, cnn_explainer_dir):
    from convscope.models import load_model
    from convscope.server import Registry, create_app

    reg = Registry([str(cnn_explainer_dir / "model.json")], loader=load_model)
    name = reg.default
    with LiveServer(create_app(registry=reg)) as server:
        ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
        page = ctx.new_page()
        page.goto(server.url + "/")
        wait(page)
        image = page.evaluate("() => new URLSearchParams(location.search).get('image')")
        net = reg.entry(name).model.net
        x = reg.input_batch(name, image)
        with torch.no_grad():
            probs = reg.trace(name, image).trace.probs[0]
        page.click("#btn-learn")
        wait_article(page, "conv")
        for article in ("geometry", "activation", "pool", "flatten", "linear", "softmax"):
            open_from_contents(page, article)
        top = int(probs.argmax())
        assert value(page, "value") == pytest.approx(float(probs[top]), rel=1e-4)
        open_from_contents(page, "loss")
        assert value(page, "value") == pytest.approx(float(-torch.log(probs[top])), rel=1e-4, abs=1e-6)
        open_from_contents(page, "optimizer")  # a net that ends with its own softmax: −log of its output
        assert value(page, "loss") == pytest.approx(float(-torch.log(probs[top])), rel=1e-3, abs=1e-5)
        first = next(p for n, p in net.named_parameters() if n.endswith("weight") and p.dim() >= 2)
        assert value(page, "w") == pytest.approx(float(first.reshape(-1)[0]), abs=1e-7)
        assert x.shape[0] == 1
        ctx.close()


@pytest.mark.parametrize(
    ("locale", "lang", "title", "zh"), [("zh-CN", "zh-CN", "卷积", True), ("en-US", "en", "Convolution", False)]
)
def test_the_article_follows_the_browsers_language(browser, live, shots, locale, lang, title, zh):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale=locale)
    page = ctx.new_page()
    page.goto(live.url + "/?model=default")
    wait(page)
    page.locator('canvas.neuron[data-layer="conv_1_2"][data-channel="2"]').click()
    wait(page, "detail")
    page.click("#detail .learn-link")
    wait_article(page, "conv")
    assert page.evaluate("() => document.documentElement.lang") == lang
    assert page.inner_text("#learn-title") == title
    body = page.inner_text("#learn .learn-article")
    assert ("卷积核" in body) is zh and ("kernel" in body) is not zh, body[:200]
    if zh:
        page.screenshot(path=str(shots / "learn-conv-zh.png"))
        # the panel's switch: English at once, the same numbers
        v = value(page, "value")
        page.select_option("#learn .learn-lang", "en")
        page.wait_for_function("() => document.getElementById('learn-title').textContent === 'Convolution'")
        assert value(page, "value") == v
    ctx.close()


def test_tour_shows_once_closes_with_escape_and_replays(browser, live, shots):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    page = ctx.new_page()
    page.goto(live.url + "/?model=default")  # under automation, without ?tour=1: no tour
    wait(page)
    assert page.evaluate("() => document.body.dataset.tour") == "closed" and page.locator("#tour").count() == 0
    page.goto(live.url + "/?model=default&tour=1")
    wait(page)
    page.wait_for_selector("#tour")
    assert page.get_attribute("#tour", "data-key") == "model"
    assert page.evaluate("() => document.activeElement.dataset.k") == "next"  # keyboard: Enter goes on
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('tour').dataset.key === 'neuron'")
    assert page.get_attribute("#tour", "data-target") == "canvas.neuron[data-channel]:not([data-layer='input'])"
    assert "Step 4 of 7" in page.inner_text("#tour")
    page.screenshot(path=str(shots / "tour.png"))
    for _ in range(4):  # Tab stays on the card's buttons (Skip, Back, Next)
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.getElementById('tour').contains(document.activeElement)")
    page.click("#tour button:has-text('Back')")
    page.wait_for_function("() => document.getElementById('tour').dataset.key === 'overview'")
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.getElementById('tour')")
    assert page.evaluate("() => localStorage.getItem('convscope.tour')") == "done"
    page.reload()  # the second visit: remembered
    wait(page)
    page.wait_for_timeout(300)
    assert page.locator("#tour").count() == 0
    page.click("#btn-tour")  # replay
    page.wait_for_selector("#tour")
    assert page.get_attribute("#tour", "data-key") == "model"
    for _ in range(6):
        page.click("#tour [data-k='next']")
    assert page.get_attribute("#tour", "data-key") == "learn"
    page.click("#tour [data-k='next']")  # Done
    page.wait_for_function("() => !document.getElementById('tour')")
    ctx.close()


def test_axe_finds_no_serious_violation_on_learn_and_tour(browser, live):
    from test_browser_a11y import AXE, axe

    if not AXE.exists():
        pytest.skip("axe-core is an npm devDependency: run `npm ci` first")
    ctx = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    page.goto(live.url + "/?model=default&tour=1")
    wait(page)
    page.wait_for_selector("#tour")
    axe(page, "tour", "#tour")
    page.keyboard.press("Escape")
    page.locator('canvas.neuron[data-layer="conv_1_2"][data-channel="2"]').click()
    wait(page, "detail")
    page.click("#detail .learn-link")
    wait_article(page, "conv")
    axe(page, "learn (zh-CN)", "#learn")
    page.click('#learn .learn-toc button[data-article="softmax"]')
    wait_article(page, "softmax")
    axe(page, "learn softmax", "#learn")
    ctx.close()
