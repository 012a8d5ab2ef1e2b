"""How faithful is a heatmap: deletion / insertion curves and confidence changes.

* Deletion and insertion (Petsiuk et al. 2018, RISE): rank the pixels by the map, then
  remove them from the image in that order (deletion: replaced by a substrate, zero by
  default) or reveal them on a blurred copy (insertion), reading the target class's
  probability after each of ``steps`` (nearly) equal steps. The area under the curve
  over the fraction of pixels changed, by the trapezoid rule, summarises it: low is good for deletion (the
  score collapses when the important pixels go), high is good for insertion.
* Average Drop and Increase in Confidence (Chattopadhay et al. 2018, Grad-CAM++): feed
  ``x * M`` (the map scaled to [0, 1] per sample, times the input) and compare the
  class probability ``O`` with the original ``Y``: ``drop = max(0, Y - O) / Y``;
  Average Drop is its mean in percent (low is good), Increase in Confidence the percent
  of samples with ``O > Y`` (high is good).

All run on a whole batch, batch their forwards and leave the model as they found it. A model
that ends in its own softmax / log-softmax is read as it is (not softmaxed again); ``output``
on each result says which it was (:func:`convscope.explain.targets.output_kind`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvscopeError
from ..models.model import Model, as_model
from ..probe import model_state
from .base import Attribution, Progress, _silent, chunks
from .targets import Target, TargetSpec, resolve_target


@dataclass
class Curve:
    """``scores[b, i]``: the class probability with a fraction ``fractions[i]`` of pixels changed."""

    kind: str
    fractions: torch.Tensor
    scores: torch.Tensor
    auc: torch.Tensor
    output: str = "logits"  # the model's output: "logits" (softmaxed here), "probabilities", "log-probabilities"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "fractions": self.fractions.tolist(),
            "scores": self.scores.tolist(),
            "auc": self.auc.tolist(),
            "output": self.output,
        }


@dataclass
class ConfidenceChange:
    """Per-sample ``drop`` (fraction) and ``increased`` flags, and their batch summaries in percent."""

    original: torch.Tensor
    explained: torch.Tensor
    drop: torch.Tensor
    increased: torch.Tensor
    output: str = "logits"  # as Curve.output

    @property
    def average_drop(self) -> float:
        return float(self.drop.mean() * 100)

    @property
    def increase_in_confidence(self) -> float:
        return float(self.increased.float().mean() * 100)


def auc(scores: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Trapezoid area under ``scores[..., i]`` at x = ``fractions[i]`` (from 0 to 1).

    The fractions are whole pixel counts over the pixel total, so they are only nearly
    even; the area uses the true ones.
    """
    return torch.trapezoid(scores, fractions.to(scores), dim=-1)


def _maps(maps: Attribution | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    m = maps.maps if isinstance(maps, Attribution) else torch.as_tensor(maps)
    m = m.to(x.device, torch.float32)
    if m.dim() == 2:
        m = m.unsqueeze(0)
    if m.shape != (x.shape[0], *x.shape[-2:]):
        raise ConvscopeError(f"maps of shape {tuple(m.shape)} do not match inputs {tuple(x.shape)}")
    return m


def _target(model: Model, net: nn.Module, x: torch.Tensor, maps, target: TargetSpec) -> Target:
    if target is None and isinstance(maps, Attribution) and maps.targets is not None:
        target = maps.targets
    with torch.no_grad():
        return resolve_target(target, model.scores(net(x)))


def blur(x: torch.Tensor, kernel: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Gaussian blur per channel (RISE's insertion substrate: 11 px, sigma 5)."""
    r = torch.arange(kernel, dtype=x.dtype, device=x.device) - (kernel - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    xp = F.pad(x, [kernel // 2] * 4, mode="reflect")
    xp = F.conv2d(xp, g.view(1, 1, 1, -1).expand(c, 1, 1, kernel), groups=c)
    return F.conv2d(xp, g.view(1, 1, -1, 1).expand(c, 1, kernel, 1), groups=c)


def _curve(
    kind: str,
    model: Model | nn.Module,
    x: Any,
    maps,
    target: TargetSpec,
    steps: int,
    substrate: str | float,
    batch_size: int,
    progress: Progress | None,
) -> Curve:
    model = as_model(model)
    x = model.batch(x)
    progress = progress or _silent
    B, _, H, W = x.shape
    m = _maps(maps, x)
    if isinstance(substrate, str):
        if substrate not in ("blur", "zero"):
            raise ConvscopeError(f"substrate must be 'blur', 'zero' or a number, not {substrate!r}")
        base = blur(x) if substrate == "blur" else torch.zeros_like(x)
    else:
        base = torch.full_like(x, float(substrate))
    # rank[b, p] = position of pixel p in the order of decreasing importance
    order = m.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(H * W, device=x.device).expand(B, -1))
    counts = torch.tensor([round(i * H * W / steps) for i in range(steps + 1)], device=x.device)
    b_all = torch.arange(B, device=x.device).repeat_interleave(steps + 1)
    i_all = torch.arange(steps + 1, device=x.device).repeat(B)
    scores = torch.zeros(B, steps + 1, device=x.device)
    with model_state(model.net, freeze=True) as net:
        tgt = _target(model, net, x, maps, target)
        parts = chunks(len(b_all), batch_size)
        for done, part in enumerate(parts):
            bi, ii = b_all[part.start : part.stop], i_all[part.start : part.stop]
            changed = (rank[bi] < counts[ii].unsqueeze(1)).view(-1, 1, H, W)
            if kind == "deletion":
                inp = torch.where(changed, base[bi], x[bi])
            else:
                inp = torch.where(changed, x[bi], base[bi])
            with torch.no_grad():
                scores[bi, ii] = tgt.probabilities(model.scores(net(inp)), rows=bi).float()
            progress(done + 1, len(parts))
    fractions = counts.float() / (H * W)
    return Curve(kind, fractions, scores, auc(scores, fractions), tgt.kind or "logits")


def deletion(
    model: Model | nn.Module,
    x: Any,
    maps: Attribution | torch.Tensor,
    target: TargetSpec = None,
    steps: int = 50,
    substrate: str | float = "zero",
    batch_size: int = 32,
    progress: Progress | None = None,
) -> Curve:
    """Deletion curve and AUC (lower is better). ``maps``: an :class:`Attribution` or (B, H, W)."""
    return _curve("deletion", model, x, maps, target, steps, substrate, batch_size, progress)


def insertion(
    model: Model | nn.Module,
    x: Any,
    maps: Attribution | torch.Tensor,
    target: TargetSpec = None,
    steps: int = 50,
    substrate: str | float = "blur",
    batch_size: int = 32,
    progress: Progress | None = None,
) -> Curve:
    """Insertion curve and AUC (higher is better); starts from a blurred copy by default."""
    return _curve("insertion", model, x, maps, target, steps, substrate, batch_size, progress)


def confidence_change(
    model: Model | nn.Module, x: Any, maps: Attribution | torch.Tensor, target: TargetSpec = None
) -> ConfidenceChange:
    """Average Drop / Increase in Confidence for the explanation maps of a batch."""
    model = as_model(model)
    x = model.batch(x)
    m = _maps(maps, x)
    flat = m.flatten(1)
    lo, hi = flat.amin(1).view(-1, 1, 1), flat.amax(1).view(-1, 1, 1)
    scaled = torch.where(hi > lo, (m - lo) / torch.where(hi > lo, hi - lo, torch.ones_like(hi)), torch.zeros_like(m))
    with model_state(model.net, freeze=True) as net, torch.no_grad():
        tgt = _target(model, net, x, maps, target)
        y = tgt.probabilities(model.scores(net(x))).float()
        o = tgt.probabilities(model.scores(net(x * scaled.unsqueeze(1)))).float()
    drop = (y - o).clamp(min=0) / y.clamp_min(1e-12)
    return ConfidenceChange(y, o, drop, o > y, tgt.kind or "logits")
