"""The per-device choice of speed-ups and TF32 off inside explanations (issue 16, part 1).

No GPU here: the CUDA side is tested through the rule (a ``cuda`` device object needs no
GPU) and the flags PyTorch reads on a GPU, which exist on every build.
"""

from __future__ import annotations

import threading

import torch

from convscope import explain as ex
from convscope.explain import speed
from convscope.explain.speed import Speedups, precise_float32, speedups


def _flags():
    return [getattr(obj, attr) for obj, attr in speed._precision_flags()]


def _tf32_on():
    for obj, attr in speed._precision_flags():
        setattr(obj, attr, "tf32" if attr == "fp32_precision" else True)


def test_precise_float32_turns_tf32_off_and_restores_the_flags():
    before = _flags()
    try:
        _tf32_on()
        on = _flags()
        with precise_float32():
            assert _flags() == ["ieee", "ieee"] or _flags() == [False, False]
            with precise_float32():  # nested: still off, and the inner exit restores nothing
                pass
            assert _flags() in (["ieee", "ieee"], [False, False])
        assert _flags() == on
        try:
            with precise_float32():
                raise KeyError("boom")
        except KeyError:
            pass
        assert _flags() == on  # restored on an exception too
    finally:
        for (obj, attr), value in zip(speed._precision_flags(), before):
            setattr(obj, attr, value)


def test_overlapping_threads_restore_the_flags_once_both_are_done():
    before = _flags()
    inside, release = threading.Barrier(2), threading.Event()
    seen = []

    def work():
        with precise_float32():
            inside.wait()
            release.wait(5)
            seen.append(_flags())

    try:
        _tf32_on()
        on = _flags()
        first = threading.Thread(target=work)
        first.start()
        with precise_float32():
            inside.wait()
            release.set()
            first.join()
            seen.append(_flags())  # the other thread left first: still off for us
        assert seen[0] == seen[1] != on
        assert _flags() == on
    finally:
        for (obj, attr), value in zip(speed._precision_flags(), before):
            setattr(obj, attr, value)


def test_an_explanation_runs_with_tf32_off_and_puts_the_flags_back(small_resnet, resnet_x):
    before = _flags()
    seen = []
    handle = small_resnet.conv1.register_forward_hook(lambda m, i, o: seen.append(_flags()))
    try:
        _tf32_on()
        on = _flags()
        for method in (
            ex.GradCAM(small_resnet, "layer4"),
            ex.IntegratedGradients(small_resnet, steps=2),
            ex.Saliency(small_resnet),
        ):
            seen.clear()
            method(resnet_x, 1)
            assert seen and all(f != on for f in seen), type(method).__name__
            assert _flags() == on
    finally:
        handle.remove()
        for (obj, attr), value in zip(speed._precision_flags(), before):
            setattr(obj, attr, value)


def test_speedups_are_the_measured_cpu_defaults_on_cpu_and_off_elsewhere():
    cam = Speedups(True, True)
    assert speedups(torch.device("cpu"), None, None, cam) == cam
    assert speedups("cpu", None, None, Speedups(True, False)) == Speedups(True, False)
    assert speedups("cuda", None, None, cam) == Speedups(False, False)  # not measured faster there
    assert speedups("cuda:1", None, None, cam) == Speedups(False, False)
    assert speedups("mps", None, None, cam) == Speedups(False, False)
    assert speedups("cuda", True, None, cam) == Speedups(True, False)  # the caller's choice wins
    assert speedups("cpu", False, False, cam) == Speedups(False, False)


def test_methods_choose_their_speedups_by_the_input_device(small_resnet, resnet_x):
    cam, ig = ex.GradCAM(small_resnet, "layer4"), ex.IntegratedGradients(small_resnet)
    assert cam.speedups(torch.device("cpu")) == Speedups(True, True)
    assert cam.speedups(torch.device("cuda")) == Speedups(False, False)
    assert ig.speedups(torch.device("cpu")) == Speedups(True, True)  # folded channels-last (test_ig_speed.py)
    assert ig.speedups(torch.device("cuda")) == Speedups(False, False)
    assert ex.Saliency(small_resnet).speedups(torch.device("cpu")) == Speedups(False, False)
    assert ex.Occlusion(small_resnet).speedups(torch.device("cpu")) == Speedups(True, False)
    assert cam.runner(resnet_x) is not small_resnet  # on the CPU the folded channels-last copy runs
    assert ex.GradCAM(small_resnet, "layer4", fold_bn=False, channels_last=False).runner(resnet_x) is small_resnet
