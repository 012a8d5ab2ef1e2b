"""The one-sentence reading of the metrics and the sanity check's pass/fail, on real maps of
EfficientNet-Lite0 and the coffee photo: a Grad-CAM map against a random one, and the
cascading randomisation of saliency against Guided Backprop."""

from __future__ import annotations

import numpy as np
import torch

from convscope import explain as ex
from convscope.explain.interpret import SANITY_SPEARMAN, describe_metrics, sanity_verdict


def test_hand_built_curves_read_in_the_right_direction():
    f = np.linspace(0, 1, 11).tolist()
    collapse = [0.9, 0.05] + [0.01] * 9  # deleting the top 10% removes the class
    rise = [0.02, 0.6] + [0.9] * 9
    flat = [0.9 - 0.8 * v for v in f]  # random order: deletion and insertion alike
    good = describe_metrics(f, collapse, rise)
    bad = describe_metrics(f, flat, flat[::-1])
    assert good.startswith("deleting the highlighted 10% drops confidence by 94%")
    assert good.endswith("the map points at evidence the model uses")
    assert "does not point at evidence" in bad
    raised = describe_metrics(f, [0.4, 0.6] + [0.5] * 9, rise)
    assert "raises confidence by 50%" in raised


def _curves(model, x, maps):
    d = ex.deletion(model, x, maps, steps=16, progress=False)
    i = ex.insertion(model, x, maps, steps=16, progress=False)
    return d, i


def test_a_real_map_reads_better_than_a_random_one(efficientnet, effnet_x):
    cam = ex.GradCAM(efficientnet)(effnet_x)
    # a random map as coarse as Grad-CAM's (7x7 blobs: per-pixel noise would delete like salt and pepper)
    coarse = torch.rand(1, 1, *cam.raw.shape[-2:], generator=torch.Generator().manual_seed(0))
    noise = torch.nn.functional.interpolate(coarse, size=cam.maps.shape[-2:], mode="bilinear")[:, 0]
    readings = {}
    for name, maps in {"gradcam": cam, "random": ex.Attribution(noise, coarse[:, 0], cam.targets, "random")}.items():
        d, i = _curves(efficientnet, effnet_x, maps)
        readings[name] = (float(d.auc[0]), float(i.auc[0]), describe_metrics(d.fractions, d.scores[0], i.scores[0]))
    (cam_del, cam_ins, cam_text), (rnd_del, rnd_ins, rnd_text) = readings["gradcam"], readings["random"]
    print(cam_text, rnd_text, sep="\n")
    # what the numbers say: Grad-CAM's ordering deletes the class faster than a random ordering
    assert cam_del < rnd_del and cam_ins - cam_del > rnd_ins - rnd_del
    assert "does not point" not in cam_text
    assert "does not point at evidence" in rnd_text


def test_sanity_verdicts_follow_the_spearman_after_randomisation(efficientnet, effnet_x):
    report = ex.sanity_check(
        efficientnet, effnet_x, methods=("saliency", "guidedbackprop"), max_steps=6, progress=False
    )
    verdicts = report.verdicts
    for m in report.methods:
        rho = float(report.spearman[m][-1].nanmean())
        passed, reason = verdicts[m]
        print(m, rho, reason)
        assert passed == (rho < SANITY_SPEARMAN)
        assert reason.startswith("pass" if passed else "fail") and f"{rho:.2f}" in reason
        assert report.steps[-1] in reason
        assert sanity_verdict(report, m) == verdicts[m]
    # Adebayo et al.: plain gradients decorrelate faster than Guided Backprop
    assert float(report.spearman["saliency"][-1].mean()) < float(report.spearman["guidedbackprop"][-1].mean())
    assert verdicts["saliency"][0] and not verdicts["guidedbackprop"][0]  # what 6 steps say here
    assert all(reason in report.table() for _, reason in verdicts.values())
