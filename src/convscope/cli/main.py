"""Entry point of the ``convscope`` command.

Sub-commands are discovered from :mod:`convscope.cli.commands` (one module each), so
adding a command never touches this file. A :class:`~convscope.errors.ConvscopeError`
ends the program with a one-line message and exit code 2; Ctrl-C exits with 130.
Building the parser imports no torch (the command modules import their heavy parts in
``run``), so ``--version`` and every ``--help`` answer at once.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from ..errors import ConvscopeError
from . import commands


class _Version(argparse.Action):
    """``--version``, which reads the package metadata only when asked (importlib.metadata
    alone would add a tenth of a second to every start)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version number and exit", **kwargs
        )

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .. import __version__

        print(f"convscope {__version__}")  # on stdout, as argparse's own version action does
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convscope",
        description="A microscope for convolutional neural networks: train, trace, explain and show any PyTorch CNN.",
        epilog="Every command takes --help. The model is --model SPEC everywhere (default: the shipped "
        "'default' model); --out has a default, printed at the end; --split defaults to test; "
        "--no-progress turns progress bars off.",
    )
    parser.add_argument("--version", action=_Version)
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
