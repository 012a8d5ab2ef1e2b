"""Cheap per-epoch snapshots for the "watch it learn" view.

Each epoch writes ``snapshots/epoch_NNN.npz`` (a few tens of KB): the first
convolution's weights and bias, and that layer's output maps for one fixed validation
image, together with the image itself, so a viewer can show filters and activation
maps changing epoch by epoch without loading checkpoints or running the model.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io_utils import write_bytes_atomic
from ..probe import LayerRef, capture, model_state

FOLDER = "snapshots"


def first_conv(net: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first ``nn.Conv2d`` in module order, with its qualified name."""
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    return None


def snapshot_path(out: str | Path, epoch: int) -> Path:
    return Path(out) / FOLDER / f"epoch_{epoch:03d}.npz"


@torch.no_grad()
def snapshot_arrays(
    epoch: int, net: nn.Module, image: torch.Tensor, x: torch.Tensor, label: int
) -> dict[str, Any] | None:
    """The snapshot's arrays; ``image`` is uint8 (C,H,W), ``x`` its network input.

    Runs the net once on ``x`` in eval mode (its mode is restored). None for nets
    without a convolution.
    """
    found = first_conv(net)
    if found is None:
        return None
    name, conv = found
    with model_state(net), capture(net, LayerRef(name)) as captured:
        net(x.unsqueeze(0).to(conv.weight.device))
    return {
        "epoch": np.int64(epoch),
        "layer": np.array(name),
        "weight": conv.weight.detach().float().cpu().numpy().copy(),
        "bias": (
            conv.bias.detach().float().cpu().numpy().copy()
            if conv.bias is not None
            else np.zeros(conv.out_channels, np.float32)
        ),
        "activations": captured.value[0].float().cpu().numpy(),
        "image": image.cpu().numpy().astype(np.uint8),
        "label": np.int64(label),
    }


def write_snapshot(out: str | Path, arrays: dict[str, Any]) -> Path:
    """Write arrays from :func:`snapshot_arrays` to ``OUT/snapshots/epoch_NNN.npz``."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    path = snapshot_path(out, int(arrays["epoch"]))
    write_bytes_atomic(path, buf.getvalue())
    return path


def save_snapshot(
    out: str | Path, epoch: int, net: nn.Module, image: torch.Tensor, x: torch.Tensor, label: int
) -> Path | None:
    """Compute and write epoch ``epoch``'s snapshot (None for nets without a convolution)."""
    arrays = snapshot_arrays(epoch, net, image, x, label)
    return None if arrays is None else write_snapshot(out, arrays)


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """A snapshot as a dict of arrays (``layer`` as str, ``epoch``/``label`` as int)."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["layer"] = str(d["layer"])
    d["epoch"] = int(d["epoch"])
    d["label"] = int(d["label"])
    return d
