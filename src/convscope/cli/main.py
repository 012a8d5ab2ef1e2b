"""Entry point of the ``convscope`` command.

Sub-commands are discovered from :mod:`convscope.cli.commands` (one module each), so
adding a command never touches this file. A :class:`~convscope.errors.ConvscopeError`
ends the program with a one-line message and exit code 2; Ctrl-C exits with 130.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from .. import __version__
from ..errors import ConvscopeError
from . import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convscope",
        description="A microscope for convolutional neural networks: train, trace, explain and show any PyTorch CNN.",
    )
    parser.add_argument("--version", action="version", version=f"convscope {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ConvscopeError as exc:
        print(f"convscope {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"convscope {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
