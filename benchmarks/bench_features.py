"""Activation maximisation speed (Adam steps per second) on the CPU, side by side.

    python benchmarks/bench_features.py [--steps 20] [--threads 2] [--models tiny-vgg,resnet18,efficientnet]

For each net (fixed input size) and one channel of a middle layer it times:

* ``convscope fft``: :func:`convscope.features.visualize` as users run it (Fourier +
  decorrelated colour, jitter/scale/rotation, redirected ReLU, forward stopped after the
  layer);
* ``convscope pixel``: plain pixels, no transforms and no redirected ReLU (the bare
  machinery: hooks, early stop, objective, Adam);
* ``plain loop``: a minimal plain-PyTorch gradient ascent (pixels, a forward hook, the
  full forward, Adam, the model's parameters frozen), the floor any tool pays;
* ``lucent``: Lucent's ``render_vis`` on the same objective and size, when Lucent imports.
  torch-lucent 0.1.8 imports torchvision (``transforms.Normalize``) and kornia<=0.4.1 at
  import time; torchvision cannot be installed beside this torch, so on such a machine
  this column says why it is missing.

Each timing runs 2 warm-up steps, then ``--steps`` steps; the table prints steps/s.

Latest numbers (2026-11-26, the shared 2-core development VM under a load average of 5-9
from other jobs, torch 2.13.0+cpu, ``--threads 1``; two runs, so the spread is visible):

    python benchmarks/bench_features.py --steps 10 --threads 1   (run 1)
    python benchmarks/bench_features.py --steps 20 --threads 1   (run 2)

| model (input)                  | layer          | convscope fft | convscope pixel | plain loop | lucent |
|--------------------------------|----------------|---------------|-----------------|------------|--------|
| Tiny VGG 64x64x3               | conv_2_2       | 173 / 123     | 317 / 226       | 350 / 253  | n/a    |
| ResNet-18-shaped 224x224x3     | layer3.1.conv2 | 7.5 / 5.7     | 9.0 / 7.3       | 5.4 / 8.7  | n/a    |
| EfficientNet-Lite0 224x224x3   | _blocks.10     | 4.0 / 5.2     | 7.0 / 6.8       | 6.9 / 5.1  | n/a    |

Lucent: ``pip download torch-lucent --no-deps`` gives torch_lucent 0.1.8, whose
``lucent/optvis/transform.py`` imports ``torchvision.transforms.Normalize`` and ``kornia``
(pinned ``kornia<=0.4.1``) at import time, so ``render_vis`` cannot run without
torchvision, which cannot be installed beside this torch; the plain loop stands in for it.
The full convscope path (Fourier parameterisation, per-image random transforms,
redirected ReLU gradients) costs 1.3-2x the bare loop per step on small nets; stopping the
forward pass after the target layer pays some of that back on the big ones.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from convscope.features import visualize
from convscope.features.layers import resolve_layer
from convscope.models import Model, Preprocessing, load_model
from convscope.models.reference_nets import resnet18_shaped


def nets(names: list[str]) -> list[tuple[str, Model, str, int]]:
    out = []
    if "tiny-vgg" in names:
        out.append(("Tiny VGG 64x64x3", load_model("tiny-vgg"), "conv_2_2", 3))
    if "resnet18" in names:
        torch.manual_seed(0)
        prep = Preprocessing(size=(224, 224), channels=3, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4))
        out.append(
            (
                "ResNet-18-shaped 224x224x3",
                Model(resnet18_shaped().eval(), preprocessing=prep, name="resnet18"),
                "layer3.1.conv2",
                7,
            )
        )
    if "efficientnet" in names:
        try:
            out.append(("EfficientNet-Lite0 224x224x3", load_model("efficientnet-lite0"), "_blocks.10", 5))
        except Exception as exc:  # the zoo extra may be missing
            print(f"EfficientNet-Lite0 skipped: {exc}")
    return out


def time_convscope(model: Model, layer: str, channel: int, steps: int, **kw) -> float:
    visualize(model, layer, [channel], steps=2, **kw)
    t = time.perf_counter()
    visualize(model, layer, [channel], steps=steps, **kw)
    return steps / (time.perf_counter() - t)


def time_plain_loop(model: Model, layer: str, channel: int, steps: int) -> float:
    """The minimal loop: pixels -> normalise -> full forward with a hook -> -mean(channel) -> Adam."""
    net = model.net
    _, module = resolve_layer(net, layer)
    prep = model.preprocessing
    mean = torch.tensor(prep.mean).view(-1, 1, 1)
    std = torch.tensor(prep.std).view(-1, 1, 1)
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    box = {}
    handle = module.register_forward_hook(lambda m, i, o: box.__setitem__("a", o))
    try:

        def run(n: int) -> float:
            x = torch.rand(1, *model.input_shape, requires_grad=True)
            opt = torch.optim.Adam([x], lr=0.05)
            t = time.perf_counter()
            for _ in range(n):
                opt.zero_grad()
                net((x.clamp(0, 1) * 255 - mean) / std)
                loss = -box["a"][0, channel].mean()
                loss.backward()
                opt.step()
            return n / (time.perf_counter() - t)

        run(2)
        return run(steps)
    finally:
        handle.remove()
        for p, f in zip(net.parameters(), flags):
            p.requires_grad_(f)


def time_lucent(model: Model, layer: str, channel: int, steps: int) -> float | str:
    try:
        from lucent.optvis import param, render
    except Exception as exc:  # ImportError, or kornia/torchvision incompatibilities
        return f"n/a ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})"
    h, w = model.preprocessing.size
    name = layer.replace(".", "_")  # Lucent names layers with underscores
    kwargs = dict(param_f=lambda: param.image(h, w=w), show_image=False, progress=False, fixed_image_size=(h, w))
    render.render_vis(model.net, f"{name}:{channel}", thresholds=(2,), **kwargs)
    t = time.perf_counter()
    render.render_vis(model.net, f"{name}:{channel}", thresholds=(steps,), **kwargs)
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="tiny-vgg,resnet18,efficientnet")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} CPU threads, {platform.processor() or platform.machine()}, "
        f"{args.steps} timed steps, batch of 1 image, one channel"
    )
    rows = []
    for title, model, layer, channel in nets(args.models.split(",")):
        fft = time_convscope(model, layer, channel, args.steps)
        pixel = time_convscope(model, layer, channel, args.steps, param="pixel", transforms="none", redirect_relu=False)
        plain = time_plain_loop(model, layer, channel, args.steps)
        lucent = time_lucent(model, layer, channel, args.steps)
        rows.append((title, layer, fft, pixel, plain, lucent))
        print(f"  done {title}", flush=True)
    head = f"| {'model':28} | {'layer':16} | convscope fft | convscope pixel | plain loop | lucent |"
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for title, layer, fft, pixel, plain, lucent in rows:
        luc = f"{lucent:.2f}" if isinstance(lucent, float) else lucent
        print(f"| {title:28} | {layer:16} | {fft:13.2f} | {pixel:15.2f} | {plain:10.2f} | {luc} |")
    print("(steps/s; higher is better)")


if __name__ == "__main__":
    main()
