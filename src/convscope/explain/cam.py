"""The CAM family: a map is a weighted sum of a layer's activation maps.

All of them compute, for activations ``A`` (B, K, h, w) of the target layer,

    L = ReLU( sum_k  W_k * A_k )          (at the layer's resolution: ``raw``)

then upsample ``L`` bilinearly to the input (``maps``). They differ only in ``W``, which
is what each subclass's ``_weights`` returns: (B, K, 1, 1) channel weights, or
(B, K, h, w) element-wise weights (LayerCAM, HiResCAM). ``relu=False`` keeps the sign.
Gradients ``G = d score / d A`` come from :meth:`Method.forward_at_layer`, which builds
no autograd graph below the layer.

Example::

    >>> cam = GradCAM(model, "layer4")(batch)        # doctest: +SKIP
    >>> cam.maps.shape, cam.raw.shape                # (B, 224, 224), (B, 7, 7)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConvscopeError
from ..probe import get_module, module_name
from .base import Attribution, Method, Progress, chunks, register, upsample
from .targets import Target, TargetSpec, resolve_target


@dataclass
class CAMContext:
    """What a ``_weights`` override may need besides A and G."""

    x: torch.Tensor
    target: Target
    net: nn.Module
    progress: Progress


class CAMMethod(Method):
    """Base of the CAM family; subclasses override ``_weights`` only."""

    family = "cam"
    uses_layer = True
    needs_grad: ClassVar[bool] = True
    channels_last_by_default = True

    def __init__(self, model, layer=None, *, relu: bool = True, **kwargs) -> None:
        super().__init__(model, layer, **kwargs)
        self.relu = relu

    def _weights(self, A: torch.Tensor, G: torch.Tensor | None, ctx: CAMContext) -> torch.Tensor:
        raise NotImplementedError

    def _attribute(self, x: torch.Tensor, target: TargetSpec, progress: Progress) -> Attribution:
        layer = self.layer_ref(x)
        net = self.runner(x, keep=frozenset({layer.name}))
        out, A = self.forward_at_layer(net, x, layer, grad_above=self.needs_grad)
        tgt = resolve_target(target, out)
        G = None
        if self.needs_grad:
            (G,) = torch.autograd.grad(tgt.scores(out).sum(), A, allow_unused=True)
            G = torch.zeros_like(A) if G is None else G
        A = A.detach()
        W = self._weights(A, G, CAMContext(x, tgt, net, progress))
        cam = (W * A).sum(1)
        if self.relu:
            cam = cam.clamp(min=0)
        return Attribution(
            upsample(cam, tuple(x.shape[-2:])), cam, tgt.classes, self.name, str(layer), output=tgt.kind
        )  # set where the weights read probabilities (Score-CAM)


@register
class GradCAM(CAMMethod):
    """Grad-CAM (Selvaraju et al. 2017): ``W_k = mean_ij G_kij``."""

    name, label = "gradcam", "Grad-CAM"

    def _weights(self, A, G, ctx):
        return G.mean(dim=(2, 3), keepdim=True)


@register
class GradCAMPlusPlus(CAMMethod):
    """Grad-CAM++ (Chattopadhay et al. 2018): positive gradients weighted per position.

    ``alpha_kij = G^2 / (2 G^2 + sum_ab A_kab G^3)`` (0 where the denominator is 0),
    ``W_k = sum_ij alpha_kij ReLU(G_kij)`` (the exponential-score closed form).
    """

    name, label = "gradcam++", "Grad-CAM++"

    def _weights(self, A, G, ctx):
        g2 = G.pow(2)
        denom = 2 * g2 + A.sum(dim=(2, 3), keepdim=True) * G.pow(3)
        alpha = torch.where(
            denom != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(denom)
        )
        return (alpha * G.clamp(min=0)).sum(dim=(2, 3), keepdim=True)


@register
class XGradCAM(CAMMethod):
    """XGrad-CAM (Fu et al. 2020): ``W_k = sum_ij (A_kij / sum_ab A_kab) G_kij`` (0 if the sum is 0)."""

    name, label = "xgradcam", "XGrad-CAM"

    def _weights(self, A, G, ctx):
        total = A.sum(dim=(2, 3), keepdim=True)
        safe = torch.where(total != 0, total, torch.ones_like(total))
        return torch.where(total != 0, (A * G).sum(dim=(2, 3), keepdim=True) / safe, torch.zeros_like(total))


@register
class LayerCAM(CAMMethod):
    """LayerCAM (Jiang et al. 2021): element-wise weights ``W_kij = ReLU(G_kij)``."""

    name, label = "layercam", "LayerCAM"

    def _weights(self, A, G, ctx):
        return G.clamp(min=0)


@register
class HiResCAM(CAMMethod):
    """HiResCAM (Draelos & Carin 2020): element-wise weights ``W_kij = G_kij``."""

    name, label = "hirescam", "HiResCAM"

    def _weights(self, A, G, ctx):
        return G


@register
class EigenCAM(CAMMethod):
    """Eigen-CAM (Muhammad & Yeasin 2020): project A on its first principal direction.

    With ``M`` = A reshaped to (h*w, K), ``W = v_1``, the first right singular vector of
    ``M`` (no gradients, no class). Its sign is arbitrary; we choose the one that makes
    ``sum(M v_1) >= 0``. Class-agnostic: the target only fills ``targets``.
    """

    name, label = "eigencam", "Eigen-CAM"
    needs_grad = False

    def _weights(self, A, G, ctx):
        B, K = A.shape[:2]
        M = A.reshape(B, K, -1).transpose(1, 2).double()  # (B, hw, K)
        v = torch.linalg.svd(M, full_matrices=False).Vh[:, 0, :]  # (B, K)
        sign = torch.sign((M @ v.unsqueeze(-1)).sum(dim=(1, 2)))
        v = v * torch.where(sign == 0, torch.ones_like(sign), sign).unsqueeze(1)
        return v.to(A.dtype).view(B, K, 1, 1)


@register
class CAM(CAMMethod):
    """CAM (Zhou et al. 2016): ``W_k = w^fc_{c,k}``, the classifier's weights for class c.

    Needs a net that ends in global average pooling and one linear layer on the target
    layer's channels; ``fc`` names that linear layer (default: the last ``nn.Linear``
    with K inputs).
    """

    name, label = "cam", "CAM"
    needs_grad = False

    def __init__(self, model, layer=None, *, fc: str | nn.Module | None = None, **kwargs) -> None:
        super().__init__(model, layer, **kwargs)
        self.fc = fc

    def _linear(self, k: int) -> nn.Linear:
        if self.fc is not None:
            name = self.fc if isinstance(self.fc, str) else module_name(self.net, self.fc)
            fc = get_module(self.net, name)
        else:
            found = [m for m in self.net.modules() if isinstance(m, nn.Linear) and m.in_features == k]
            if not found:
                raise ConvscopeError(
                    f"CAM needs a final nn.Linear with {k} inputs (the layer's channels); "
                    "use Grad-CAM for other architectures"
                )
            fc = found[-1]
        if not isinstance(fc, nn.Linear) or fc.in_features != k:
            raise ConvscopeError(f"CAM's fc layer must be an nn.Linear with {k} inputs")
        return fc

    def _weights(self, A, G, ctx):
        if ctx.target.classes is None:
            raise ConvscopeError("CAM explains a class: give a class index, not a callable target")
        fc = self._linear(A.shape[1])
        return fc.weight[ctx.target.classes].to(A).view(A.shape[0], A.shape[1], 1, 1)


CONVENTIONS = ("paper", "pytorch-grad-cam")


@register
class ScoreCAM(CAMMethod):
    """Score-CAM (Wang et al. 2020): each channel weighted by the score of the input it masks.

    ``convention="paper"`` (default, as the authors' code): ``H_k = norm(up(A_k))`` scaled
    to [0, 1]; ``W_k = softmax(f(x * H_k))_c`` (the class's probability; a callable
    target's own value). A channel whose map is constant (all zero after a ReLU, for
    instance) carries no spatial information and is skipped, as the reference code does.

    ``convention="pytorch-grad-cam"``: that library's definition (1.5.7), to compare with
    it at equal output: the map upsampled with ``align_corners=True``, ``H_k = (up(A_k) -
    min) / (max - min + 1e-8)`` (a constant map gives the zero mask), the target's raw
    score (the class logit), and ``W = softmax over the K channels`` of those scores.

    One forward per distinct mask, ``batch_size`` masked inputs at a time: channels of a
    sample whose maps are equal after min-max normalisation (every constant map in the
    pytorch-grad-cam convention: they all mask the input to zeros) give the same masked
    input to float rounding, so it runs once and its score is shared.

    ``top_n`` (Faster Score-CAM, Wang et al. 2020b; paper convention only) keeps only the N
    channels with the highest spatial variance per sample: an *approximation*.
    """

    name, label = "scorecam", "Score-CAM"
    needs_grad = False

    def __init__(
        self,
        model,
        layer=None,
        *,
        batch_size: int = 16,
        top_n: int | None = None,
        convention: str = "paper",
        **kwargs,
    ) -> None:
        super().__init__(model, layer, **kwargs)
        if convention not in CONVENTIONS:
            raise ConvscopeError(f"unknown Score-CAM convention {convention!r}: {' or '.join(CONVENTIONS)}")
        if top_n is not None and convention != "paper":
            raise ConvscopeError(
                "top_n drops channels, which a softmax over all channels cannot do: use the paper convention"
            )
        self.batch_size = batch_size
        self.top_n = top_n
        self.convention = convention

    def channels(self, A: torch.Tensor) -> torch.Tensor:
        """(B, K) bool: the channels to score per sample (paper: constant maps dropped, top-N if asked)."""
        flat = A.flatten(2)
        if self.convention != "paper":
            return torch.ones(A.shape[:2], dtype=torch.bool, device=A.device)
        keep = flat.amax(-1) != flat.amin(-1)  # (B, K)
        if self.top_n is not None:
            var = flat.var(-1, unbiased=False).masked_fill(~keep, -1.0)
            top = var.topk(min(self.top_n, A.shape[1]), dim=1).indices
            sel = torch.zeros_like(keep)
            sel.scatter_(1, top, True)
            keep &= sel
        return keep

    @staticmethod
    def distinct(A: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The kept channels (b, k), the representatives of those whose min-max normalised maps
        (a constant map: zeros) are equal within a sample, and each kept channel's group."""
        flat = A.flatten(2)
        lo, hi = flat.amin(-1, keepdim=True), flat.amax(-1, keepdim=True)
        span = hi - lo
        norm = torch.where(span > 0, (flat - lo) / torch.where(span > 0, span, torch.ones_like(span)), 0.0)
        b_idx, k_idx = keep.nonzero(as_tuple=True)
        key = torch.cat([b_idx.unsqueeze(1).to(norm.dtype), norm[b_idx, k_idx]], 1)
        _, group = torch.unique(key, dim=0, return_inverse=True)
        n = len(b_idx)
        first = torch.full((int(group.max()) + 1 if n else 0,), n, dtype=torch.long, device=A.device)
        first.scatter_reduce_(0, group, torch.arange(n, device=A.device), reduce="amin")
        return b_idx, k_idx, first, group

    def masks(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(N, h, w) -> (N, H, W) masks in [0, 1], upsampled and normalised per the convention."""
        if self.convention == "paper":
            up = upsample(maps, size)
        else:  # torch.nn.UpsamplingBilinear2d, as pytorch-grad-cam
            up = F.interpolate(maps.unsqueeze(1), size=size, mode="bilinear", align_corners=True).squeeze(1)
        lo = up.flatten(1).amin(1).view(-1, 1, 1)
        hi = up.flatten(1).amax(1).view(-1, 1, 1)
        return (up - lo) / (hi - lo + (0.0 if self.convention == "paper" else 1e-8))

    def _weights(self, A, G, ctx):
        B, K, h, w = A.shape
        size = tuple(ctx.x.shape[-2:])
        b_idx, k_idx, first, group = self.distinct(A, self.channels(A))
        rb, rk = b_idx[first], k_idx[first]  # one masked forward per distinct mask
        scores = []
        parts = chunks(len(rb), self.batch_size)
        for n, part in enumerate(parts):
            bi, ki = rb[part.start : part.stop], rk[part.start : part.stop]
            with torch.inference_mode():
                out = self.forward(ctx.net, ctx.x[bi] * self.masks(A[bi, ki], size).unsqueeze(1))
                read = ctx.target.probabilities if self.convention == "paper" else ctx.target.scores
                scores.append(read(out, rows=bi).to(A.dtype))
            ctx.progress(n + 1, len(parts))
        weights = torch.zeros(B, K, device=A.device, dtype=A.dtype)
        if scores:
            weights[b_idx, k_idx] = torch.cat(scores).clone()[group]
        if self.convention != "paper":
            weights = weights.softmax(1)
        return weights.view(B, K, 1, 1)
