"""Two forward passes side by side: where do they part?

One trace, many views: a comparison is read off two traces. Either two inputs through
one model (:func:`compare_images`: at which layer do a 3 and an 8 stop looking alike?) or
one input through two checkpoints (:func:`compare_models`: two epochs of a run, two runs,
a model and its fine-tuned copy: which layers did training change?). Both end in
:func:`compare`, which takes any two :class:`~convscope.trace.Trace` objects:

>>> import convscope as cs
>>> c = cs.compare_images(cs.load_model("default"), "three.png", "eight.png")  # doctest: +SKIP
>>> [(d.name, round(d.relative_l2, 2)) for d in c.layers]                    # doctest: +SKIP
>>> c.diff("conv_1_1")        # (B, C, H, W) a - b, float32                   # doctest: +SKIP
>>> c.to_json()               # what ``convscope compare`` writes as compare.json

Layers are matched by name, in the first trace's order. A layer both traces have with
outputs of different shapes (a wider copy of the net), or one only one of them has, is
listed in :attr:`Comparison.mismatched`, never an error. For a batch, each measure is
taken over the whole batch at once (one pair of images per call gives per-pair numbers).

With ``method=`` both helpers also explain the two predictions
(:func:`compare_attributions`): two heatmaps and their difference, to be drawn on one
colour scale (:attr:`AttributionPair.top`).

``convscope.compare`` is both this module and the function: the module is callable
(as :mod:`convscope.trace` is), so ``cs.compare(a, b)`` works whichever was bound first.
"""

from __future__ import annotations

import math
import sys
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import ConvscopeError, NotFound
from .i18n import message

if TYPE_CHECKING:
    from torch import nn

    from .explain import Attribution
    from .models import Model
    from .trace import Trace

CLIP_PERCENTILE = 99.5  # the heatmaps' shared top (render.heatmap.clip_top), as heatmap_rgb takes one map's


@dataclass(frozen=True)
class LayerDistance:
    """How far apart one layer's two outputs are.

    ``relative_l2``: ||a - b|| / ||a|| (0: equal; 1: as far apart as a is from zero;
    infinite when a is all zeros and b is not). ``cosine``: cosine similarity of the
    flattened outputs (1: same direction; NaN when exactly one of them is all zeros).
    ``max_abs``: the largest |a - b| of any element.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    relative_l2: float
    cosine: float
    max_abs: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": list(self.shape),
            "relative_l2": _finite(self.relative_l2),
            "cosine": _finite(self.cosine),
            "max_abs": _finite(self.max_abs),
        }


@dataclass(frozen=True)
class Mismatch:
    """A layer that cannot be compared: its output shapes (None where the trace lacks the layer)."""

    name: str
    a: tuple[int, ...] | None
    b: tuple[int, ...] | None

    @property
    def reason_message(self) -> dict[str, Any]:
        """Why, as a catalogue message (``server.compare.*``): the side that has the layer, or both shapes."""
        if self.a is None or self.b is None:
            return message("server.compare.only_in", side="b" if self.a is None else "a")
        return message("server.compare.shapes", a="x".join(map(str, self.a)), b="x".join(map(str, self.b)))

    @property
    def reason(self) -> str:
        return self.reason_message["text"]

    def to_json(self) -> dict[str, Any]:
        said = self.reason_message
        return {
            "name": self.name,
            "a": _shape_json(self.a),
            "b": _shape_json(self.b),
            "reason": said["text"],
            "reason_i18n": said,
        }


@dataclass
class AttributionPair:
    """Two attribution maps (B, H, W) for the two sides, and the colour scale they share.

    ``top`` is the one range both are drawn with: the ``CLIP_PERCENTILE`` of |a| and |b|
    together (``render.heatmap.clip_top``), so equal colours mean equal values.
    """

    method: str
    a: np.ndarray
    b: np.ndarray
    targets_a: list[int] | None
    targets_b: list[int] | None
    top: float

    @property
    def diff(self) -> np.ndarray:
        return self.a - self.b

    @property
    def distance(self) -> tuple[float, float, float]:
        """(relative L2, cosine, max |a - b|) of the two maps, as for a layer."""
        return _distances(torch.from_numpy(self.a), torch.from_numpy(self.b))

    def to_json(self) -> dict[str, Any]:
        rel, cos, mx = self.distance
        return {
            "method": self.method,
            "targets": {"a": self.targets_a, "b": self.targets_b},
            "top": _finite(self.top),
            "relative_l2": _finite(rel),
            "cosine": _finite(cos),
            "max_abs": _finite(mx),
        }


@dataclass
class Comparison:
    """The layer-by-layer distances of two traces, their difference maps and what did not match.

    ``labels`` name the two sides (image files, model names) in figures and JSON.
    """

    a: Trace
    b: Trace
    layers: list[LayerDistance]
    mismatched: list[Mismatch]
    labels: tuple[str, str] = ("a", "b")
    attributions: AttributionPair | None = None
    _by_name: dict[str, LayerDistance] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_name = {d.name: d for d in self.layers}

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.layers]

    def __getitem__(self, name: str) -> LayerDistance:
        try:
            return self._by_name[name]
        except KeyError:
            raise NotFound(f"no compared layer {name!r}; compared: {', '.join(self.names)}") from None

    def __len__(self) -> int:
        return len(self.layers)

    def diff(self, name: str) -> np.ndarray:
        """a - b of one compared layer's outputs, float32 with the batch axis."""
        self[name]
        return (_output(self.a, name) - _output(self.b, name)).float().cpu().numpy()

    @property
    def diffs(self) -> dict[str, np.ndarray]:
        """Every compared layer's a - b (computed when asked: they are as large as a trace)."""
        return {name: self.diff(name) for name in self.names}

    def parting(self, threshold: float = 1e-6) -> LayerDistance | None:
        """The first layer after the input whose relative L2 distance exceeds ``threshold``
        (two checkpoints on one input: the first layer they disagree on; None: they never do)."""
        return next((d for d in self.layers if d.kind != "input" and d.relative_l2 > threshold), None)

    def to_json(self) -> dict[str, Any]:
        """Labels, per-layer distances (non-finite values as null) and the mismatched layers."""
        out: dict[str, Any] = {
            "a": self.labels[0],
            "b": self.labels[1],
            "layers": [d.to_json() for d in self.layers],
            "mismatched": [m.to_json() for m in self.mismatched],
        }
        if self.attributions is not None:
            out["attributions"] = self.attributions.to_json()
        return out

    def __repr__(self) -> str:
        return (
            f"Comparison({self.labels[0]!r} vs {self.labels[1]!r}: {len(self.layers)} layers"
            f"{f', {len(self.mismatched)} mismatched' if self.mismatched else ''})"
        )


def compare(a: Trace, b: Trace, labels: tuple[str, str] | None = None) -> Comparison:
    """Per-layer distances of two traces, matched by layer name in ``a``'s order.

    Layers whose outputs are not tensors are left out; layers with different output
    shapes, or in one trace only, are listed in ``mismatched``.
    """
    outs_a, outs_b = _tensor_outputs(a), _tensor_outputs(b)
    layers: list[LayerDistance] = []
    mismatched: list[Mismatch] = []
    for name, ta in outs_a.items():
        tb = outs_b.get(name)
        if tb is None or ta.shape != tb.shape:
            mismatched.append(Mismatch(name, tuple(ta.shape), tuple(tb.shape) if tb is not None else None))
            continue
        layers.append(LayerDistance(name, a[name].kind, tuple(ta.shape), *_distances(ta, tb)))
    mismatched += [Mismatch(name, None, tuple(tb.shape)) for name, tb in outs_b.items() if name not in outs_a]
    return Comparison(a, b, layers, mismatched, labels or (a.model.name, b.model.name))


def compare_images(
    model: Model | nn.Module,
    x1: Any,
    x2: Any,
    *,
    labels: tuple[str, str] | None = None,
    method: str | None = None,
    target: int | None = None,
    layer: str | None = None,
    **options: Any,
) -> Comparison:
    """Two inputs through one model: ``compare(trace(model, x1), trace(model, x2))``.

    ``method`` (an attribution method name) also explains both predictions
    (``target``: one class for both; default: each input's own prediction); ``layer`` and
    ``options`` go to the method.
    """
    from .models.model import as_model

    m = as_model(model)
    c = compare(_trace(m, x1), _trace(m, x2), labels or ("image 1", "image 2"))
    if method is not None:
        c.attributions = compare_attributions(m, x1, m, x2, method, target=target, layer=layer, **options)
    return c


def compare_models(
    model_a: Model | nn.Module,
    model_b: Model | nn.Module,
    x: Any,
    *,
    labels: tuple[str, str] | None = None,
    method: str | None = None,
    target: int | None = None,
    layer: str | None = None,
    **options: Any,
) -> Comparison:
    """One input through two models (two checkpoints of one architecture, matched by layer name).

    Each model preprocesses ``x`` itself when it is an image; a tensor goes to both as is.
    ``method``, ``target``, ``layer``, ``options``: as for :func:`compare_images`.
    """
    from .models.model import as_model

    ma, mb = as_model(model_a), as_model(model_b)
    c = compare(_trace(ma, x), _trace(mb, x), labels or _model_labels(ma, mb))
    if method is not None:
        c.attributions = compare_attributions(ma, x, mb, x, method, target=target, layer=layer, **options)
    return c


def compare_attributions(
    model_a: Model | nn.Module,
    x_a: Any,
    model_b: Model | nn.Module,
    x_b: Any,
    method: str = "gradcam",
    *,
    target: int | None = None,
    layer: str | None = None,
    **options: Any,
) -> AttributionPair:
    """``method`` on (model_a, x_a) and on (model_b, x_b), with the colour scale both share."""
    from .explain import attribute

    ra = attribute(model_a, x_a, method, layer=layer, target=target, **options)
    rb = attribute(model_b, x_b, method, layer=layer, target=target, **options)
    return attribution_pair(ra, rb)


def attribution_pair(ra: Attribution, rb: Attribution) -> AttributionPair:
    """Two attributions of one method as an :class:`AttributionPair` (maps of one shape)."""
    a, b = ra.numpy(), rb.numpy()
    if a.shape != b.shape:
        raise ConvscopeError(
            f"the two attribution maps differ in shape ({a.shape} vs {b.shape}): compare inputs of one size"
        )
    from .render.heatmap import clip_top

    return AttributionPair(ra.method, a, b, _targets(ra), _targets(rb), clip_top(a, b, clip_percentile=CLIP_PERCENTILE))


# -- helpers ---------------------------------------------------------------------------
def _trace(model: Model, x: Any) -> Trace:
    from .trace import trace

    with torch.no_grad():
        return trace(model, x)


def _model_labels(ma: Model, mb: Model) -> tuple[str, str]:
    if ma.name != mb.name:
        return ma.name, mb.name
    return f"{ma.name} (a)", f"{mb.name} (b)"


def _tensor_outputs(t: Trace) -> dict[str, torch.Tensor]:
    return {r.name: r.output for r in t.layers if isinstance(r.output, torch.Tensor)}


def _output(t: Trace, name: str) -> torch.Tensor:
    return t[name].output.detach()


def _distances(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """(||a-b|| / ||a||, cosine(a, b), max |a-b|) over all elements, in float64."""
    fa, fb = a.detach().double().reshape(-1).cpu(), b.detach().double().reshape(-1).cpu()
    if fa.numel() == 0:
        return 0.0, 1.0, 0.0
    d = fa - fb
    na, nb, nd = float(fa.norm()), float(fb.norm()), float(d.norm())
    relative = nd / na if na > 0 else (0.0 if nd == 0 else math.inf)
    if na > 0 and nb > 0:
        cosine = float(fa @ fb) / (na * nb)
    else:
        cosine = 1.0 if na == nb == 0 else math.nan
    return relative, cosine, float(d.abs().max())


def _targets(r: Attribution) -> list[int] | None:
    return [int(v) for v in r.targets.reshape(-1).tolist()] if r.targets is not None else None


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _shape_json(shape: tuple[int, ...] | None) -> list[int] | None:
    return list(shape) if shape is not None else None


class _CallableModule(types.ModuleType):
    """``convscope.compare`` the module behaves as :func:`compare` when called."""

    def __call__(self, *args: Any, **kwargs: Any) -> Comparison:
        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
