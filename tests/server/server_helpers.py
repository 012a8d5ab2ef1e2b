"""Helpers shared by the explorer tests (imported as a plain module: tests/ has no packages)."""

from __future__ import annotations

import io
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from convscope.models import Model, Preprocessing, load_model
from convscope.models.reference_nets import FunctionalCNN, resnet18_shaped

from live_server import LiveServer, free_port  # noqa: F401  (re-exported)


def seq_outputs(net: torch.nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each named child's output, by running the Sequential one child at a time."""
    out = {"input": x}
    with torch.no_grad():
        for name, child in net.named_children():
            x = child(x)
            out[name] = x
    return out


def hooked_outputs(live, model: str) -> dict[str, torch.Tensor]:
    """Each named module's output on the sample image of a live server's ``model``, recomputed
    with forward hooks: what the server's answers about its layers must equal."""
    reg = live.app.state.registry
    net, found = reg.entry(model).model.net, {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: found.__setitem__(n, o)) for n, m in net.named_modules() if n]
    with torch.no_grad():
        net(reg.input_batch(model, "sample-0"))
    for h in hooks:
        h.remove()
    return found


def open_overview(browser, url: str, width: int = 1400, height: int = 900):
    """A new page at ``url`` once its overview is ready, and the list its console errors and
    uncaught exceptions go to (fails with them if the overview ends in error)."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("() => ['ready', 'error'].includes(document.body.dataset.overview)", timeout=120_000)
    assert page.evaluate("() => document.body.dataset.overview") == "ready", errors
    return page, errors


def fold_all(page, folded: bool) -> None:
    """Fold (or unfold) every block of the overview with its one button, then wait until the page has redrawn."""
    if page.evaluate("() => document.querySelector('.group.folded') !== null") != folded:
        page.click("#btn-fold")
    page.wait_for_function(
        "(f) => [...document.querySelectorAll('.group')].every(g => g.classList.contains('folded') === f)",
        arg=folded,
    )
    page.wait_for_function("() => document.body.dataset.overview === 'ready'")


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def digits_dataset():
    """The ten real MNIST digits shipped with the explorer plus their mirror images: a
    20-image dataset for top-example tests that loads instantly."""
    from convscope.data.base import ImageDataset
    from convscope.server.images import mnist_digits

    pairs = mnist_digits()
    imgs = np.stack([img for _, img in pairs] + [img[:, ::-1] for _, img in pairs])[:, None]
    return ImageDataset(
        "digits-20",
        [str(i) for i in range(10)],
        torch.from_numpy(imgs.copy()),
        torch.tensor([int(y) for y, _ in pairs] * 2),
    )


CLASSES = [f"class {i}" for i in range(10)]


def small_loader(spec: str) -> Model:
    """'functional' (add + concat, 3x32x32) and 'resnet' (BatchNorm, residuals) built here; the rest by load_model."""
    torch.manual_seed(0)
    if spec == "functional":
        return Model(
            FunctionalCNN().eval(), classes=CLASSES, preprocessing=Preprocessing(size=(32, 32)), name="functional"
        )
    if spec == "resnet":
        net = resnet18_shaped(num_classes=10).eval()
        for m in net.modules():  # non-trivial running statistics, so batchnorm is not the identity
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
        return Model(net, classes=CLASSES, preprocessing=Preprocessing(size=(32, 32)), name="resnet")
    if spec == "fcn":  # no classifier head: the output is a map, not class scores
        net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
        return Model(net.eval(), preprocessing=Preprocessing(size=(32, 32)), name="fcn")
    return load_model(spec)


@contextmanager
def digits_app(cache_dir):
    """The explorer with the default model measured on ``digits``, caching under ``cache_dir``."""
    import pytest

    from convscope.server import create_app

    mp = pytest.MonkeyPatch()
    mp.setenv("CONVSCOPE_CACHE", str(cache_dir))
    try:
        yield create_app(["default"], data="digits")
    finally:
        mp.undo()
