"""The trace of one forward pass and the arithmetic behind each layer.

>>> import convscope as cs
>>> t = cs.trace(model, image)              # or: from convscope.trace import trace
>>> t["layer1.0.conv1"].output.shape
>>> from convscope.trace import details
>>> details.conv_position(t["layer1.0.conv1"], c=3, y=10, x=7).total

``convscope.trace`` is both this package and the function. The package module is
made callable (``convscope.trace(model, x)`` calls :func:`trace`), so the name works
whichever of the two a Python session happened to bind first.
"""

from __future__ import annotations

import sys
import types

from . import details
from .core import Trace, trace
from .records import KINDS, LayerRecord
from .summary import Summary, SummaryRow, multiply_adds

__all__ = ["KINDS", "LayerRecord", "Summary", "SummaryRow", "Trace", "details", "multiply_adds", "trace"]


class _CallablePackage(types.ModuleType):
    """``convscope.trace`` the package behaves as ``convscope.trace`` the function when called."""

    def __call__(self, *args, **kwargs) -> Trace:
        return trace(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
