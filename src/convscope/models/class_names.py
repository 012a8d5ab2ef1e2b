"""Class names a user gives a model: ``--classes FILE`` and ``load_model(..., classes=)``.

A file is a JSON list (or ``{"classes": [...]}``) or plain text with one name a line. It
is bounded (:data:`MAX_BYTES`) and every problem is one line: a missing file, bad JSON,
and a list whose length is not the model's number of output units (names that do not
fit the units would silently label the wrong ones).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from .. import probe
from ..errors import ConvscopeError
from .model import Model

MAX_BYTES = 1 << 20


def read_classes(path: str | Path) -> list[str]:
    """Class names from a JSON list or a text file with one name a line."""
    path = Path(path)
    if not path.is_file():
        raise ConvscopeError(f"no such class-name file: {path}")
    if path.stat().st_size > MAX_BYTES:
        raise ConvscopeError(f"{path} has more than {MAX_BYTES} bytes; it is not a list of class names")
    try:
        # utf-8-sig: Notepad and Excel start a UTF-8 file with a byte-order mark, which is
        # not part of the first name (nor of the JSON)
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConvscopeError(f"{path} is not UTF-8 text: {exc}") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConvscopeError(f"{path} is not valid JSON: {exc}") from None
        if isinstance(data, dict) and "classes" in data:
            data = data["classes"]
        if not isinstance(data, list) or not all(isinstance(x, (str, int)) for x in data):
            raise ConvscopeError(f"{path} must hold a JSON list of class names")
        names = [str(x) for x in data]
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise ConvscopeError(f"{path} holds no class names")
    return names


@torch.no_grad()
def output_units(model: Model) -> int | None:
    """How many scores one input gets (None when the output is not (batch, units), or when a
    blank input cannot tell: a net that fails on it fails later with its own message)."""
    x = torch.zeros((1, *model.input_shape), device=model.device)
    try:
        with probe.model_state(model.net):
            out = model.scores(model.net(x))
    except (RuntimeError, ValueError, ConvscopeError):
        return None
    return int(out.shape[-1]) if isinstance(out, torch.Tensor) and out.dim() == 2 else None


def check_classes(model: Model, names: Sequence[str], source: object = "--classes") -> list[str]:
    """``names`` when there is one per output unit of ``model``; else a one-line error."""
    names = [str(n) for n in names]
    units = output_units(model)
    if units is not None and units != len(names):
        raise ConvscopeError(
            f"{source} has {len(names)} class names but {model.name} has {units} output units; give one name a unit"
        )
    return names
