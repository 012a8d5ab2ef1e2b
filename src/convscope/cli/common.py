"""Arguments and helpers shared by several sub-commands, defined once."""

from __future__ import annotations

import argparse

import torch

from ..errors import ConvscopeError


def add_model_argument(parser: argparse.ArgumentParser, default: str | None = "default") -> None:
    parser.add_argument("--model", "-m", default=default, metavar="SPEC",
                        help="model: 'default', a zoo name (tiny-vgg, mnist-cnn, cifar-cnn, efficientnet-lite0), "
                             "a checkpoint, a TorchScript file, a TF.js model.json, or pkg.module:factory@weights.pt")
    parser.add_argument("--trust", action="store_true",
                        help="allow unpickling a full Python object from the model file (only for files you trust)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="where to compute (auto: CUDA when available)")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConvscopeError("--device cuda was asked for, but no CUDA GPU is available")
    return torch.device(name)


def load_model_from_args(args: argparse.Namespace):
    from ..models import load_model

    device = resolve_device(getattr(args, "device", "cpu"))
    return load_model(args.model, trust=getattr(args, "trust", False), device=device)
