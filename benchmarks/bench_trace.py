"""What does a trace cost over a bare forward pass of the same model and batch?

    python benchmarks/bench_trace.py                       # EfficientNet-Lite0 and ResNet-18-shaped, batch 1 and 8
    python benchmarks/bench_trace.py --repeats 30 --device cuda --json out.json

Both sides run in eval mode under ``torch.no_grad``; the bare side is ``net(x)``, the
trace side is ``convscope.trace(model, x)`` (fx graph cached after the first call,
every layer's output kept). The two are timed alternately, so a noisy machine slows
both alike, and the median of ``--repeats`` rounds is reported. Target: ratio <= 1.3.

Latest results (2026-11-26, commit after 4a0f886; torch 2.11.0+cu130 on the lent
H200 machine, 16 CPU threads; ``--repeats 15`` on CPU, ``--repeats 30 --device cuda``):

    model                batch  forward ms   trace ms  ratio
    cpu   efficientnet-lite0  1     12.91      16.59    1.29
    cpu   efficientnet-lite0  8     74.92      88.24    1.18
    cpu   resnet18_shaped     1      8.72       9.15    1.05
    cpu   resnet18_shaped     8     50.83      50.95    1.00
    cuda  efficientnet-lite0  1      4.40       4.90    1.11
    cuda  efficientnet-lite0  8      3.74       4.55    1.22
    cuda  resnet18_shaped     1      1.50       1.75    1.17
    cuda  resnet18_shaped     8      2.51       2.75    1.09

What remains on CPU is mostly memory, not Python: a trace keeps every layer's output
alive, so the allocator cannot reuse a freed buffer that is still hot in cache (the
graph that merely returns all values costs about as much as the whole trace).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def bench(name: str, model, batch: int, repeats: int, warmup: int) -> dict:
    from convscope import trace

    device = model.device
    net = model.net.eval()
    x = torch.randn(batch, *model.input_shape, device=device)

    def forward() -> None:
        with torch.no_grad():
            net(x)

    def traced() -> None:
        trace(model, x)

    for _ in range(warmup):
        forward()
        traced()
    fwd, trc = [], []
    for _ in range(repeats):
        fwd.append(_time(forward, device))
        trc.append(_time(traced, device))
    f, t = statistics.median(fwd), statistics.median(trc)
    return {
        "model": name,
        "batch": batch,
        "device": str(device),
        "forward_ms": 1e3 * f,
        "trace_ms": 1e3 * t,
        "ratio": t / f,
        "repeats": repeats,
    }


def models(device: torch.device):
    from convscope.models import Model, load_model
    from convscope.models.reference_nets import resnet18_shaped

    yield "efficientnet-lite0", load_model("efficientnet-lite0", device=device)
    yield "resnet18_shaped", Model(resnet18_shaped().eval().to(device), name="resnet18_shaped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    print(
        f"device {device}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
        f"median of {args.repeats} alternating rounds"
    )
    print(f"{'model':<20} {'batch':>5} {'forward ms':>11} {'trace ms':>10} {'ratio':>6}")
    for name, model in models(device):
        for b in args.batches:
            r = bench(name, model, b, args.repeats, args.warmup)
            rows.append(r)
            flag = "" if r["ratio"] <= 1.3 else "  (over 1.3x target)"
            print(
                f"{name:<20} {b:>5} {r['forward_ms']:>11.2f} {r['trace_ms']:>10.2f} {r['ratio']:>6.2f}{flag}",
                flush=True,
            )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
