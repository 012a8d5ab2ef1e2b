"""Training under ``torchrun``: which process this is, and the few collective steps it needs.

``torchrun --nproc_per_node=N -m convscope train ...`` starts N copies of the same command;
torchrun tells each one its place through the environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``). :func:`current` reads it, so ``convscope train`` needs no flag: one
process without those variables is a world of one and every method here is a no-op.

How a distributed run stays the same run as a single process with the same arguments:

- ``--batch-size`` is the **global** batch. Every rank draws the same seeded permutation
  and the same global batches, and takes its rows ``rank::world`` of each (:meth:`shard`).
- Each rank's loss is scaled by its share of the global batch (:meth:`loss_scale`), so
  DistributedDataParallel's average of the ranks' gradients is the gradient of the mean
  loss over the whole global batch: the single-process update, to float rounding, even
  when the last batch does not split evenly.
- Training sums (loss, hits, images) are added across ranks (:meth:`sum`) before they are
  read, so every rank computes the same metrics and takes the same decisions.
- BatchNorm layers see the global batch: :meth:`Dist.wrap` swaps them for ones whose batch
  mean and variance are reduced over all ranks (``torch.nn.SyncBatchNorm`` on CUDA,
  :class:`convscope.train.syncbn.GlobalBatchNorm` on the CPU, where SyncBatchNorm refuses
  CPU tensors), so normalisation, gradients and running statistics are one process's, and
  :meth:`Dist.unwrap` puts plain ``nn.BatchNorm*`` back when training ends (the ``state_dict``
  keys never change, so every checkpoint loads into the plain net anywhere).
- Validation runs whole on every rank (the same numbers everywhere, no exchange).
- Only rank 0 (:attr:`Dist.is_main`) locks and writes the run folder; the others read
  a checkpoint to resume and write nothing.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ConvscopeError
from . import syncbn


@dataclass(frozen=True)
class Dist:
    """This process's place among ``world`` training processes (``world == 1``: alone)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """The process that locks and writes the run folder (and prints)."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The GPU of this rank's node slot (``LOCAL_RANK``) for CUDA; ``device`` otherwise."""
        if not (self.active and device.type == "cuda"):
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise ConvscopeError(
                f"torchrun started process {self.local_rank} on this machine, which has only "
                f"{torch.cuda.device_count()} GPU(s): lower --nproc_per_node or train with "
                "--device cpu"
            )
        return torch.device("cuda", self.local_rank)

    def join(self, device: torch.device) -> None:
        """Join the process group (nccl on CUDA, gloo on CPU) unless it is joined already."""
        if not self.active or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(
            "nccl" if device.type == "cuda" else "gloo", **({"device_id": device} if device.type == "cuda" else {})
        )
        atexit.register(_leave)

    def wrap(self, net: nn.Module) -> nn.Module:
        """The module the training steps call: ``net`` itself, or ``net`` in DDP (gradients
        averaged across ranks) with its BatchNorm layers swapped for global-batch ones
        (:func:`convscope.train.syncbn.globalize`). ``net`` keeps the parameters and buffers under
        the same names, so its ``state_dict`` stays plain; :meth:`unwrap` undoes the swap."""
        if not self.active:
            return net
        from torch.nn.parallel import DistributedDataParallel

        device = next(net.parameters()).device
        syncbn.globalize(net, device)
        return DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)

    def unwrap(self, net: nn.Module) -> nn.Module:
        """``net`` with its original BatchNorm modules back (a no-op for a net :meth:`wrap` left alone)."""
        syncbn.restore(net)
        return net

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch (of indices or images)."""
        return rows[self.rank :: self.world] if self.active else rows

    def loss_scale(self, local: int, global_: int) -> float:
        """The factor on a rank's mean loss that makes DDP's gradient average the global mean."""
        return local * self.world / global_ if self.active else 1.0

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` added element-wise across ranks (``values`` itself when alone)."""
        if not self.active:
            return values
        on = values.to(torch.device("cuda", self.local_rank) if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(on)
        return on.to(values.device)


class NoLock:
    """The run-folder lock of a rank other than 0, which never writes the folder."""

    stale = None
    command = None

    def acquire(self) -> NoLock:
        return self

    def release(self) -> None:
        pass


class NoWriter:
    """The background writer of a rank other than 0: every write is rank 0's, so it drops them."""

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        pass

    def wait(self) -> None:
        pass

    def close(self) -> None:
        pass


def current() -> Dist:
    """This process's :class:`Dist`, read from torchrun's environment variables."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as exc:
        raise ConvscopeError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers ({exc})") from None
    if world < 1 or not 0 <= rank < world:
        raise ConvscopeError(f"RANK {rank} is not in a world of WORLD_SIZE {world}")
    return Dist(world, rank, local_rank)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
