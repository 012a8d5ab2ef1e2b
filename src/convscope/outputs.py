"""Which tensor of a model's output is explained, traced as the scores, or fed to a loss.

Models do not all return one tensor: a Hugging Face style net returns ``{"logits": ...}``,
torchvision's GoogLeNet and Inception return ``(logits, aux...)`` namedtuples in train
mode, a user's net may return ``(logits, features)``. Every entry point (``trace``,
``attribute`` and each method, ``visualize``, ``top_examples``, ``run_pass``, the CLI's
``--output``, the page through :class:`convscope.Model`) takes one ``output=`` selector
and reads the model's output through :func:`select_output`:

* a key (``"logits"``) for a dict or a namedtuple field, an index (``0``) for a tuple or
  list, or a callable ``output(out) -> Tensor`` for anything else;
* ``None`` picks only when there is one obvious answer: the output itself when it is a
  tensor, the ``logits`` entry of a dict or namedtuple (so torchvision's
  ``InceptionOutputs`` / ``GoogLeNetOutputs`` give their main logits), or the only tensor
  in it. Anything else (``(logits, aux)`` as a plain tuple, ``{"out": .., "aux": ..}``) is a
  one-line :class:`ConvscopeError` listing what there is to choose from, never a guess.

Imports: torch, stdlib, errors (a leaf: trace, explain, features and analysis use it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from .errors import ConvscopeError

OutputSpec = None | str | int | Callable[[Any], torch.Tensor]


def parse_output(text: str | None) -> OutputSpec:
    """A command-line ``--output`` value: digits are an index, anything else a key."""
    if text is None or text == "":
        return None
    text = text.strip()
    return int(text) if text.lstrip("-").isdigit() else text


def _is_namedtuple(out: Any) -> bool:
    return isinstance(out, tuple) and hasattr(type(out), "_fields")


def _choices(out: Any) -> str:
    """What there is to pick from, for an error message: keys with shapes, or positions."""

    def describe(v: Any) -> str:
        return "x".join(map(str, v.shape)) if isinstance(v, torch.Tensor) else type(v).__name__

    if isinstance(out, Mapping):
        items = [(repr(k), v) for k, v in out.items()]
        what = f"a {type(out).__name__} with keys"
    elif _is_namedtuple(out):
        items = [(f"{f!r} ({i})", getattr(out, f)) for i, f in enumerate(type(out)._fields)]
        what = f"a {type(out).__name__} with fields"
    else:
        items = [(str(i), v) for i, v in enumerate(out)]
        what = f"a {type(out).__name__} of {len(out)}, indices"
    shown = ", ".join(f"{k}: {describe(v)}" for k, v in items[:12]) + (" ..." if len(items) > 12 else "")
    return f"{what} {shown}"


def _auto(out: Any) -> torch.Tensor:
    if isinstance(out, Mapping) and isinstance(out.get("logits"), torch.Tensor):
        return out["logits"]
    if _is_namedtuple(out) and isinstance(getattr(out, "logits", None), torch.Tensor):
        return out.logits
    values = list(out.values()) if isinstance(out, Mapping) else list(out)
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if len(tensors) == 1:
        return tensors[0]
    raise ConvscopeError(
        f"the model returns {_choices(out)}; say which one to use with output= "
        "(a key, an index or a callable; --output on the command line)"
    )


def select_output(out: Any, output: OutputSpec = None) -> torch.Tensor:
    """The tensor ``output`` names in the model's output ``out`` (see the module docstring)."""
    if callable(output):
        picked = output(out)
        if not isinstance(picked, torch.Tensor):
            raise ConvscopeError(f"the output= callable returned {type(picked).__name__}, not a tensor")
        return picked
    if isinstance(out, torch.Tensor):
        if output is None:
            return out
        raise ConvscopeError(
            f"the model returns one tensor ({'x'.join(map(str, out.shape))}); "
            f"output={output!r} selects from a dict or tuple: leave it out"
        )
    if not isinstance(out, (Mapping, tuple, list)):
        raise ConvscopeError(
            f"the model returns {type(out).__name__}, not a tensor; "
            "pass output= a callable that picks the tensor to use"
        )
    if output is None:
        return _auto(out)
    if isinstance(out, Mapping):
        picked = out.get(output, _MISSING)
    elif isinstance(output, str) and _is_namedtuple(out):
        picked = getattr(out, output, _MISSING) if output in type(out)._fields else _MISSING
    elif isinstance(output, int) and not isinstance(output, bool) and -len(out) <= output < len(out):
        picked = out[output]
    else:
        picked = _MISSING
    if picked is _MISSING:
        raise ConvscopeError(f"output={output!r} is not in the model's output: it returns {_choices(out)}")
    if not isinstance(picked, torch.Tensor):
        raise ConvscopeError(
            f"output={output!r} is a {type(picked).__name__}, not a tensor; the model returns {_choices(out)}"
        )
    return picked


_MISSING = object()


def output_kind(output: torch.Tensor, tol: float = 1e-3) -> str:
    """``"probabilities"``, ``"log-probabilities"`` or ``"logits"``: what a (B, K) output holds.

    A softmax output is non-negative and sums to 1 per row on every input, a log-softmax one is
    non-positive with exponentials summing to 1; logits meet neither but by accident.
    """
    if output.is_meta or output.dim() != 2 or output.shape[1] < 2 or not output.is_floating_point():
        return "logits"
    out = output.detach().float()
    if bool((out >= 0).all()) and bool(((out.sum(1) - 1).abs() <= tol).all()):
        return "probabilities"
    if bool((out <= 0).all()) and bool((out.logsumexp(1).abs() <= tol).all()):
        return "log-probabilities"
    return "logits"


def as_probabilities(scores: torch.Tensor, kind: str | None = None) -> torch.Tensor:
    """Class probabilities from (B, K) scores of ``kind`` (:func:`output_kind`, found when None):
    the softmax of logits, the output itself, or the exponential of log-probabilities."""
    kind = kind or output_kind(scores)
    return scores if kind == "probabilities" else scores.exp() if kind == "log-probabilities" else scores.softmax(-1)
