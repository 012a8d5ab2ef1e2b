"""Choosing where to compute: one rule for the CLI, the trainer and the server."""

from __future__ import annotations

import torch

from .errors import ConvscopeError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` means CUDA when available, else the CPU; asking for CUDA without one is a user error."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConvscopeError(f"--device {name} was asked for, but no CUDA GPU is available")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConvscopeError(f"unknown device {name!r}; use auto, cpu or cuda") from None
