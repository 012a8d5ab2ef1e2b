"""convscope's attribution methods against Captum (and a Score-CAM baseline), side by side, CPU.

    python benchmarks/bench_attribution.py            # both nets, batch 1 and 16, a few minutes
    python benchmarks/bench_attribution.py --quick    # fewer steps, coarser occlusion, fewer repeats
    python benchmarks/bench_attribution.py --threads 4 --repeats 5

Nets: ``resnet18_shaped()`` (random seeded weights, eval) and the pretrained
EfficientNet-Lite0, 224x224, on the bundled photos (coffee, chelsea, repeated to the batch).

* Grad-CAM vs Captum's ``LayerGradCam`` (ReLU, same layer, same output checked), plus the
  ratio to a bare forward + backward (``net(x)[:, c].sum().backward()``, parameter
  gradients included, what pytorch-grad-cam runs). convscope variants show what each
  speed-up buys: no graph below the layer (always on), then BatchNorm folding, then
  channels-last memory format (both on by default for the CAM family).
* Score-CAM: pytorch-grad-cam needs torchvision, which cannot be installed next to this
  torch, so the baseline is a straightforward reimplementation of its algorithm: one
  masked forward per channel of the layer, 16 masked images per batch, no channel skipped.
  convscope's exact Score-CAM skips constant (e.g. all-zero) channels and runs a
  BatchNorm-folded copy; ``top_n`` is the documented approximation. Batch 1 only (one
  image costs as many forwards as the layer has channels).
* Integrated Gradients (Gauss-Legendre, same steps, same internal batch) and Occlusion
  (same window, stride and perturbations per forward) vs Captum.

Runs alternate between the two sides so a noisy machine slows both alike; the best of
``--repeats`` is reported (the least disturbed run). Images per second and the ratio
convscope / other (> 1: convscope is faster).

Latest results (2026-11-26, this repository's 2-core CPU shared with other jobs, torch
2.13.0+cpu, captum 0.9.0, 1 thread). Grad-CAM and Score-CAM with
``--quick --only gradcam scorecam`` while the machine was otherwise idle (load < 1):

    torch 2.13.0+cpu, captum 0.9.0, 1 thread(s), x86_64, best of 2
    pytorch-grad-cam: not installable here (it needs torchvision); Score-CAM is compared with a reimplementation of its algorithm (one forward per channel, batches of 16, no channel skipped)
    model                  B  what                                                ours i/s other i/s   ratio  check
    resnet18_shaped        1  Grad-CAM no graph below layer vs Captum                 6.92      6.24    1.11  max rel err 0.0e+00
    resnet18_shaped        1  Grad-CAM + BatchNorm folded vs Captum                   8.37      6.24    1.34  max rel err 2.6e-07
    resnet18_shaped        1  Grad-CAM + folded + channels-last (default) vs Captum      10.2      6.24    1.64  max rel err 4.4e-07
    resnet18_shaped        1  Grad-CAM (default) vs bare forward+backward             10.2      3.05    3.35
    resnet18_shaped       16  Grad-CAM no graph below layer vs Captum                   13      12.3    1.06  max rel err 0.0e+00
    resnet18_shaped       16  Grad-CAM + BatchNorm folded vs Captum                   15.1      12.3    1.23  max rel err 2.6e-07
    resnet18_shaped       16  Grad-CAM + folded + channels-last (default) vs Captum      17.7      12.3    1.44  max rel err 4.4e-07
    resnet18_shaped       16  Grad-CAM (default) vs bare forward+backward             17.7      4.77    3.71
    efficientnet-lite0     1  Grad-CAM no graph below layer vs Captum                   11       9.8    1.12  max rel err 0.0e+00
    efficientnet-lite0     1  Grad-CAM + BatchNorm folded vs Captum                   11.7       9.8    1.20  max rel err 1.6e-06
    efficientnet-lite0     1  Grad-CAM + folded + channels-last (default) vs Captum      13.7       9.8    1.40  max rel err 1.4e-06
    efficientnet-lite0     1  Grad-CAM (default) vs bare forward+backward             13.7      3.74    3.67
    efficientnet-lite0    16  Grad-CAM no graph below layer vs Captum                 12.7      10.6    1.20  max rel err 0.0e+00
    efficientnet-lite0    16  Grad-CAM + BatchNorm folded vs Captum                   17.4      10.6    1.64  max rel err 1.5e-06
    efficientnet-lite0    16  Grad-CAM + folded + channels-last (default) vs Captum        23      10.6    2.17  max rel err 2.1e-06
    efficientnet-lite0    16  Grad-CAM (default) vs bare forward+backward               23         4    5.75
    efficientnet-lite0     1  Score-CAM exact vs naive (581/1280 channels run)      0.0397    0.0166    2.40  max rel err 1.7e-06
    efficientnet-lite0     1  Score-CAM top_n=128 (approx.) vs naive                 0.181    0.0166   10.89  Spearman vs exact 0.998

Integrated Gradients and Occlusion, from a full ``--quick`` run under heavy load
(load average 7-8 on 2 cores; one timed round each, so +-30% noise; the Grad-CAM rows of
that run ranged 0.8-2.6x and are superseded by the table above). Those columns are
``ours i/s``, ``other i/s`` and ``ratio``; convscope and Captum do the same forwards
here, so parity is what to expect:

    resnet18_shaped        1  Integrated Gradients (4 steps) vs Captum          0.67      0.80    0.84  max rel err 0.0e+00
    resnet18_shaped        1  Occlusion (112px / 56) vs Captum                  1.12      1.06    1.06  max rel err 3.3e-07
    resnet18_shaped       16  Integrated Gradients (4 steps) vs Captum          1.12      0.96    1.17  max rel err 6.7e-08
    resnet18_shaped       16  Occlusion (112px / 56) vs Captum                  1.30      1.20    1.09  max rel err 8.9e-07
    efficientnet-lite0     1  Integrated Gradients (4 steps) vs Captum          1.47      1.59    0.93  max rel err 0.0e+00
    efficientnet-lite0     1  Occlusion (112px / 56) vs Captum                  1.58      1.29    1.23  max rel err 3.0e-06
    efficientnet-lite0    16  Integrated Gradients (4 steps) vs Captum          0.96      0.93    1.04  max rel err 9.0e-08
    efficientnet-lite0    16  Occlusion (112px / 56) vs Captum                  1.60      1.40    1.15  max rel err 3.5e-06
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")


DEVICE = torch.device("cpu")


def sync() -> None:
    """Wait for the device's queued work, so a GPU timing covers the work, not its launch."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


class Times(dict):
    """Each function's wall times over the alternating rounds; ``t[k]`` is the best one. ``cpu``:
    the process CPU times (all threads), steadier than wall time when other jobs share the cores."""

    cpu: dict[str, list[float]]

    def __getitem__(self, k: str) -> float:
        return min(super().__getitem__(k))

    def median(self, k: str) -> float:
        return float(statistics.median(super().__getitem__(k)))

    def cpu_ratio(self, ours: str, other: str) -> float:
        return min(self.cpu[other]) / min(self.cpu[ours])


def best_time(fns: dict[str, Callable[[], object]], repeats: int, warm_up: bool = True) -> Times:
    """Wall times of each function over ``repeats`` alternating rounds (best: ``t[k]``, ``t.median(k)``)."""
    if warm_up:  # (also builds caches: layer lookup, folded copy)
        for fn in fns.values():
            fn()
    sync()
    times = Times({k: [] for k in fns})
    times.cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            sync()
            dict.__getitem__(times, k).append(time.perf_counter() - t)
            times.cpu[k].append(time.process_time() - c)
    return times


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def load_nets():
    from skimage import data

    from convscope.models import load_model
    from convscope.models.model import Model
    from convscope.models.reference_nets import resnet18_shaped

    eff = load_model("efficientnet-lite0")
    torch.manual_seed(0)
    res = Model(resnet18_shaped().eval(), name="resnet18_shaped")
    photos = [data.coffee(), data.chelsea()]
    nets = []
    for model, layer in ((res, "layer4"), (eff, "_bn1")):
        x = torch.cat([eff.batch(p) for p in photos])  # same pixels for both nets
        model.net.to(DEVICE)
        nets.append((model, layer, x.to(DEVICE)))
    return nets


def batch_of(x: torch.Tensor, b: int) -> torch.Tensor:
    return x.repeat((b + len(x) - 1) // len(x), 1, 1, 1)[:b].contiguous()


def row(rows: list, *cells, median: float | None = None, cpu: float | None = None) -> None:
    """One printed line: images/s of both sides (best round), their ratio, the ratio of the medians
    and of the best CPU times."""
    rows.append(cells)
    name, b, what, ours, other, note = cells
    med = f"({median:.2f})" if median is not None else ""
    cpu_ratio = f"cpu {cpu:.2f}" if cpu is not None else ""
    print(
        f"{name:<20}{b:>4}  {what:<50}{ours:>10.3g}{other:>10.3g}{ours / other:>8.2f}{med:>7} {cpu_ratio:>9}  {note}",
        flush=True,
    )


def race_captum(rows, name, b, what, variants, theirs, xb, target, notes, repeats) -> None:
    """Time Captum's ``theirs()`` against each convscope variant on (xb, target), already warmed up; a row each.

    ``what``: the row's label with ``{}`` for the variant's name; ``notes[k]``: its accuracy.
    """
    fns = {"captum": theirs, **{k: (lambda v=v: v(xb, target)) for k, v in variants.items()}}
    t = best_time(fns, repeats, warm_up=False)
    for k in variants:
        median, cpu = t.median("captum") / t.median(k), t.cpu_ratio(k, "captum")
        row(rows, name, b, what.format(k), b / t[k], b / t["captum"], notes[k], median=median, cpu=cpu)


def bench_gradcam(model, layer, x, b, repeats, rows):
    from captum.attr import LayerGradCam

    import convscope as cs

    net = model.net
    xb = batch_of(x, b)
    with torch.no_grad():
        target = net(xb).argmax(1)
    captum = LayerGradCam(net, dict(net.named_modules())[layer])
    variants = {
        "no graph below layer": cs.GradCAM(model, layer, fold_bn=False, channels_last=False),
        "+ BatchNorm folded": cs.GradCAM(model, layer, channels_last=False),
        "+ folded + channels-last (default)": cs.GradCAM(model, layer),
    }
    want = captum.attribute(xb, target, relu_attributions=True)[:, 0]
    errs = {k: rel_err(v(xb, target).raw, want) for k, v in variants.items()}
    # the README's one-call form: a new method object per call, the copy shared per model
    one_call = lambda: cs.attribute(model, xb, method="gradcam", layer=layer, target=target)  # noqa: E731
    errs["one call cs.attribute (default)"] = rel_err(one_call().raw, want)

    def bare():
        net.zero_grad(set_to_none=True)
        out = net(xb)
        out.gather(1, target.view(-1, 1)).sum().backward()

    fns = {"captum": lambda: captum.attribute(xb, target, relu_attributions=True), "bare": bare}
    fns.update({k: (lambda v=v: v(xb, target)) for k, v in variants.items()})
    fns["one call cs.attribute (default)"] = one_call
    t = best_time(fns, repeats)
    net.zero_grad(set_to_none=True)
    for k in [*variants, "one call cs.attribute (default)"]:
        row(
            rows,
            model.name,
            b,
            f"Grad-CAM {k} vs Captum",
            b / t[k],
            b / t["captum"],
            f"max rel err {errs[k]:.1e}",
            median=t.median("captum") / t.median(k),
            cpu=t.cpu_ratio(k, "captum"),
        )
    default = "+ folded + channels-last (default)"
    row(
        rows,
        model.name,
        b,
        "Grad-CAM (default) vs bare forward+backward",
        b / t[default],
        b / t["bare"],
        "",
        median=t.median("bare") / t.median(default),
        cpu=t.cpu_ratio(default, "bare"),
    )


def naive_scorecam(net, layer: str, x: torch.Tensor, target: int, batch: int = 16) -> torch.Tensor:
    """pytorch-grad-cam's algorithm: every channel, one masked forward each, 16 per batch."""
    acts = {}
    h = dict(net.named_modules())[layer].register_forward_hook(lambda m, i, o: acts.__setitem__("a", o.detach()))
    with torch.no_grad():
        net(x)
    h.remove()
    a = acts["a"][0]
    up = F.interpolate(a.unsqueeze(1), size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    lo, hi = up.flatten(1).amin(1).view(-1, 1, 1), up.flatten(1).amax(1).view(-1, 1, 1)
    masks = (up - lo) / (hi - lo).clamp_min(1e-12)
    probs = []
    with torch.no_grad():
        for i in range(0, len(masks), batch):
            probs.append(net(x * masks[i : i + batch].unsqueeze(1)).softmax(-1)[:, target])
    w = torch.cat(probs) * (hi > lo).view(-1).float()  # constant maps carry no weight (same definition)
    return (w.view(-1, 1, 1) * a).sum(0).clamp(min=0)


def bench_scorecam(model, layer, x, repeats, rows, top_n):
    import convscope as cs

    net = model.net
    x1 = x[:1]
    with torch.no_grad():
        target = int(net(x1).argmax(1))
    exact = cs.ScoreCAM(model, layer, batch_size=64)
    approx = cs.ScoreCAM(model, layer, batch_size=64, top_n=top_n)
    ours = exact(x1, target).raw[0]
    base = naive_scorecam(net, layer, x1, target)
    flat = exact.layer_ref(x1)
    k = flat.shape[1]
    with torch.no_grad():
        acts = {}
        h = dict(net.named_modules())[layer].register_forward_hook(lambda m, i, o: acts.__setitem__("a", o))
        net(x1)
        h.remove()
    run = int(exact.channels(acts["a"]).sum())
    t = best_time(
        {
            "naive": lambda: naive_scorecam(net, layer, x1, target),
            "exact": lambda: exact(x1, target),
            "approx": lambda: approx(x1, target),
        },
        repeats,
    )
    row(
        rows,
        model.name,
        1,
        f"Score-CAM exact vs naive ({run}/{k} channels run)",
        1 / t["exact"],
        1 / t["naive"],
        f"max rel err {rel_err(ours, base):.1e}",
    )
    top = approx(x1, target).raw[0]
    from convscope.explain import spearman

    row(
        rows,
        model.name,
        1,
        f"Score-CAM top_n={top_n} (approx.) vs naive",
        1 / t["approx"],
        1 / t["naive"],
        f"Spearman vs exact {float(spearman(top[None], ours[None])):.3f}",
    )


def bench_ig(model, x, b, steps, repeats, rows):
    """IG against Captum; ``check``: each side's largest difference from Captum run in float64
    on a float64 copy of the net (relative to its largest value), so kink flips show as what
    they are, float32 rounding on either side."""
    import copy

    from captum.attr import IntegratedGradients

    import convscope as cs

    xb = batch_of(x, b)
    with torch.no_grad():
        target = model.net(xb).argmax(1)
    per_forward = 32
    variants = {
        "plain": cs.IntegratedGradients(model, steps=steps, batch_size=per_forward, fold_bn=False, channels_last=False),
        "channels-last": cs.IntegratedGradients(model, steps=steps, batch_size=per_forward, fold_bn=False),
        "folded + channels-last (CPU default)": cs.IntegratedGradients(model, steps=steps, batch_size=per_forward),
    }
    captum = IntegratedGradients(model.net)
    internal = max(b, (per_forward // b) * b)

    def theirs():
        return captum.attribute(xb, target=target, n_steps=steps, internal_batch_size=internal)

    want = theirs()
    f64 = (
        IntegratedGradients(copy.deepcopy(model.net).double())
        .attribute(xb.double(), target=target, n_steps=steps, internal_batch_size=internal)
        .float()
    )
    errs = {k: rel_err(v(xb, target).raw, f64) for k, v in variants.items()}  # doubles as the warm-up
    notes = {k: f"vs float64: {e:.1e} (Captum {rel_err(want, f64):.1e})" for k, e in errs.items()}
    race_captum(rows, model.name, b, f"IG ({steps} steps) {{}} vs Captum", variants, theirs, xb, target, notes, repeats)


def bench_occlusion(model, x, b, window, stride, repeats, rows):
    from captum.attr import Occlusion

    import convscope as cs

    xb = batch_of(x, b)
    with torch.no_grad():
        target = model.net(xb).argmax(1)
    per_forward = 32
    kw = {"window": window, "stride": stride, "batch_size": per_forward}
    variants = {
        "folded, no reuse": cs.Occlusion(model, reuse=False, channels_last=False, **kw),
        "+ reuse outside window": cs.Occlusion(model, channels_last=False, **kw),
        "+ reuse + channels-last": cs.Occlusion(model, channels_last=True, **kw),
        "default": cs.Occlusion(model, **kw),
    }
    captum = Occlusion(model.net)

    def theirs():
        return captum.attribute(
            xb,
            sliding_window_shapes=(3, window, window),
            strides=(3, stride, stride),
            baselines=0.0,
            target=target,
            perturbations_per_eval=max(1, per_forward // b),
        )

    want = theirs()[:, 0]
    errs = {k: rel_err(v(xb, target).raw, want) for k, v in variants.items()}  # doubles as the warm-up
    notes = {k: f"max rel err {e:.1e}" for k, e in errs.items()}
    what = f"Occlusion {window}/{stride} {{}} vs Captum"
    race_captum(rows, model.name, b, what, variants, theirs, xb, target, notes, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps, coarser occlusion, fewer repeats")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1)")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds per measurement (default 3, quick 2)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    p.add_argument(
        "--only",
        nargs="+",
        choices=["gradcam", "scorecam", "ig", "occlusion"],
        default=["gradcam", "scorecam", "ig", "occlusion"],
    )
    p.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="where nets and inputs live (cuda: timings wait for the GPU's queue)",
    )
    args = p.parse_args()
    global DEVICE
    DEVICE = torch.device(args.device)
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (2 if args.quick else 3)
    steps = 4 if args.quick else 16
    slow_repeats = args.repeats or (1 if args.quick else repeats)  # IG and occlusion: many forwards per call
    window, stride = (112, 56) if args.quick else (56, 28)
    import captum

    gpu = f", {torch.cuda.get_device_name(DEVICE)}" if DEVICE.type == "cuda" else ""
    print(
        f"torch {torch.__version__}, captum {captum.__version__}, {DEVICE.type}{gpu}, {args.threads} thread(s), "
        f"{platform.processor() or platform.machine()}, best of {repeats}, load {os.getloadavg()[0]:.1f}"
    )
    print(
        "Score-CAM baseline here: a reimplementation of its algorithm (one forward per channel, batches of 16, "
        "no channel skipped); the real pytorch-grad-cam is in bench_gradcam_lib.py (its own venv)"
    )
    print(f"{'model':<20}{'B':>4}  {'what':<50}{'ours i/s':>10}{'other i/s':>10}{'ratio':>8}  check")
    rows: list = []
    start = time.perf_counter()
    for model, layer, x in load_nets():
        for b in args.batches:
            if "gradcam" in args.only:
                bench_gradcam(model, layer, x, b, repeats, rows)
        if "scorecam" in args.only and not (args.quick and model.name == "resnet18_shaped"):
            bench_scorecam(model, "_swish" if model.name == "efficientnet-lite0" else layer, x, 1, rows, top_n=128)
        for b in args.batches:
            if "ig" in args.only:
                bench_ig(model, x, b, steps, slow_repeats, rows)
            if "occlusion" in args.only:
                bench_occlusion(model, x, b, window, stride, slow_repeats, rows)
    print(f"total {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
