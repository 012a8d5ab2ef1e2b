"""convscope: a microscope for convolutional neural networks.

>>> import convscope as cs
>>> model = cs.load_model("default")          # Tiny VGG trained on MNIST, shipped inside
>>> model.predict("digit.png")                # [[('7', 0.99), ...]]

Public names are imported lazily so ``import convscope`` stays fast and the CLI starts
quickly; see ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "ConvscopeError": "convscope.errors",
    "Model": "convscope.models",
    "Preprocessing": "convscope.models",
    "load_model": "convscope.models",
    "load_checkpoint": "convscope.models",
    "save_checkpoint": "convscope.models",
    "load_splits": "convscope.data",
    "ImageDataset": "convscope.data",
    "trace": "convscope.trace",  # the function; the package itself is callable too
    "Trace": "convscope.trace",
    **{name: "convscope.explain" for name in (
        "attribute", "Attribution", "CAM", "GradCAM", "GradCAMPlusPlus", "XGradCAM", "LayerCAM", "HiResCAM",
        "ScoreCAM", "EigenCAM", "Saliency", "SmoothGrad", "InputXGradient", "GuidedBackprop", "GuidedGradCAM",
        "IntegratedGradients", "Occlusion", "sanity_check", "deletion", "insertion", "confidence_change")},
    **{name: "convscope.features" for name in ("visualize", "kernels", "top_examples", "receptive_field")},
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'convscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
