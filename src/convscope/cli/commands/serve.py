"""``convscope serve``: the web explorer on 127.0.0.1."""

from __future__ import annotations

import argparse
import errno
import socket
import threading
import webbrowser
from pathlib import Path

from ...errors import ConvscopeError
from ..common import MODEL_HELP, add_device_argument, add_trust_argument, resolve_device


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="open the explorer: watch an image flow through a CNN, neuron by neuron",
        description="Start the web explorer (CNN Explainer's views for any model) on a local port. "
                    "Then open the printed address in a browser.")
    p.add_argument("--model", "-m", action="append", metavar="SPEC", dest="models",
                   help=f"a model to show, repeatable: {MODEL_HELP}; the first is opened first (default: default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; a busy one is an error that "
                                                           "suggests the next)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="another host name the page may be opened under (repeatable; e.g. a name in /etc/hosts). "
                        "Requests naming any other host are refused, which stops DNS-rebinding pages; "
                        "with --host other than this machine every name is accepted (the token guards it)")
    p.add_argument("--open", action="store_true", help="open the page in the default browser")
    p.add_argument("--token", help="access token every API call must carry (default: $CONVSCOPE_TOKEN; "
                                   "generated and printed when --host is not this machine)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                   help="largest image file the page may upload (default 20)")
    p.add_argument("--runs", metavar="DIR", help="folder of training runs for the training view "
                   "(default: ./runs when it exists); runs appear and their curves update while they train")
    p.add_argument("--data", metavar="NAME", help="dataset of the dataset view: digits, mnist, fashion-mnist, cifar10, "
                   "folder:PATH (default: the one each model's checkpoint was trained on); also ranks the top "
                   "examples in 'What does it look for?' (default there: the embedded MNIST for 1-channel "
                   "28x28 models, none for others)")
    add_trust_argument(p)
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ...models import load_model
    from ...server import Registry, create_app
    from ...server.images import UploadStore
    from ...server.security import page_url, resolve_token

    check_port(args.host, args.port)  # before any work: a busy port is the commonest failure
    specs = args.models or ["default"]
    device = resolve_device(args.device)
    if not 0 < args.max_upload_mb <= 1024:
        raise ConvscopeError(f"--max-upload-mb must be in (0, 1024], not {args.max_upload_mb}")
    token = resolve_token(args.host, args.token)
    uploads = UploadStore(max_bytes=int(args.max_upload_mb * 1024 * 1024))
    app = create_app(registry=Registry(specs, uploads=uploads,
                                       loader=lambda spec: load_model(spec, trust=args.trust, device=device)),
                     token=token, data=args.data, host=args.host, port=args.port, allow_hosts=args.allow_host,
                     runs=args.runs or ("runs" if Path("runs").is_dir() else None))
    app.state.registry.load_all()  # fail early on a bad spec; no graph is built while jobs run
    app.state.registry.warm()  # the first page then draws at once
    check_port(args.host, args.port)  # again: loading took seconds, in which another server may have started
    url = page_url(args.host, args.port, token)
    print(f"convscope explorer: open {url}  (models: {', '.join(app.state.registry.models)}; Ctrl-C to stop)")
    if args.open:
        threading.Timer(1.0, lambda: webbrowser.open(url)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


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
                raise ConvscopeError(f"port {port} on {host} is in use; try --port {port + 1 if port < 65535 else port - 1}") from None
            raise ConvscopeError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
