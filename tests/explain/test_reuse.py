"""The one-call form shares the per-model work: reused, invalidated by a change, weak, thread-safe."""

from __future__ import annotations

import gc
import threading
import weakref

import torch
from captum.attr import LayerGradCam

import convscope as cs
from convscope.explain import speed
from convscope.explain.reuse import SHARED

from conftest import _seeded_resnet


def captum_gradcam(net, layer, x, target):
    return LayerGradCam(net, dict(net.named_modules())[layer]).attribute(x, target, relu_attributions=True)[:, 0]


def counting_folds(monkeypatch) -> list[int]:
    made: list[int] = []
    real = speed.folded_copy

    def counted(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("convscope.explain.base.folded_copy", counted)
    return made


def test_one_call_builds_the_folded_copy_once_per_model(monkeypatch, resnet_x):
    net = _seeded_resnet(8)
    made = counting_folds(monkeypatch)
    first = cs.attribute(net, resnet_x, method="gradcam", layer="layer3", target=[1, 2])
    for _ in range(3):
        again = cs.attribute(net, resnet_x, method="gradcam", layer="layer3", target=[1, 2])
    assert len(made) == 1
    assert torch.equal(first.raw, again.raw)
    torch.testing.assert_close(
        again.raw, captum_gradcam(net, "layer3", resnet_x, torch.tensor([1, 2])), rtol=1e-4, atol=1e-6
    )


def test_changed_weights_or_settings_are_seen(monkeypatch, resnet_x):
    net = _seeded_resnet(8)
    made = counting_folds(monkeypatch)
    target = torch.tensor([3, 3])
    cs.attribute(net, resnet_x, method="gradcam", layer="layer3", target=target)
    with torch.no_grad():
        net.layer3[0].bn1.running_var.mul_(3.0)  # in place: the folded copy is stale
        net.conv1.weight.mul_(-1.0)
    after = cs.attribute(net, resnet_x, method="gradcam", layer="layer3", target=target)
    assert len(made) == 2
    torch.testing.assert_close(after.raw, captum_gradcam(net, "layer3", resnet_x, target), rtol=1e-4, atol=1e-6)
    net.relu.inplace = False  # a plain setting changes the key too
    cs.attribute(net, resnet_x, method="gradcam", layer="layer3", target=target)
    assert len(made) == 3


def test_the_cache_does_not_keep_a_model_alive(resnet_x):
    net = _seeded_resnet(8)
    cs.attribute(net, resnet_x, method="gradcam")
    cs.attribute(net, resnet_x, method="saliency")
    alive = weakref.ref(net)
    del net
    gc.collect()
    assert alive() is None


def test_threads_share_it_and_get_what_one_thread_gets(resnet_x):
    net = _seeded_resnet(8)
    SHARED.clear()
    alone = cs.attribute(net, resnet_x, method="gradcam", target=[0, 1]).raw
    SHARED.clear()
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(cs.attribute(net, resnet_x, method="gradcam", target=[0, 1]).raw)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 12 and all(torch.equal(r, alone) for r in results)
