"""``convscope summary SPEC``: a Keras-style table of a model's layers, read off a trace.

The model is traced on one blank input of its own input shape (shapes, parameter
counts and multiply-adds do not depend on the pixel values).
"""

from __future__ import annotations

import argparse
import json

from ..common import add_device_argument, add_trust_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "summary", help="layers, output shapes, parameters and multiply-adds of a model (like Keras' summary)",
        description="Trace a model on one blank input and print each layer (functional ops and residual "
                    "additions included) with its kind, output shape, parameters and multiply-adds.")
    p.add_argument("spec", metavar="SPEC",
                   help="'default', a zoo name (tiny-vgg, mnist-cnn, cifar-cnn, efficientnet-lite0), a checkpoint, "
                        "a TorchScript file, a TF.js model.json, or pkg.module:factory@weights.pt")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                   help="input height and width (default: the model's own)")
    add_trust_argument(p)
    add_device_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ...models import load_model
    from ...trace import trace
    from ..common import resolve_device

    model = load_model(args.spec, trust=args.trust, device=resolve_device(args.device))
    c, h, w = model.input_shape
    if args.size:
        h, w = args.size
    x = torch.zeros(1, c, h, w, device=model.device)
    summary = trace(model, x).summary()
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary)
    return 0
