"""``trace(model, x)``: one forward pass, recorded layer by layer.

>>> import convscope as cs
>>> t = cs.trace(cs.load_model("tiny-vgg"), "cat.jpg")
>>> t["conv_1_1"].output.shape          # torch.Size([1, 10, 62, 62])
>>> print(t.summary())

torch.fx is tried first (functional ops and residual additions appear as nodes); a
model fx cannot trace is observed with hooks instead (``t.via == 'hooks'``, see
:mod:`convscope.trace.hooks` for what that path cannot see).
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..errors import ConvscopeError, NotFound
from ..models.model import Model, as_model
from ..outputs import OutputSpec, select_output
from ..probe import layer_list, model_state
from ..render.notebook import Displayable
from .fx_run import run_fx
from .fx_trace import graph_plan
from .hooks import run_hooks
from .records import LayerRecord


class Trace(Displayable):
    """The records of one forward pass, in execution order, starting with ``'input'``.

    In a notebook it shows its summary table and an activation overview (:meth:`figure`);
    ``show()`` and ``save(path)`` come from :class:`~convscope.render.notebook.Displayable`.
    """

    def __init__(
        self,
        model: Model,
        layers: list[LayerRecord],
        output: Any,
        via: str,
        fx_error: str | None = None,
        selected: torch.Tensor | None = None,
    ) -> None:
        self.model = model
        self.layers = layers
        self.output = output  # what the model returned (a tensor, a dict, a tuple ...)
        self.selected = selected if selected is not None or not isinstance(output, torch.Tensor) else output
        self.via = via
        self.fx_error = fx_error  # why fx was not used (None when it was)
        self._by_name = {r.name: r for r in layers}

    # -- looking up ------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [r.name for r in self.layers]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[LayerRecord]:
        return iter(self.layers)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, key: str | int | nn.Module) -> LayerRecord:
        """A record by name (``'layer4.1.conv2'``), position, or module (its first call)."""
        if isinstance(key, int):
            return self.layers[key]
        if isinstance(key, nn.Module):
            for r in self.layers:
                if r.module is key:
                    return r
            raise NotFound(f"module {type(key).__name__} was not called in this trace")
        try:
            return self._by_name[key]
        except KeyError:
            names = list(self.names)
            close = [n for n in names if key in n][:5] or difflib.get_close_matches(key, names, n=5)
            hint = f"; similar: {', '.join(close)}" if close else f"; its layers are: {layer_list(names)}"
            raise NotFound(f"no layer named {key!r} in this trace{hint}") from None

    def consumers(self, name: str) -> list[LayerRecord]:
        """Records that take ``name``'s output as an input."""
        return [r for r in self.layers if name in r.inputs]

    # -- the ends ------------------------------------------------------------------------
    @property
    def input(self) -> torch.Tensor:
        """The batch the model saw (B, C, H, W)."""
        return self.layers[0].output

    @property
    def logits(self) -> torch.Tensor | None:
        """The class scores before softmax (B, classes), or None for a non-classifier output.

        Read off the selected output (``trace(..., output=)``, the Model's ``output``).
        """
        last = self.layers[-1]
        if last.kind == "softmax" and last.input is not None and self.selected is self.output:
            return last.input
        return self.selected if _is_scores(self.selected) else None

    @property
    def probs(self) -> torch.Tensor | None:
        """Class probabilities (B, classes): the model's own softmax if it ends with one."""
        last = self.layers[-1]
        if last.kind == "softmax" and _is_scores(last.output) and self.selected is self.output:
            return last.output
        logits = self.logits
        return logits.float().softmax(-1) if logits is not None else None

    def top(self, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """Top-``k`` classes per batch item: ``[[(index, name, probability), ...], ...]``."""
        probs = self.probs
        if probs is None:
            raise ConvscopeError("this model's output is not a (batch, classes) score tensor")
        values, indices = probs.topk(min(k, probs.shape[-1]), dim=-1)
        return [
            [(int(i), self.model.class_name(int(i)), float(v)) for v, i in zip(vs, idx)]
            for vs, idx in zip(values.cpu(), indices.cpu())
        ]

    # -- views -------------------------------------------------------------------------------
    def summary(self):
        """A Keras-style table: layer, kind, output shape, parameters, multiply-adds."""
        from .summary import Summary

        return Summary.from_trace(self)

    def to_json(self, stats: bool = True) -> dict[str, Any]:
        """Layers, shapes, hyper-parameters and (optionally) per-layer statistics; no big tensors."""
        from .serialize import trace_to_json

        return trace_to_json(self, stats=stats)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.input.shape)
        return f"Trace({self.model.name!r}, input {shape}, {len(self.layers)} records, via {self.via})"

    def _repr_html_(self) -> str:
        head = f"<p><b>{html.escape(repr(self))}</b></p>"
        return head + self.summary()._repr_html_() + self.png_tag("activation overview")

    def figure(self, max_layers: int = 8, max_channels: int = 8):
        """The first sample's activations: the input, then ``max_channels`` channels of up to
        ``max_layers`` spatial layers spread from the first to the last (one scale per layer)."""
        from ..render.dataset_figures import activation_maps

        spatial = [r for r in self.layers[1:] if isinstance(r.output, torch.Tensor) and r.output.dim() == 4]
        picked = sorted(
            {round(i * (len(spatial) - 1) / max(1, max_layers - 1)) for i in range(max_layers)}
            if len(spatial) > max_layers
            else range(len(spatial))
        )
        maps = {spatial[i].name: spatial[i].output[0, :max_channels].detach().float().cpu().numpy() for i in picked}
        return activation_maps(maps, self.model.to_display(self.input[0]), max_channels=max_channels)


def _is_scores(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.dim() == 2 and t.is_floating_point()


def trace(
    model: Model | nn.Module,
    x: Any,
    *,
    train: bool = False,
    grad: bool = False,
    method: str = "auto",
    cache: bool = True,
    output: OutputSpec = None,
) -> Trace:
    """Run ``model`` on ``x`` and record every layer.

    Args:
        model: a :class:`convscope.Model` or a bare ``nn.Module``.
        x: a batch (B, C, H, W), one tensor (C, H, W), or an image (path, bytes, PIL,
            array) that the model preprocesses.
        train: trace in train mode (batch-norm batch statistics, active dropout; running
            statistics get updated as in any train-mode pass); the module's own mode is
            restored afterwards either way.
        grad: keep autograd on (recorded outputs then carry ``grad_fn``).
        method: ``'auto'`` (fx, then hooks), ``'fx'`` (fail if fx cannot trace) or ``'hooks'``.
        cache: reuse the fx graph built for this module on an earlier call.
        output: which tensor of a dict / tuple output holds the scores (``t.logits``, ``t.top()``;
            :mod:`convscope.outputs`); default: the Model's ``output``, else the one obvious
            tensor. An ambiguous output is kept whole in ``t.output`` (``t.logits`` is None);
            an ``output=`` that names nothing is an error.

    Raises:
        ConvscopeError: the model cannot run on this input (one-line reason).
    """
    if method not in ("auto", "fx", "hooks"):
        raise ConvscopeError(f"method must be 'auto', 'fx' or 'hooks', not {method!r}")
    m = as_model(model)
    batch = _batch(m, x, bare=not isinstance(model, Model))
    net = m.net
    if isinstance(net, torch.jit.ScriptModule):
        raise ConvscopeError(
            f"{m.name} is a TorchScript module: its layers are compiled and cannot be observed "
            "one by one; load the Python model instead (pkg.module:factory@weights.pt)"
        )
    modules = list(net.modules())
    with model_state(net, train=train), torch.set_grad_enabled(grad):
        try:
            records, out, via, fx_error = _run(net, batch, method, cache, modules)
        except ConvscopeError as exc:
            raise _with_guess_hint(exc, m, batch, from_image=not isinstance(x, torch.Tensor)) from None
    return Trace(m, records, out, via, fx_error, _selected(out, m.output if output is None else output))


def _with_guess_hint(exc: ConvscopeError, m: Model, batch: torch.Tensor, from_image: bool) -> ConvscopeError:
    """A bare module from a factory or a file has no input size of its own: convscope guessed
    one (:func:`convscope.models.model.guess_preprocessing`). When the net fails on the guess,
    the user reads how to say the real size rather than only a shape mismatch deep inside."""
    if not (m.meta.get("guessed") and from_image and batch.dim() == 4):
        return exc
    return guessed_input_error(
        exc,
        tuple(batch.shape[1:]),
        "one: have the factory return cs.Model(net, preprocessing=cs.Preprocessing(size=(H, W), channels=C)) "
        "(convscope serve also takes --input-size C,H,W)",
    )


def guessed_input_error(exc: ConvscopeError, shape: tuple[int, ...], how: str) -> ConvscopeError:
    """``exc`` said with the input size convscope guessed (C, H, W) and ``how`` to give the real
    one (``trace``: the factory's preprocessing; ``convscope summary``: its ``--size``)."""
    c, h, w = shape
    return ConvscopeError(f"{exc}. Its input {c}x{h}x{w} was guessed; give the real {how}")


def _selected(out: Any, output: OutputSpec) -> torch.Tensor | None:
    """The scores tensor of the model's output; None when the output is ambiguous and none was named."""
    try:
        return select_output(out, output)
    except ConvscopeError:
        if output is not None:
            raise
        return None


def _batch(m: Model, x: Any, bare: bool) -> torch.Tensor:
    """The input as a float batch on the model's device.

    A tensor given with a bare module is taken as is (its channel count is the
    module's business: a guessed preprocessing would reject a 4-channel net).
    """
    if bare and isinstance(x, torch.Tensor):
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if not x.is_floating_point():
            x = x.float()
        return x.to(m.device)
    return m.batch(x)


def _run(net: nn.Module, x: torch.Tensor, method: str, cache: bool, modules: list[nn.Module]):
    fx_error = None
    if method in ("auto", "fx"):
        try:
            plan = graph_plan(net, cache=cache, modules=modules)
        except Exception as exc:  # fx cannot trace this forward: fall back to hooks
            fx_error = _one_line(exc)
            if method == "fx":
                raise ConvscopeError(f"torch.fx cannot trace {type(net).__name__}: {fx_error}") from None
        else:
            try:
                records, out = run_fx(net, x, plan)
                return records, out, "fx", None
            except Exception as exc:
                fx_error = _one_line(exc)
                if method == "fx":
                    raise ConvscopeError(f"{type(net).__name__} failed on input {tuple(x.shape)}: {fx_error}") from None
    try:
        recorder, out = run_hooks(net, x)
    except Exception as exc:
        raise ConvscopeError(f"{type(net).__name__} failed on input {tuple(x.shape)}: {_one_line(exc)}") from None
    return recorder.records, out, "hooks", fx_error


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
