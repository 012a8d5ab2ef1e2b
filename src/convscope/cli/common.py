"""Arguments and helpers shared by the sub-commands, defined once so every command speaks
one dialect:

- the model is ``--model SPEC`` (default ``default``); ``evaluate`` and ``summary`` also
  take it as their first word, as they always did;
- ``--out`` is never required: each command has a default, shown in its ``--help``, and
  every command ends by printing where it wrote;
- ``--split`` is one of train / val / test, default test (the held-out split);
- ``--no-progress`` turns off the progress bars of every long command;
- descriptions are plain text (module docstrings lose their reST markup on the way).

Nothing here imports torch: ``convscope --help`` and ``convscope CMD --help`` build every
parser, and they answer at once.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from ..progress import ProgressBar

DEFAULT_MODEL = "default"
MODEL_HELP = (
    "'default' (Tiny VGG trained on MNIST, shipped inside), a zoo name (tiny-vgg, mnist-cnn, cifar-cnn, "
    "efficientnet-lite0), a checkpoint, a TorchScript file, a TF.js model.json, or "
    "pkg.module:factory@weights.pt"
)
SPLITS = ("train", "val", "test")


def add_model_argument(
    parser: argparse.ArgumentParser, default: str = DEFAULT_MODEL, *, positional: bool = False
) -> None:
    """``--model SPEC`` (and ``--trust``). With ``positional``, the spec may also come as the
    command's first word (``convscope summary tiny-vgg``, kept working for old scripts and
    not advertised); :func:`model_spec` reconciles the two."""
    parser.add_argument(
        "--model",
        "-m",
        default=None if positional else default,
        metavar="SPEC",
        help=f"the model: {MODEL_HELP} (default: {default})",
    )
    if positional:
        parser.add_argument("model_word", nargs="?", metavar="SPEC", help=argparse.SUPPRESS)
        parser.set_defaults(model_default=default)
    add_classes_argument(parser)
    add_trust_argument(parser)


def add_classes_argument(parser: argparse.ArgumentParser) -> None:
    """``--classes FILE``: the model's class names (load_model's ``classes``), one per output unit."""
    parser.add_argument(
        "--classes",
        metavar="FILE",
        default=None,
        help="class names for the model's output units: a JSON list or a text file with one name a line "
        "(default: the model's own; known published models such as CNN Explainer's Tiny VGG have theirs)",
    )


def model_spec(args: argparse.Namespace) -> str:
    """The one model spec of a command line (``--model`` or the positional word, not two different ones)."""
    from ..errors import ConvscopeError

    word = getattr(args, "model_word", None)
    if word is not None and args.model is not None and word != args.model:
        raise ConvscopeError(f"two models given ({word!r} and --model {args.model!r}); give one, with --model")
    spec = word or args.model or getattr(args, "model_default", DEFAULT_MODEL)
    args.model = spec
    return spec


def add_trust_argument(parser: argparse.ArgumentParser) -> None:
    """``--trust``, the one switch that lets a model file run code (convscope.load_model's ``trust``)."""
    parser.add_argument(
        "--trust",
        action="store_true",
        help="let model files run code: an architecture factory a checkpoint names, a TorchScript "
        "archive, a pickled module (only for files you trust; zoo checkpoints and factories "
        "you type yourself need no --trust)",
    )


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """``--output KEY``: which tensor of a dict / tuple model output holds the scores (the Model's ``output``)."""
    parser.add_argument(
        "--output",
        metavar="KEY",
        default=None,
        help="for a model that returns a dict or a tuple: the key (e.g. logits) or index (e.g. 0) "
        "of the class scores (default: the only tensor, or the 'logits' entry)",
    )


def add_out_argument(
    parser: argparse.ArgumentParser, default: str, what: str = "folder for the files", metavar: str = "DIR"
) -> None:
    """``--out DIR`` with a default that the help states (the command prints the path when it is done)."""
    parser.add_argument(
        "--out",
        "-o",
        metavar=metavar,
        default=default,
        help=f"{what}, created if missing (default: {default}; the path is printed at the end)",
    )


def add_split_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--split", default="test", choices=SPLITS, help="which split of the dataset (default: test, the held-out one)"
    )


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """``IMAGE --model SPEC --output KEY``: what every one-image command (explain, attribute, sanity) starts with."""
    parser.add_argument("image", metavar="IMAGE", help="an image file in any format Pillow reads, any size")
    add_model_argument(parser)
    add_output_argument(parser)


def add_data_arguments(
    parser: argparse.ArgumentParser, help: str = "dataset name (digits, mnist, ...)", *, required: bool = True
) -> None:
    """``--data NAME --split S``: the dataset split a dataset-level command streams (``help`` as each command words it)."""
    parser.add_argument("--data", "-d", required=required, metavar="DATA", help=help)
    add_split_argument(parser)


def add_compute_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, the ``scale out`` group and ``--no-progress``: how a dataset-level command computes."""
    add_device_argument(parser)
    add_engine_argument(parser)
    add_progress_argument(parser)


def add_progress_argument(parser: argparse.ArgumentParser, *aliases: str) -> None:
    """``--no-progress`` (plus old spellings such as ``--quiet``, kept as aliases)."""
    parser.add_argument(
        "--no-progress",
        *aliases,
        dest="no_progress",
        action="store_true",
        help="no progress bars or progress messages (results still print)"
        + (f"; {', '.join(aliases)}: the same" if aliases else ""),
    )


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and the Ray options of the dataset-level commands (convscope.scale)."""
    group = parser.add_argument_group("scale out")
    group.add_argument(
        "--engine",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default); ray: a pool of Ray actors, each holding the model",
    )
    group.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="join this Ray cluster (default: $RAY_ADDRESS, else a local Ray started for the command)",
    )
    group.add_argument("--workers", type=int, default=2, help="Ray actors holding the model (default 2)")
    group.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        metavar="G",
        help="GPUs Ray gives each actor (default 0: CPU); the model then runs on cuda",
    )
    group.add_argument(
        "--ship-data",
        action="store_true",
        help="send the images to the actors (default: each actor reads its block's files or positions "
        "itself, so the workers must see the same data folder and cache)",
    )


def engine_from_args(args: argparse.Namespace):
    """A context manager yielding the engine for ``engine=``: "local", or a RayEngine closed on exit."""
    import contextlib
    import os

    if getattr(args, "engine", "local") != "ray":
        return contextlib.nullcontext("local")
    from ..scale import RayEngine

    return RayEngine(
        address=args.ray_address or os.environ.get("RAY_ADDRESS") or None,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        ship_data=args.ship_data,
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute (auto: CUDA when available)"
    )


def resolve_device(name: Any = "auto"):
    """convscope.device.resolve_device, imported when called (it imports torch)."""
    from ..device import resolve_device as resolve

    return resolve(name)


def load_model_from_args(args: argparse.Namespace):
    from ..models import load_model
    from ..models.class_names import read_classes
    from ..outputs import parse_output

    device = resolve_device(getattr(args, "device", "cpu"))
    classes = read_classes(args.classes) if getattr(args, "classes", None) else None
    model = load_model(model_spec(args), trust=getattr(args, "trust", False), device=device, classes=classes)
    if getattr(args, "output", None) is not None:
        model.output = parse_output(args.output)
    return model


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in its number, for the lines a command ends with: 1 heatmap, 2 heatmaps
    (``plural`` where adding an s is wrong)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def progress_bar(args: argparse.Namespace, desc: str, unit: str = "it") -> ProgressBar:
    """The bar of one long step, off when the command line says ``--no-progress``."""
    return ProgressBar(desc, unit, enabled=not getattr(args, "no_progress", False))


_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]+?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``")


def plain_text(doc: str) -> str:
    """reST to what a terminal shows: ``x`` -> x, :meth:`Trace.to_json` -> Trace.to_json,
    :class:`~pkg.Name` -> pkg.Name."""
    return _LITERAL.sub(r"\1", _ROLE.sub(r"\1", doc))


def description(doc: str | None) -> str:
    """A command's ``--help`` description from its module docstring: everything after the
    first paragraph (the usage line), as plain text."""
    body = (doc or "").split("\n\n", 1)
    return plain_text(body[-1]).strip()
