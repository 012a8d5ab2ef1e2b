"""Comparing two heatmaps: Spearman rank correlation and SSIM, batched, in torch.

* Spearman: Pearson correlation of the ranks, ties given their average rank (as
  ``scipy.stats.spearmanr``); a constant map has no ranking and gives NaN.
* SSIM (Wang et al. 2004) with scikit-image's defaults: a 7x7 uniform window over the
  fully covered positions, sample covariances (N / (N - 1)), ``K1 = 0.01, K2 = 0.03``,
  on maps scaled to [0, 1] per map (data range 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 0..n-1 along the last dim, tied values sharing their mean rank."""
    v = values.double()
    sorted_v, order = v.sort(dim=-1, stable=True)
    n = v.shape[-1]
    pos = torch.arange(n, dtype=torch.float64, device=v.device).expand_as(v)
    new_group = torch.ones_like(sorted_v, dtype=torch.bool)
    new_group[..., 1:] = sorted_v[..., 1:] != sorted_v[..., :-1]
    group = new_group.long().cumsum(-1) - 1  # group id per sorted position
    sums = torch.zeros_like(v).scatter_add_(-1, group, pos)
    sizes = torch.zeros_like(v).scatter_add_(-1, group, torch.ones_like(pos))
    mean_rank = sums.gather(-1, group) / sizes.gather(-1, group)
    return torch.empty_like(v).scatter_(-1, order, mean_rank)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rank correlation of each pair of maps: (B, ...) x (B, ...) -> (B,)."""
    ra, rb = average_ranks(a.flatten(1)), average_ranks(b.flatten(1))
    ra = ra - ra.mean(1, keepdim=True)
    rb = rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


def scale01(maps: torch.Tensor) -> torch.Tensor:
    """Each map (B, H, W) scaled to [0, 1]; a constant map becomes all zero."""
    flat = maps.flatten(1).double()
    lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return ((flat - lo) / span).view_as(maps)


def ssim(a: torch.Tensor, b: torch.Tensor, win: int = 7) -> torch.Tensor:
    """Mean SSIM of each pair of maps (B, H, W), each scaled to [0, 1] first -> (B,)."""
    x, y = scale01(a).unsqueeze(1), scale01(b).unsqueeze(1)
    mean = lambda t: F.avg_pool2d(t, win, stride=1)  # noqa: E731
    ux, uy = mean(x), mean(y)
    cov = win * win / (win * win - 1)
    vx = cov * (mean(x * x) - ux * ux)
    vy = cov * (mean(y * y) - uy * uy)
    vxy = cov * (mean(x * y) - ux * uy)
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)
