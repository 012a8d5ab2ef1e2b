"""``convscope summary --model SPEC``: a Keras-style table of a model's layers, read off a trace.

The model is traced on one blank input of its own input shape (shapes, parameter
counts and multiply-adds do not depend on the pixel values).
"""

from __future__ import annotations

import argparse
import json

from ...errors import ConvscopeError
from ..common import add_device_argument, add_model_argument, load_model_from_args


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "summary",
        help="layers, output shapes, parameters and multiply-adds of a model (like Keras' summary)",
        description="Trace a model on one blank input and print each layer (functional ops and residual "
        "additions included) with its kind, output shape, parameters and multiply-adds.",
    )
    add_model_argument(p, positional=True)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--size", type=int, nargs=2, metavar=("H", "W"), help="input height and width (default: the model's own)"
    )
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...trace import trace
    from ...trace.core import guessed_input_error

    model = load_model_from_args(args)
    c, h, w = model.input_shape
    if args.size:
        h, w = args.size
    x = torch.zeros(1, c, h, w, device=model.device)
    try:
        summary = trace(model, x).summary()
    except ConvscopeError as exc:
        if args.size or not model.meta.get("guessed"):
            raise
        # a bare module (file.py:factory, TorchScript) has no input size: say the one tried was a guess
        raise guessed_input_error(exc, (c, h, w), "size with --size H W (e.g. --size 28 28)") from None
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary)
    return 0
