"""Pixel attributions from input gradients.

Each returns ``raw`` (B, C, H, W), one value per input element, and ``maps`` (B, H, W):
the channel maximum for the magnitude methods (saliency, SmoothGrad, as Simonyan et al.
show them), the channel sum for the signed ones. A subclass implements ``_raw`` only.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import ConvscopeError
from .base import Attribution, Method, Progress, chunks, register, upsample
from .cam import GradCAM
from .hooks import guided_relus
from .targets import Target, TargetSpec


class PixelMethod(Method):
    """Base of the input-gradient family: ``_raw`` gives (B, C, H, W) and the target."""

    family = "gradient"
    reduce: ClassVar[str] = "sum"
    fold_by_default = False

    def _raw(
        self, net: nn.Module, x: torch.Tensor, target: TargetSpec, progress: Progress
    ) -> tuple[torch.Tensor, Target]:
        raise NotImplementedError

    def _attribute(self, x: torch.Tensor, target: TargetSpec, progress: Progress) -> Attribution:
        raw, tgt = self._raw(self.runner(x), x, target, progress)
        maps = raw.amax(1) if self.reduce == "max" else raw.sum(1)
        return Attribution(maps, raw, tgt.classes, self.name)


@register
class Saliency(PixelMethod):
    """Vanilla gradient (Simonyan et al. 2014): ``|d S_c / d x|``; the map is the channel max."""

    name, label = "saliency", "Saliency (gradient)"
    reduce = "max"

    def _raw(self, net, x, target, progress):
        grad, tgt = self.input_gradient(x, target, net)
        return grad.abs(), tgt


@register
class InputXGradient(PixelMethod):
    """Input x Gradient (Shrikumar et al. 2016): ``x * d S_c / d x``; the map is the channel sum."""

    name, label = "inputxgradient", "Input x Gradient"

    def _raw(self, net, x, target, progress):
        grad, tgt = self.input_gradient(x, target, net)
        return x * grad, tgt


@register
class GuidedBackprop(PixelMethod):
    """Guided Backpropagation (Springenberg et al. 2015): only positive gradients pass ReLUs.

    Works with in-place ReLUs and ReLU6 (EfficientNet) without changing the model
    (see :func:`.hooks.guided_relus`).
    """

    name, label = "guidedbackprop", "Guided Backprop"

    def _raw(self, net, x, target, progress):
        with guided_relus(net):
            grad, tgt = self.input_gradient(x, target, net)
        return grad, tgt


@register
class GuidedGradCAM(PixelMethod):
    """Guided Grad-CAM (Selvaraju et al. 2017): Guided Backprop times the upsampled Grad-CAM."""

    name, label = "guidedgradcam", "Guided Grad-CAM"
    uses_layer = True

    def __init__(self, model, layer=None, **kwargs) -> None:
        super().__init__(model, layer, **kwargs)
        self.gradcam = GradCAM(
            self.model, layer, fold_bn=self.fold_bn, channels_last=self.channels_last, output=self.output
        )

    def _attribute(self, x, target, progress):
        result = super()._attribute(x, target, progress)
        result.layer = str(self.gradcam.layer_ref(x))
        return result

    def _raw(self, net, x, target, progress):
        cam = self.gradcam._attribute(x, target, progress)
        tgt = Target(fn=target) if cam.targets is None else Target(cam.targets)
        guided, _ = GuidedBackprop._raw(self, net, x, tgt, progress)
        return guided * upsample(cam.raw, tuple(x.shape[-2:])).unsqueeze(1), tgt


def path_points(steps: int, method: str) -> tuple[list[float], list[float]]:
    """Integration points ``alpha`` in [0, 1] and their weights, as Captum defines them."""
    if steps < 1:
        raise ConvscopeError("Integrated Gradients needs at least one step")
    n = steps
    if method == "gausslegendre":
        nodes, w = np.polynomial.legendre.leggauss(n)
        return list(0.5 * (nodes + 1)), list(0.5 * w)
    if method == "riemann_trapezoid":
        if n < 2:
            raise ConvscopeError("the trapezoid rule needs at least two steps")
        return list(np.linspace(0, 1, n)), [1 / (2 * (n - 1))] + [1 / (n - 1)] * (n - 2) + [1 / (2 * (n - 1))]
    starts = {"riemann_left": 0.0, "riemann_right": 1.0 / n, "riemann_middle": 0.5 / n}
    if method not in starts:
        raise ConvscopeError(
            f"unknown integration method {method!r}: gausslegendre, riemann_left, "
            "riemann_right, riemann_middle or riemann_trapezoid"
        )
    return list(np.linspace(starts[method], starts[method] + 1 - 1.0 / n, n)), [1.0 / n] * n


@register
class IntegratedGradients(PixelMethod):
    """Integrated Gradients (Sundararajan et al. 2017).

    ``IG(x) = (x - x0) * sum_i w_i dS_c/dx (x0 + a_i (x - x0))`` over the integration
    points of ``method`` (Gauss-Legendre by default, as Captum). ``x0`` is ``baseline``
    (a number or a tensor broadcastable to x). ``batch_size`` inputs per forward.

    The path points of several steps run as one batch, with the step weights applied on the
    device (no host work per step). On the CPU it runs the BatchNorm-folded channels-last
    copy (:mod:`.speed`; 16 steps: 1.4x Captum on a ResNet-18, 2.1x on EfficientNet-Lite0, by
    median wall time in ``benchmarks/bench_attribution.py``). Folding is the same function, and its attributions
    are as close to the float64 ones as the plain net's: a ReLU's or ReLU6's derivative (0 or
    1) flips where an activation lies within float32 rounding of a kink, and which ones flip
    depends on the rounding, not on folding. Measured (8 steps, one photo): Captum in float32
    is 1.4e-3 (ResNet-18) and 4.3e-2 (Lite0) from float64 Captum (largest difference relative
    to the largest value), the folded copy 1.5e-6 and 1.0e-2 (``docs/attribution-speed-and-precision.md``).
    """

    name, label = "integratedgradients", "Integrated Gradients"
    fold_by_default = True
    channels_last_by_default = True

    def __init__(
        self,
        model,
        layer=None,
        *,
        steps: int = 32,
        method: str = "gausslegendre",
        baseline: float | torch.Tensor = 0.0,
        batch_size: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(model, layer, **kwargs)
        self.alphas, self.step_weights = path_points(steps, method)
        self.baseline, self.batch_size = baseline, batch_size

    def _raw(self, net, x, target, progress):
        tgt = self.predicted(net, x, target)
        x0 = torch.as_tensor(self.baseline, dtype=x.dtype, device=x.device).expand_as(x)
        B, n = x.shape[0], len(self.alphas)
        per = max(1, self.batch_size // B)
        alphas = torch.tensor(self.alphas, dtype=x.dtype).to(x.device).view(-1, 1, 1, 1, 1)
        weights = torch.tensor(self.step_weights, dtype=x.dtype).to(x.device).view(-1, 1, 1, 1, 1)
        delta = x - x0
        total = torch.zeros_like(x)
        parts = chunks(n, per)
        rows = torch.arange(B, device=x.device).repeat(per)
        for done, part in enumerate(parts):
            pts = (x0 + alphas[part.start : part.stop] * delta).flatten(0, 1)
            grad, _ = self.input_gradient(self.prepare_input(pts), _Rows(tgt, rows[: len(pts)]), net)
            total += (grad.view(len(part), *x.shape) * weights[part.start : part.stop]).sum(0)
            progress(done + 1, len(parts))
        return delta * total, tgt


class _Rows(Target):
    """A target evaluated on perturbed copies: row i is a copy of sample ``rows[i]``."""

    def __init__(self, target: Target, rows: torch.Tensor) -> None:
        super().__init__(target.classes, target.fn)
        self.rows = rows

    def scores(self, output, rows=None):
        return super().scores(output, self.rows if rows is None else rows)


@register
class SmoothGrad(PixelMethod):
    """SmoothGrad (Smilkov et al. 2017): the saliency ``|dS_c/dx|`` averaged over noisy copies.

    ``x + N(0, s^2)``, ``samples`` copies per input; ``s = noise_level * (max x - min x)``
    per sample, or the absolute ``stdev`` if given. The noise is seeded (``seed=0`` by
    default, so the same input gives the same picture in Python, the CLI and the page;
    ``seed=None`` draws fresh noise each call) and drawn exactly as Captum's NoiseTunnel
    draws it, so a seed reproduces its numbers.
    """

    name, label = "smoothgrad", "SmoothGrad"
    reduce = "max"

    def __init__(
        self,
        model,
        layer=None,
        *,
        samples: int = 16,
        noise_level: float = 0.15,
        stdev: float | None = None,
        seed: int | None = 0,
        batch_size: int = 32,
        **kwargs,
    ) -> None:
        super().__init__(model, layer, **kwargs)
        self.samples, self.noise_level, self.stdev = samples, noise_level, stdev
        self.seed, self.batch_size = seed, batch_size

    def _raw(self, net, x, target, progress):
        tgt = self.predicted(net, x, target)
        B, n = x.shape[0], self.samples
        if self.stdev is not None:
            std = torch.full((B,), float(self.stdev), device=x.device)
        else:
            flat = x.flatten(1)
            std = self.noise_level * (flat.amax(1) - flat.amin(1))
        gen = torch.Generator(device=x.device)
        gen.manual_seed(self.seed) if self.seed is not None else gen.seed()
        std_full = std.repeat_interleave(n).view(-1, 1, 1, 1).expand(B * n, *x.shape[1:]).contiguous()
        noisy = x.repeat_interleave(n, dim=0) + torch.normal(0.0, std_full, generator=gen)
        rows = torch.arange(B, device=x.device).repeat_interleave(n)
        total = torch.zeros_like(noisy)
        parts = chunks(B * n, self.batch_size)
        for done, part in enumerate(parts):
            sl = slice(part.start, part.stop)
            grad, _ = self.input_gradient(noisy[sl], _Rows(tgt, rows[sl]), net)
            total[sl] = grad.abs()
            progress(done + 1, len(parts))
        return total.view(B, n, *x.shape[1:]).mean(1), tgt
