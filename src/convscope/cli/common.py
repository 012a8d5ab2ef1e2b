"""Arguments and helpers shared by several sub-commands, defined once."""

from __future__ import annotations

import argparse

from ..device import resolve_device  # noqa: F401  (re-exported for the commands)


def add_model_argument(parser: argparse.ArgumentParser, default: str | None = "default") -> None:
    parser.add_argument("--model", "-m", default=default, metavar="SPEC",
                        help="model: 'default', a zoo name (tiny-vgg, mnist-cnn, cifar-cnn, efficientnet-lite0), "
                             "a checkpoint, a TorchScript file, a TF.js model.json, or pkg.module:factory@weights.pt")
    add_trust_argument(parser)


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust``, the one switch that lets a model file run code (convscope.load_model's ``trust``)."""
    parser.add_argument("--trust", action="store_true",
                        help="let model files run code: an architecture factory a checkpoint names, a TorchScript "
                             "archive, a pickled module (only for files you trust; zoo checkpoints and factories "
                             "you type yourself need no --trust)")


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """``--output KEY``: which tensor of a dict / tuple model output holds the scores (the Model's ``output``)."""
    parser.add_argument("--output", metavar="KEY", default=None,
                        help="for a model that returns a dict or a tuple: the key (e.g. logits) or index (e.g. 0) "
                             "of the class scores (default: the only tensor, or the 'logits' entry)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to compute (auto: CUDA when available)")


def load_model_from_args(args: argparse.Namespace):
    from ..models import load_model
    from ..outputs import parse_output

    device = resolve_device(getattr(args, "device", "cpu"))
    model = load_model(args.model, trust=getattr(args, "trust", False), device=device)
    if getattr(args, "output", None) is not None:
        model.output = parse_output(args.output)
    return model
