"""BatchNorm over the global batch while ``torchrun`` splits it across processes.

A plain BatchNorm layer under DistributedDataParallel normalises each rank's rows with that
rank's own mean and variance and updates its running statistics from them, so a BN net
trained by N processes is not the net one process trains on the same global batch.
:func:`globalize` swaps every BatchNorm layer of a net for one that reduces its batch
statistics over all ranks first:

- on CUDA, PyTorch's own :class:`torch.nn.SyncBatchNorm`;
- on the CPU (gloo), where ``SyncBatchNorm`` refuses CPU tensors, :class:`GlobalBatchNorm`:
  the sum, the centred sum of squares and the row count of every rank are added with a
  differentiable all-reduce (:func:`sum_over_ranks`), so the mean and the variance
  are those of the whole global batch, weighted by each rank's rows (an uneven last batch,
  even a rank with no rows at all, is normalised as one process would), and the gradient
  flows back through the other ranks' rows as it does through one process's batch.

The replacements share the original layers' parameters and buffers (the optimizer and the
checkpoints see the same tensors under the same ``state_dict`` keys), and :func:`restore`
puts the original ``nn.BatchNorm*`` modules back, pointed at the trained tensors, so what
is saved or handed on after training is a plain net that loads anywhere.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

# net -> {qualified name: the original BatchNorm module it had there}; weak, so a dropped net is forgotten
_ORIGINALS: weakref.WeakKeyDictionary[nn.Module, dict[str, nn.Module]] = weakref.WeakKeyDictionary()


class _SumOverRanks(torch.autograd.Function):
    """``dist.all_reduce(SUM)`` that autograd can go through: the backward adds the gradients of
    every rank, as each rank's loss depends on every rank's contribution (what the deprecated
    ``torch.distributed.nn.functional.all_reduce`` did; written out so nothing warns or vanishes)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverRanks.apply(grad)


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` added element-wise over all ranks, differentiably."""
    return _SumOverRanks.apply(tensor)


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm (1d, 2d or 3d) whose training statistics are those of every rank's rows together.

    Outside training, or without a process group, it is exactly the layer it replaced: eval mode
    normalises with the running statistics, which every rank updated with the same global values.
    Statistics are accumulated in float64, as PyTorch's CPU BatchNorm does, so the numbers match a
    single process's to float32 rounding.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    @classmethod
    def from_module(cls, bn: _BatchNorm) -> GlobalBatchNorm:
        """A replacement for ``bn`` holding the very same parameter and buffer tensors."""
        new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        new._parameters = dict(bn._parameters)  # the same Parameter objects: the optimizer keeps working
        new._buffers = dict(bn._buffers)
        new.train(bn.training)
        return new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        wide = x.double()
        rows = torch.tensor([x.numel() // max(x.shape[1], 1)], dtype=torch.float64, device=x.device)
        summed = sum_over_ranks(torch.cat([wide.sum(dims), rows]))  # every rank's sums and counts
        count = summed[-1]
        if int(count) <= 1:  # the same refusal as one process's BatchNorm over this global batch
            raise ValueError(f"Expected more than 1 value per channel when training, got {int(count)} in all")
        mean = summed[:-1] / count
        centred = wide - mean.view(shape)
        var = sum_over_ranks((centred * centred).sum(dims)) / count  # biased: what normalises
        y = (centred * torch.rsqrt(var + self.eps).view(shape)).to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach() * (count / (count - 1)))
        return y

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        """PyTorch's update: exponential with ``momentum``, or the cumulative mean when it is None."""
        self.num_batches_tracked.add_(1)
        factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1 - factor).add_(unbiased_var.to(self.running_var.dtype), alpha=factor)


def _replacement(bn: _BatchNorm, device: torch.device) -> nn.Module:
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(bn)  # a root BN comes back as its SyncBatchNorm
    return GlobalBatchNorm.from_module(bn)


def globalize(net: nn.Module, device: torch.device) -> int:
    """Swap ``net``'s BatchNorm layers (in place) for ones that use the global batch; how many.

    The root module itself is never swapped (the caller holds it); a net that *is* one
    BatchNorm layer trains with per-rank statistics, which no real CNN is.
    """
    originals = _ORIGINALS.setdefault(net, {})
    for name, module in list(net.named_modules()):
        if not name or name in originals or isinstance(module, (GlobalBatchNorm, nn.SyncBatchNorm)):
            continue
        if isinstance(module, _BatchNorm):
            parent_name, _, leaf = name.rpartition(".")
            parent = net.get_submodule(parent_name)
            parent._modules[leaf] = _replacement(module, device)
            originals[name] = module
    return len(originals)


def restore(net: nn.Module) -> None:
    """Put back the original BatchNorm modules :func:`globalize` replaced, with the current tensors."""
    originals = _ORIGINALS.pop(net, {})
    for name, module in originals.items():
        parent_name, _, leaf = name.rpartition(".")
        parent = net.get_submodule(parent_name)
        current = parent._modules[leaf]
        # the replacement's tensors are the trained ones (``.to()`` may have replaced the originals')
        module._parameters = dict(current._parameters)
        module._buffers = dict(current._buffers)
        module.train(current.training)
        parent._modules[leaf] = module
