"""Explorer latency in a real browser: navigation -> overview drawn, click -> detail view.

    python benchmarks/bench_explorer.py [--models default efficientnet-lite0] [--repeats 3]

For each model a fresh uvicorn server starts on 127.0.0.1 and is warmed the way
``convscope serve`` warms it (model loaded, first sample traced). Then headless
Chromium (/usr/bin/chromium) measures, per repeat:

* first paint: ``page.goto`` until the page reports every visible column drawn
  (``document.body.dataset.overview == 'ready'``), with a fresh browser context (no cache);
* other image: clicking another sample until its overview is drawn (includes a new trace);
* detail: clicking a conv neuron until its elastic + step-by-step views are drawn.

Prints a table of medians (and the min..max range) in milliseconds. ``--baseline SRC ...``
serves this tree and other source trees (e.g. a git worktree's src/) side by side and takes
their first paints in turn, with the API requests (times, bytes) of each.

Latest results (2026-11-26, this 2-core CPU machine shared with other jobs, load average
6-10 during the runs; ``--repeats 7``), milliseconds, median (min..max):

    model                          first paint           other image       click -> detail  target (paint)
    default                    849 (688..1531)        426 (247..950)        324 (139..344)          < 1000
    efficientnet-lite0       1468 (1219..2037)     1289 (1056..2071)        321 (268..965)          < 3000

2026-12-03 (load average 5-8, ``--models efficientnet-lite0 --repeats 5``): first paint
1408 (1318..1765), other image 1517 (1142..1596), click -> detail 800 (551..1042). Of a
first paint, the trace JSON (73 kB) takes ~0.25 s and the first activation request
(15 columns x 9 channels of 112x112 float32 maps, 7.1 MB) ~0.15-0.2 s; the rest is
module loading and drawing.

2026-12-03 15:13 after 436acdb (maps sent as float16 block means of their drawn size; load
average 1.5, ``--repeats 7``): default 479 (423..790) / 450 (363..671) / 432 (254..518);
EfficientNet-Lite0 791 (684..948) / 1064 (904..1200) / 857 (765..1050). Side by side against
its parent (``--baseline``): benchmarks/README.md.

An earlier run at load 9.5 gave 806 / 341 / 189 (default) and 1231 / 814 / 256
(EfficientNet-Lite0). "other image" includes a fresh trace of the new image.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/live_server.py: LiveServer

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TARGETS = {"default": 1000, "efficientnet-lite0": 3000}


def measure(model: str, repeats: int, chromium: str) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    from convscope.server import create_app

    from live_server import LiveServer

    app = create_app([model])
    app.state.registry.warm()
    trace = app.state.registry.trace(model, "sample-0").trace
    conv = next(r.name for r in trace.layers if r.kind == "conv")
    times: dict[str, list[float]] = {"first paint": [], "other image": [], "detail": []}
    with LiveServer(app) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        for _ in range(repeats):
            ctx = browser.new_context(viewport={"width": 1400, "height": 900})
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(f"{server.url}/?model={model}&image=sample-0")
            page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=120_000)
            times["first paint"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            page.click('.sample[data-image="sample-1"]')
            page.wait_for_function(
                "() => document.body.dataset.overview === 'ready' && "
                "new URLSearchParams(location.search).get('image') === 'sample-1'",
                timeout=120_000,
            )
            times["other image"].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            page.locator(f'canvas.neuron[data-layer="{conv}"]').first.click()
            page.wait_for_function("() => document.body.dataset.detail === 'ready'", timeout=120_000)
            times["detail"].append((time.perf_counter() - t0) * 1000)
            ctx.close()
            # a new image is traced again next time: forget the cached traces but keep the model
            app.state.registry._traces.clear()
            app.state.registry.warm()
        browser.close()
    return times


# every resource the page fetched until the overview was ready: path, start, end (ms after
# navigation started) and the bytes of its body as sent (content-encoding included)
RESOURCES = """() => performance.getEntriesByType('resource').map((e) => [
  e.name.replace(location.origin, ''), e.startTime, e.responseEnd, e.encodedBodySize])"""


def first_paint(browser, url: str) -> tuple[float, list]:
    """One first paint in a fresh context (no cache): milliseconds from goto to every visible
    column drawn, and the page's resource timings."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function("() => document.body.dataset.overview === 'ready'", timeout=120_000)
    ms = (time.perf_counter() - t0) * 1000
    resources = page.evaluate(RESOURCES)
    ctx.close()
    return ms, resources


def serve(model: str, port: int) -> None:
    """``--serve``: the explorer of whatever convscope is on the path, warmed, until killed."""
    import uvicorn

    from convscope.server import create_app

    app = create_app([model])
    app.state.registry.warm()
    print("ready", flush=True)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def side_by_side(model: str, trees: dict[str, str], repeats: int, chromium: str) -> dict[str, list]:
    """First paints against one server per source tree (``{label: src folder}``), taken in
    turn (A, B, A, B, ...) so both see the same load. Returns {label: [(ms, resources)]}."""
    from playwright.sync_api import sync_playwright

    from live_server import free_port

    servers = {}
    try:
        for label, src in trees.items():
            port = free_port()
            env = {**os.environ, "PYTHONPATH": src}
            cmd = [sys.executable, __file__, "--serve", model, "--port", str(port)]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
            servers[label] = (proc, f"http://127.0.0.1:{port}")
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {label} server ({src}) did not start")
        for label, (_, url) in servers.items():
            wait_listening(url, label)  # uvicorn binds after 'ready'
        out: dict[str, list] = {label: [] for label in trees}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=ARGS)
            for _, url in servers.values():  # one unmeasured paint each: the server's first requests
                first_paint(browser, f"{url}/?model={model}&image=sample-0")
            for _ in range(repeats):
                for label, (_, url) in servers.items():
                    out[label].append(first_paint(browser, f"{url}/?model={model}&image=sample-0"))
            browser.close()
        return out
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(10)


def wait_listening(url: str, label: str, seconds: float = 120.0) -> None:
    """Until ``url`` answers (a loaded machine can take many seconds from 'ready' to the bind)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/models", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {label} server at {url} did not answer in {seconds:.0f} s") from None
            time.sleep(0.1)


def print_requests(label: str, resources: list) -> None:
    """The API requests of one first paint (the static files are left out)."""
    print(f"  {label}: API requests of its median first paint (ms after navigation start)")
    for path, start, end, size in resources:
        if path.startswith("/api/"):
            print(f"    {start:7.0f} {end:7.0f} {end - start:6.0f} ms {size / 1e6:8.3f} MB  {path[:90]}")


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["default", "efficientnet-lite0"])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument(
        "--baseline",
        nargs="+",
        metavar="SRC",
        help="also serve the convscope under each SRC (e.g. a git worktree's src/; labelled by the folder above "
        "it) and measure first paints of every tree in turn, with the API requests of each",
    )
    ap.add_argument("--serve", metavar="MODEL", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.baseline:
        trees = {"this tree": str(Path(__file__).resolve().parents[1] / "src")}
        trees.update({Path(src).resolve().parent.name: src for src in args.baseline})
        print(f"load average before: {load_average()}")
        for model in args.models:
            runs = side_by_side(model, trees, args.repeats, args.chromium)
            print(f"\n{model}: first paint, {args.repeats} runs each, taken in turn, milliseconds")
            medians = {}
            for label, results in runs.items():
                ms = sorted(r[0] for r in results)
                medians[label] = statistics.median(ms)
                print(
                    f"  {label:<10} median {medians[label]:6.0f}  worst {ms[-1]:6.0f}  best {ms[0]:6.0f}  ({trees[label]})"
                )
            for label in list(trees)[1:]:
                print(f"  ratio this tree / {label} (medians): {medians['this tree'] / medians[label]:.2f}")
            for label, results in runs.items():
                print_requests(label, sorted(results, key=lambda r: r[0])[len(results) // 2][1])
        print(f"load average after: {load_average()}")
        return 0
    rows = []
    for model in args.models:
        t = measure(model, args.repeats, args.chromium)
        rows.append((model, t))
    print(f"\nexplorer latency, headless Chromium, median (min..max) of {args.repeats} runs, milliseconds")
    print(f"{'model':<20}{'first paint':>22}{'other image':>22}{'click -> detail':>22}{'target (paint)':>16}")
    for model, t in rows:
        cells = [f"{statistics.median(v):.0f} ({min(v):.0f}..{max(v):.0f})" for v in t.values()]
        target = TARGETS.get(model)
        print(f"{model:<20}" + "".join(f"{c:>22}" for c in cells) + f"{(f'< {target}' if target else '-'):>16}")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
