"""The one base every attribution method shares, its result type and the method registry.

Protocol (every method, every batch size)::

    result = Method(model, layer=None)(x, target=None)
    result.maps    # (B, H, W) at the input's resolution, on the model's device
    result.raw     # CAM family: (B, h, w) at the layer's resolution;
                   # pixel methods: (B, C, H, W), one value per input element
    result.targets # (B,) the explained classes (None for a callable target)

A subclass implements ``_attribute(x, target, progress)``; the CAM family narrows that
to one ``_weights`` override (see :mod:`.cam`). The base handles input batching, the
model's state (:func:`convscope.probe.model_state`), the target layer (:mod:`.layers`), optional speed-ups
(:mod:`.speed`) and progress reporting, once.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvscopeError
from ..models.model import Model, as_model
from ..outputs import OutputSpec, select_output
from ..probe import LayerRef, capture, model_state
from ..probe import resolve_layer as parse_layer
from ..render.notebook import Displayable
from .layers import resolve_layer
from .reuse import SHARED
from .speed import Speedups, folded_copy, precise_float32, speedups
from .targets import Target, TargetSpec, resolve_target

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as long work advances (perturbation batches, steps)."""


def _silent(done: int, total: int) -> None:
    return None


@dataclass
class Attribution(Displayable):
    """The result of one method on one batch; all tensors stay on the model's device.

    In a notebook it shows each map over its input (``show()``, ``save(path)``: see
    :class:`~convscope.render.notebook.Displayable`); ``pixels`` gives that input as uint8
    (B, H, W, C), set by :meth:`Method.__call__` and computed only when drawn.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    targets: torch.Tensor | None
    method: str
    layer: str | None = None
    pixels: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)
    output: str | None = None  # how the model's output was read as probabilities (Score-CAM): targets.output_kind

    def __len__(self) -> int:
        return self.maps.shape[0]

    def __repr__(self) -> str:  # the maps are shown by the notebook, not printed
        size = "x".join(str(s) for s in self.maps.shape[1:])
        where = f" at {self.layer!r}" if self.layer else ""
        classes = "" if self.targets is None else f", classes {self.targets.tolist()}"
        return f"Attribution({self.method!r}{where}, {len(self)} maps {size}{classes})"

    def numpy(self) -> np.ndarray:
        """``maps`` as a float32 NumPy array (B, H, W), for figures and files."""
        return self.maps.detach().float().cpu().numpy()

    def figure(self, alpha: float = 0.5):
        """Each sample's map blended over its input (just the map when the input is unknown), captioned."""
        from ..render.dataset_figures import labelled_images
        from ..render.heatmap import heatmap_rgb, overlay

        maps = self.numpy()
        images = self.pixels() if self.pixels is not None else None
        pictures = [heatmap_rgb(m) if images is None else overlay(images[i], m, alpha) for i, m in enumerate(maps)]
        head = self.method + (f"\n{self.layer}" if self.layer else "")
        titles = [head + ("" if self.targets is None else f"\nclass {int(self.targets[i])}") for i in range(len(maps))]
        return labelled_images(pictures, titles, cell=128)


METHODS: dict[str, type[Method]] = {}


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: make a method available by its ``name`` (CLI, explorer, :func:`attribute`)."""
    METHODS[cls.name] = cls
    return cls


def method_names() -> list[str]:
    return list(METHODS)


def get_method(name: str) -> type[Method]:
    def squash(s: str) -> str:
        return s.strip().lower().replace("_", "").replace("-", "").replace(" ", "").replace("++", "plusplus")

    aliases = {squash(m): m for m in METHODS}
    key = aliases.get(squash(name), name)
    if key not in METHODS:
        raise ConvscopeError(f"unknown attribution method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[key]


def method_info() -> list[dict[str, Any]]:
    """What a menu needs: name, label, family, whether it takes a layer, one-line summary."""
    return [
        {
            "name": c.name,
            "label": c.label,
            "family": c.family,
            "uses_layer": c.uses_layer,
            "summary": (c.__doc__ or "").strip().splitlines()[0],
        }
        for c in METHODS.values()
    ]


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w) -> (B, H, W), bilinear without corner alignment (as Captum and torchcam)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=False).squeeze(1)


class Method:
    """Base of all attribution methods.

    Args:
        model: a :class:`convscope.Model` or a bare ``nn.Module``.
        layer: qualified module name or module (CAM family); ``None`` picks the last
            spatial layer by a dry run. Ignored by methods that do not use a layer.
        fold_bn: run a BatchNorm-folded copy of the net (eval only; built once, rebuilt
            when the weights change; the model itself is not touched). Equal up to float
            rounding; ``None`` (default) chooses per device (:func:`.speed.speedups`): on
            the CPU on for the CAM family, occlusion and Integrated Gradients (as close to a
            float64 reference as Captum's float32 result: docs/attribution-speed-and-precision.md),
            off for the other input-gradient methods (Guided Backprop's sign thresholds amplify
            rounding to ~1e-4); off on CUDA.
        channels_last: run that copy in channels-last memory format (``None``: per device,
            on the CPU on for the CAM family: 1.1-1.5x faster in bench_attribution.py).
        Every call runs with TensorFloat-32 off (:func:`.speed.precise_float32`), so a GPU
        gives the CPU's numbers to float32 rounding.
        progress: default ``progress(done, total)`` callback for long work.
        output: which tensor of the model's output holds the scores (:mod:`convscope.outputs`: a
            key such as ``"logits"``, an index, a callable); default: the Model's ``output``.
            Targets are computed on that tensor.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    family: ClassVar[str] = "gradient"
    uses_layer: ClassVar[bool] = False
    fold_by_default: ClassVar[bool] = True
    channels_last_by_default: ClassVar[bool] = False

    def __init__(
        self,
        model: Model | nn.Module,
        layer: str | nn.Module | None = None,
        *,
        fold_bn: bool | None = None,
        channels_last: bool | None = None,
        progress: Progress | None = None,
        output: OutputSpec = None,
    ) -> None:
        self.model = as_model(model)
        self.net = self.model.net
        self.layer = layer
        self.output = self.model.output if output is None else output
        self.fold_bn, self.channels_last = fold_bn, channels_last  # None: chosen per device
        self.progress = progress

    def __repr__(self) -> str:
        return f"{type(self).__name__}(layer={self.layer!r})"

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The method's own keyword defaults, read off its constructor (the one place they are
        written), e.g. ``IntegratedGradients.defaults()["steps"]``."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for p in inspect.signature(init).parameters.values():
                if p.kind is p.KEYWORD_ONLY and p.default is not p.empty:
                    out[p.name] = p.default
        return out

    def __call__(self, x: Any, target: TargetSpec = None, *, progress: Progress | None = None) -> Attribution:
        """Explain ``target`` for every sample of ``x`` (anything :meth:`Model.batch` accepts)."""
        x = self.model.batch(x)
        with model_state(self.net, freeze=True), precise_float32():
            result = self._attribute(x, target, progress or self.progress or _silent)
        if result.pixels is None:
            result.pixels = partial(self.model.to_display, x)  # for its picture; nothing is computed now
        return result

    def _attribute(self, x: torch.Tensor, target: TargetSpec, progress: Progress) -> Attribution:
        raise NotImplementedError

    # -- shared machinery ----------------------------------------------------------
    def layer_ref(self, x: torch.Tensor) -> LayerRef:
        """The target layer for inputs shaped like ``x`` (resolved once per model, see :mod:`.reuse`)."""
        given = parse_layer(self.net, self.layer) if self.layer is not None else None
        return SHARED.get(
            self.net,
            ("layer", given, tuple(x.shape[1:]), str(x.device)),
            lambda: resolve_layer(self.net, self.layer, x),
        )

    def forward(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The selected output tensor (``output=``) of ``net`` on ``x``."""
        return select_output(net(self.prepare_input(x)), self.output)

    def runner(self, x: torch.Tensor, keep: frozenset[str] = frozenset()) -> nn.Module:
        """The net to run: the user's, or the folded / channels-last copy shared by every
        method object on this model (see :mod:`.reuse`). A layer that is a traced op, not a
        module (``keep`` names it), is reached through the net's own traced graph: the net runs."""
        use = self.speedups(x.device)
        if not (use.fold_bn or use.channels_last) or not keep <= set(dict(self.net.named_modules())):
            return self.net
        key = ("runner", keep, tuple(x.shape[1:]), str(x.device), *use)
        return SHARED.get(self.net, key, lambda: self._make_runner(x, keep, use)) or self.net

    def speedups(self, device: torch.device) -> Speedups:
        """Whether to run a folded / channels-last copy on ``device`` (see :func:`.speed.speedups`)."""
        return speedups(
            device, self.fold_bn, self.channels_last, Speedups(self.fold_by_default, self.channels_last_by_default)
        )

    def _make_runner(self, x: torch.Tensor, keep: frozenset[str], use: Speedups) -> nn.Module | None:
        """A copy to run instead of the net, or None to run the net itself (never the net: the
        shared cache must not hold it)."""
        net = folded_copy(self.net, x[:1], keep) if use.fold_bn else None
        if use.channels_last:
            try:
                net = (net or copy.deepcopy(self.net)).to(memory_format=torch.channels_last)
            except Exception:  # noqa: BLE001 - a model that cannot be copied runs as it is
                pass
        return net

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.speedups(x.device).channels_last else x

    def forward_at_layer(
        self, net: nn.Module, x: torch.Tensor, layer: LayerRef, grad_above: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Model output and the layer's activation; with ``grad_above`` the output is
        differentiable with respect to that activation only (no graph below the layer)."""
        with capture(net, layer, grad_above=grad_above) as box, torch.no_grad():
            out = select_output(box.run(self.prepare_input(x)), self.output)
        if box.value is None:
            raise ConvscopeError(f"layer {str(layer)!r} was not reached in the forward")
        return out, box.value

    def input_gradient(
        self, x: torch.Tensor, target: TargetSpec | Target, net: nn.Module | None = None
    ) -> tuple[torch.Tensor, Target]:
        """d score / d x for every sample (samples are independent in eval mode, so one
        backward of the summed scores gives each sample's own gradient)."""
        net = net or self.net
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            out = select_output(net(xg), self.output)
            tgt = target if isinstance(target, Target) else resolve_target(target, out)
            (grad,) = torch.autograd.grad(tgt.scores(out).sum(), xg)
        return grad, tgt

    def predicted(self, net: nn.Module, x: torch.Tensor, target: TargetSpec) -> Target:
        """Resolve the target for the unperturbed batch: a gradient-free forward only when
        the predicted class is asked for (the output width is learnt once, on a dry run)."""
        if callable(target) and not isinstance(target, torch.Tensor):
            return Target(fn=target)
        if target is None:
            with torch.no_grad():
                return resolve_target(None, select_output(net(x), self.output))

        def width() -> int | None:
            with torch.no_grad():
                out = select_output(net(x[:1]), self.output)
            return out.shape[1] if out.dim() == 2 else None

        key = ("width", tuple(x.shape[1:]), str(x.device), _output_key(self.output))
        n = SHARED.get(self.net, key, width)
        if n is None:
            with torch.no_grad():  # the clear error for non-class outputs
                return resolve_target(target, select_output(net(x), self.output))
        return Target.explicit(target, x.shape[0], n, x.device)


def _output_key(output: OutputSpec) -> Any:
    """A cache key for an output selector (a callable by identity)."""
    return ("callable", id(output)) if callable(output) else output


def chunks(n: int, size: int):
    """``range`` objects covering 0..n in steps of ``size``."""
    size = max(1, int(size))
    return [range(i, min(i + size, n)) for i in range(0, n, size)]
