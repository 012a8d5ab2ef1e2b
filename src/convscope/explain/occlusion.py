"""Occlusion (Zeiler & Fergus 2014): how much the score drops when a patch is covered.

A ``window`` x ``window`` patch (all channels) slides with ``stride``; positions are
``0, s, 2s, ...`` up to ``ceil((H - k) / s) + 1`` of them, the last ones cut off at the
border (as Captum's ``Occlusion``). Each patch is set to ``baseline``; every pixel gets
the mean of ``S_c(x) - S_c(x with the patch covered)`` over the patches covering it.
``batch_size`` occluded images per forward.

A covered copy differs from the image only inside its window, so by default
(``reuse=True``) each covered forward reuses the image's own forward outside the
window's footprint (:mod:`.regions`: convolutions and max-pools compute only the part
of their output the window reaches, until that part covers most of the map or the net
does something else); equal to the plain forward up to float rounding.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch

from ..errors import ConvscopeError
from ..outputs import select_output
from .base import Attribution, Method, chunks, register
from .regions import ChangedBoxes
from .targets import resolve_target


def _starts(size: int, window: int, stride: int) -> list[int]:
    return [i * stride for i in range(math.ceil((size - window) / stride) + 1)]


@register
class Occlusion(Method):
    """Occlusion: the score drop when a sliding patch is covered (``raw`` is (B, H, W)).

    ``window`` defaults to an eighth of the input's shorter side (at least 2 pixels) and
    ``stride`` to half the window, so one default suits a 28x28 digit and a 224x224 photo.
    """

    name, label = "occlusion", "Occlusion"
    family = "perturbation"

    def __init__(
        self,
        model,
        layer=None,
        *,
        window: int | None = None,
        stride: int | None = None,
        baseline: float = 0.0,
        batch_size: int = 32,
        reuse: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(model, layer, **kwargs)
        if (
            (window is not None and window < 1)
            or (stride is not None and stride < 1)
            or (window is not None and stride is not None and stride > window)
        ):
            raise ConvscopeError("occlusion needs 1 <= stride <= window")
        self.window, self.stride, self.baseline, self.batch_size = window, stride, baseline, batch_size
        self.reuse = reuse

    def geometry(self, size: tuple[int, int]) -> tuple[int, int]:
        """(window, stride) on inputs of ``size`` (H, W): the given ones, or the defaults above."""
        k = self.window or max(2, min(size) // 8)
        stride = self.stride or max(1, k // 2)
        if stride > k:
            raise ConvscopeError(f"occlusion needs stride <= window (window {k}, stride {stride})")
        return k, stride

    def _attribute(self, x, target, progress):
        net = self.runner(x)
        B, _, H, W = x.shape
        k, stride = self.geometry((H, W))
        if k > H or k > W:
            raise ConvscopeError(f"occlusion window {k} is larger than the input ({H}x{W})")
        regions = ChangedBoxes(net)
        with regions.session() if self.reuse else nullcontext(), torch.no_grad():
            out = regions.base(self.prepare_input(x)) if self.reuse else net(self.prepare_input(x))
            out = select_output(out, self.output)
            tgt = resolve_target(target, out)
            base = tgt.scores(out)
            starts = [(y, xx) for y in _starts(H, k, stride) for xx in _starts(W, k, stride)]
            windows = torch.tensor(starts, device=x.device)
            P = len(starts)
            b_all = torch.arange(B, device=x.device).repeat_interleave(P)
            w_all = torch.arange(P, device=x.device).repeat(B)
            ys, xs = torch.arange(H, device=x.device), torch.arange(W, device=x.device)
            fill = torch.as_tensor(self.baseline, dtype=x.dtype, device=x.device)
            total = torch.zeros(B, H, W, device=x.device, dtype=x.dtype)
            parts = chunks(B * P, self.batch_size)
            for done, part in enumerate(parts):
                bi, wi = b_all[part.start : part.stop], w_all[part.start : part.stop]
                y0, x0 = windows[wi, 0].view(-1, 1), windows[wi, 1].view(-1, 1)
                mask = ((ys >= y0) & (ys < y0 + k)).unsqueeze(2) & ((xs >= x0) & (xs < x0 + k)).unsqueeze(1)
                covered = self.prepare_input(torch.where(mask.unsqueeze(1), fill, x[bi]))
                if self.reuse:
                    boxes = [(y, min(y + k, H), xx, min(xx + k, W)) for y, xx in (starts[i % P] for i in part)]
                    scores = tgt.scores(select_output(regions.run(covered, bi, boxes), self.output), rows=bi)
                else:
                    scores = tgt.scores(select_output(net(covered), self.output), rows=bi)
                total.index_add_(0, bi, (base[bi] - scores).to(x.dtype).view(-1, 1, 1) * mask)
                progress(done + 1, len(parts))
        count = torch.zeros(H, W, device=x.device, dtype=x.dtype)
        for y, xx in starts:
            count[y : y + k, xx : xx + k] += 1
        raw = total / count
        return Attribution(raw, raw, tgt.classes, self.name)
