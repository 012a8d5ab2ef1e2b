"""Bounded load test of the explorer's API on 127.0.0.1.

    python benchmarks/loadtest.py [--models default efficientnet-lite0] [--requests 100]
                                  [--attribution-requests 20] [--concurrency 8] [--url http://127.0.0.1:PORT]

Without ``--url`` it starts ``convscope serve`` itself (a subprocess on 127.0.0.1 and a
free port, all models given), waits until it answers, runs the test and stops it. With
``--url`` it uses a server already running on this machine (loopback addresses only).

For each model and endpoint it sends a fixed number of requests from ``--concurrency``
threads (one warm-up request first, not counted), then stops. Endpoints: the model
list, the trace of a sample (cached after the warm-up, as in the page), a page of 64
channels of the first conv layer (float16), the detail of one conv neuron, an upload
of a new PNG (each request a different image: decoded, preprocessed and checked every
time), and, when the server has it, a Grad-CAM attribution (``metrics=false``; request i
explains class i mod the class count, since answers are cached per class).

Prints one table row per (model, endpoint): requests/s, p50 and p99 latency in ms,
errors (non-2xx or failed connections), and the server process's CPU seconds spent on
that endpoint (from /proc/PID/stat, so it is meaningful on a machine shared with other
work; only when this script started the server). Exits 1 if any request failed.

Latest results (2026-11-26, this 2-core CPU machine shared with other engineers' jobs,
load average 6.6; ``python benchmarks/loadtest.py`` = 100 requests per endpoint, 20 for
attribution, concurrency 8, client and server in separate processes on 127.0.0.1)::

    model               endpoint               requests  req/s  p50 ms  p99 ms  errors  server CPU s
    default             models                      100  286.8       9      83       0          0.09
    default             trace                       100  592.1      13      22       0          0.08
    default             activations page            100  268.9      18     108       0          0.12
    default             detail                      100  226.7      22      92       0          0.23
    default             upload                      100  247.4      15     175       0          0.30
    default             attribution (gradcam)        20  154.4      38      97       0          0.07
    efficientnet-lite0  models                      100  379.3      13      91       0          0.10
    efficientnet-lite0  trace                       100  730.7       9      31       0          0.12
    efficientnet-lite0  activations page            100   49.3     120     483       0          0.92
    efficientnet-lite0  detail                      100   40.8     160     472       0          1.10
    efficientnet-lite0  upload                      100   24.6     202     904       0          0.86
    efficientnet-lite0  attribution (gradcam)        20    6.1    1206    1986       0          3.03

Latency under this load is mostly waiting for a core: the server's own CPU per request
is far lower (e.g. 9 ms per EfficientNet activations page against a 120 ms median).
"trace" is the cached trace the page asks for; "upload" decodes, checks and preprocesses a
new image on every request (it does not trace it).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlparse

import httpx
import numpy as np
from PIL import Image


@dataclass
class Row:
    model: str
    endpoint: str
    n: int
    seconds: float
    latencies: list[float]
    errors: int
    cpu: float | None

    def cells(self) -> list[str]:
        lat = sorted(self.latencies) or [float("nan")]
        p99 = lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]
        cpu = f"{self.cpu:.2f}" if self.cpu is not None else "n/a"
        return [
            self.model,
            self.endpoint,
            str(self.n),
            f"{self.n / self.seconds:.1f}",
            f"{statistics.median(lat) * 1000:.0f}",
            f"{p99 * 1000:.0f}",
            str(self.errors),
            cpu,
        ]


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of process ``pid`` (and its waited-for children) from /proc."""
    if pid is None:
        return None
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cmd = [sys.executable, "-m", "convscope", "serve", "--host", "127.0.0.1", "--port", str(port)]
    for m in models:
        cmd += ["--model", m]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"convscope serve exited: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/api/models", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("convscope serve did not answer within 300 s")


def png_maker(shape: tuple[int, ...]) -> Callable[[int], bytes]:
    """Request i uploads a different random image of the model's input size (so nothing is cached)."""

    def make(i: int) -> bytes:
        pixels = np.random.default_rng(i + 1).integers(0, 256, shape, dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        return buf.getvalue()

    return make


def run_endpoint(
    http: httpx.Client, send: Callable[[httpx.Client, int], httpx.Response], n: int, concurrency: int, pid: int | None
) -> tuple[float, list[float], int, float | None]:
    """Warm up once, then ``n`` requests from ``concurrency`` threads.

    Returns (wall seconds, latencies, errors, server CPU seconds after the warm-up).
    """
    send(http, -1)
    cpu0 = cpu_seconds(pid)

    def one(i: int) -> tuple[float, bool]:
        t = time.perf_counter()
        try:
            ok = send(http, i).is_success
        except httpx.HTTPError:
            ok = False
        return time.perf_counter() - t, ok

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(n)))
    wall = time.perf_counter() - start
    cpu1 = cpu_seconds(pid)
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return wall, [r[0] for r in results], sum(not r[1] for r in results), cpu


def endpoints(http: httpx.Client, model: str, n: int, n_attr: int) -> list[tuple[str, int, Callable]]:
    info = http.get(f"/api/models/{model}").raise_for_status().json()
    c, h, w = info["input_shape"]
    sample = info["samples"][0]["id"]
    trace = http.get(f"/api/models/{model}/trace", params={"image": sample}).raise_for_status().json()
    conv = next(layer for layer in trace["layers"] if layer["kind"] == "conv")
    oh, ow = conv["shape"][-2:] if "shape" in conv else (1, 1)
    base = f"/api/models/{model}"
    make_png = png_maker((h, w) if c == 1 else (h, w, 3))
    out = [
        ("models", n, lambda cl, i: cl.get("/api/models")),
        ("trace", n, lambda cl, i: cl.get(f"{base}/trace", params={"image": sample})),
        (
            "activations page",
            n,
            lambda cl, i: cl.get(
                f"{base}/layers/{conv['name']}/activations", params={"image": sample, "start": 0, "count": 64}
            ),
        ),
        (
            "detail",
            n,
            lambda cl, i: cl.get(
                f"{base}/layers/{conv['name']}/detail",
                params={"image": sample, "channel": 0, "y": oh // 2, "x": ow // 2},
            ),
        ),
        ("upload", n, lambda cl, i: cl.post(f"{base}/images", files={"file": ("x.png", make_png(i), "image/png")})),
    ]
    if http.get("/api/explain/methods").status_code == 200:
        classes = len(info["classes"] or [0])  # a different target per request: answers are cached per target
        out.append(
            (
                "attribution (gradcam)",
                n_attr,
                lambda cl, i: cl.get(
                    f"{base}/explain",
                    params={"image": sample, "method": "gradcam", "metrics": "false", "target": i % classes},
                ),
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["default", "efficientnet-lite0"])
    ap.add_argument("--requests", type=int, default=100, help="requests per endpoint (default 100)")
    ap.add_argument("--attribution-requests", type=int, default=20, help="requests for the attribution endpoint")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--url", help="a server already running on this machine (loopback only)")
    args = ap.parse_args(argv)
    from convscope.server.security import is_loopback

    proc = None
    if args.url:
        host = urlparse(args.url).hostname or ""
        if not is_loopback(host):
            raise SystemExit(f"--url must be a server on this machine (127.0.0.1, localhost, ::1), not {host}")
        url = args.url.rstrip("/")
    else:
        proc, url = start_server(args.models)
    rows: list[Row] = []
    try:
        with httpx.Client(base_url=url, timeout=300, limits=httpx.Limits(max_connections=args.concurrency)) as http:
            names = [m["name"] for m in http.get("/api/models").raise_for_status().json()["models"]]
            for model in names:
                for name, n, send in endpoints(http, model, args.requests, args.attribution_requests):
                    seconds, lat, errors, cpu = run_endpoint(
                        http, send, n, args.concurrency, proc.pid if proc else None
                    )
                    rows.append(Row(model, name, n, seconds, lat, errors, cpu))
                    print(" | ".join(rows[-1].cells()), file=sys.stderr, flush=True)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    head = ["model", "endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors", "server CPU s"]
    table = [head] + [r.cells() for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    print(f"concurrency {args.concurrency}, load average {os.getloadavg()[0]:.1f} at the end")
    for row in table:
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    return 1 if any(r.errors for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
