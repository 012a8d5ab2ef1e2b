"""``convscope serve``: the web explorer on 127.0.0.1.

A factory spec (``file.py:factory@weights.pt``) whose factory returns a bare ``nn.Module``, a
TorchScript file or a pickled module has no input size or class names of its own (``meta['guessed']``):
``--input-size C,H,W`` and ``--classes`` give them (a factory returning a ``convscope.Model``, a
checkpoint or a TF.js / Keras file brings its own). A model that fails to load is listed in
the page with its error, and logged, while the others are served. ``--engine ray`` runs the dataset
view's pass on a pool of Ray actors (``--ray-address``/``$RAY_ADDRESS`` to join a cluster, ``--workers``):
the job's progress moves per finished block, and cancelling the job kills the actors."""

from __future__ import annotations

import argparse
import errno
import socket
import threading
import webbrowser
from pathlib import Path

from ...errors import ConvscopeError
from ..common import (
    MODEL_HELP,
    add_device_argument,
    add_engine_argument,
    add_trust_argument,
    engine_from_args,
    resolve_device,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="open the explorer: watch an image flow through a CNN, neuron by neuron",
        description="Start the web explorer (CNN Explainer's views for any model) on a local port. "
        "Then open the printed address in a browser.",
    )
    p.add_argument(
        "--model",
        "-m",
        action="append",
        metavar="SPEC",
        dest="models",
        help=f"a model to show, repeatable: {MODEL_HELP}; the first is opened first (default: default)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument(
        "--port", type=int, default=8000, help="port (default 8000; a busy one is an error that suggests the next)"
    )
    p.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name the page may be opened under (repeatable; e.g. a name in /etc/hosts). "
        "Requests naming any other host are refused, which stops DNS-rebinding pages; "
        "with --host other than this machine every name is accepted (the token guards it)",
    )
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument(
        "--token",
        help="access token every API call must carry (default: $CONVSCOPE_TOKEN; "
        "generated and printed when --host is not this machine)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        metavar="MB",
        help="largest image file the page may upload (default 20)",
    )
    p.add_argument(
        "--runs",
        metavar="DIR",
        help="folder of training runs for the training view "
        "(default: ./runs when it exists); runs appear and their curves update while they train",
    )
    p.add_argument(
        "--data",
        metavar="NAME",
        help="dataset of the dataset view: digits, mnist, fashion-mnist, cifar10, "
        "folder:PATH (default: the one each model's checkpoint was trained on); also ranks the top "
        "examples in 'What does it look for?' (default there: the embedded MNIST for 1-channel "
        "28x28 models, none for others)",
    )
    p.add_argument(
        "--input-size",
        type=input_size,
        metavar="C,H,W",
        help="input of a model that does not say it (a factory returning a bare nn.Module, TorchScript; "
        "default: guessed, 3,224,224 or its first conv's channels), e.g. 1,28,28",
    )
    p.add_argument(
        "--classes",
        type=class_names,
        metavar="FILE|N|A,B,...",
        help="class names for the models' output units: a FILE (a JSON list or one name a line), "
        "a count (0..N-1) or a comma-separated list (default: each model's own)",
    )
    add_trust_argument(p)
    add_device_argument(p)
    add_engine_argument(p)  # the dataset view's pass on Ray: progress per block, cancel kills the actors
    p.set_defaults(func=run)


def input_size(text: str) -> tuple[int, int, int]:
    """``C,H,W`` (1 or 3 channels, sides 1..4096) as a tuple."""
    try:
        c, h, w = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input-size is C,H,W, such as 3,224,224 or 1,28,28, not {text!r}") from None
    if c not in (1, 3) or not (0 < h <= 4096 and 0 < w <= 4096):
        raise argparse.ArgumentTypeError(f"--input-size needs 1 or 3 channels and sides in 1..4096, not {text!r}")
    return c, h, w


def class_names(text: str) -> list[str]:
    """A file of names (:func:`convscope.models.class_names.read_classes`), a count (``10``: names
    0..9) or comma-separated names."""
    if Path(text).is_file():
        from ...models.class_names import read_classes

        try:
            return read_classes(text)
        except ConvscopeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    if text.strip().isdigit():
        n = int(text)
        if not 0 < n <= 100_000:
            raise argparse.ArgumentTypeError(f"--classes must be 1..100000 classes, not {n}")
        return [str(i) for i in range(n)]
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"--classes has an empty name: {text!r}")
    return names


def fit_guessed(model, size: tuple[int, int, int] | None, classes: list[str] | None):
    """Give a model whose preprocessing was guessed (a factory's bare module) the size the command
    line names (other models keep their own), and every model the class names it names (checked:
    one per output unit)."""
    from ...models.class_names import check_classes
    from ...models.preprocessing import Preprocessing

    if model.meta.get("guessed") and size is not None:
        model.preprocessing = Preprocessing(size=size[1:], channels=size[0])
    if classes is not None:
        model.classes = check_classes(model, classes)
    return model


def run(args: argparse.Namespace) -> int:
    check_port(args.host, args.port)  # before any work: a busy port is the commonest failure
    with engine_from_args(args) as engine:  # a RayEngine lives as long as the server (actors load each model once)
        return serve(args, engine)


def serve(args: argparse.Namespace, engine) -> int:
    import uvicorn

    from ...models import load_model
    from ...server import Registry, create_app
    from ...server.images import UploadStore
    from ...server.security import page_url, resolve_token

    specs = args.models or ["default"]
    device = resolve_device(args.device)
    if not 0 < args.max_upload_mb <= 1024:
        raise ConvscopeError(f"--max-upload-mb must be in (0, 1024], not {args.max_upload_mb}")
    token = resolve_token(args.host, args.token)
    uploads = UploadStore(max_bytes=int(args.max_upload_mb * 1024 * 1024))
    size, classes = getattr(args, "input_size", None), getattr(args, "classes", None)
    app = create_app(
        registry=Registry(
            specs,
            uploads=uploads,
            loader=lambda spec: fit_guessed(load_model(spec, trust=args.trust, device=device), size, classes),
        ),
        token=token,
        data=args.data,
        host=args.host,
        port=args.port,
        allow_hosts=args.allow_host,
        runs=args.runs or ("runs" if Path("runs").is_dir() else None),
        engine=engine,
    )
    app.state.registry.load_all()  # each spec now (no graph is built while jobs run); only all failing is fatal
    for e in app.state.registry.models.values():
        if e.error:
            print(f"model {e.name!r} ({e.spec}) failed to load: {e.error}")
    app.state.registry.warm()  # the first page then draws at once
    check_port(args.host, args.port)  # again: loading took seconds, in which another server may have started
    here, others = open_addresses(args.host)
    url = page_url(here, args.port, token)
    print(f"convscope explorer: open {url}  (models: {', '.join(app.state.registry.models)}; Ctrl-C to stop)")
    if others:
        print(f"  from other machines: {' or '.join(page_url(h, args.port, token) for h in others)}")
    if args.open:
        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # bind-all address -> this machine's loopback


def open_addresses(host: str) -> tuple[str, list[str]]:
    """(the host to open the page at on this machine, the hosts other machines use). A bind-all
    address (0.0.0.0, ::) is no address a browser can open: this machine opens its loopback, and
    others this machine's name and its non-loopback IPv4 addresses (those found without the network)."""
    if host not in WILDCARDS:
        return host, []
    name = socket.gethostname()
    ips: set[str] = set()
    try:
        ips |= {str(info[4][0]) for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    except OSError:
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # the outward interface; UDP connect sends nothing
        try:
            probe.connect(("10.254.254.254", 1))
            ips.add(probe.getsockname()[0])
        except OSError:
            pass
    others = [name] if name and name != "localhost" else []
    return WILDCARDS[host], others + sorted(ip for ip in ips if not ip.startswith(("127.", "0.")))


def check_port(host: str, port: int) -> None:
    """Refuse, in one line, a port uvicorn could not listen on, before the page's address is
    printed (uvicorn itself would log its own error after it). The probe socket is made the way
    uvicorn makes its own (SO_REUSEADDR, so a port left in TIME_WAIT by a server that just
    stopped is free), then closed."""
    if not 0 < port < 65536:
        raise ConvscopeError(f"--port must be in 1..65535, not {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
            probe.listen(1)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConvscopeError(
                    f"port {port} on {host} is in use; try --port {port + 1 if port < 65535 else port - 1}"
                ) from None
            raise ConvscopeError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
