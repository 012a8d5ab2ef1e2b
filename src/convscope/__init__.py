"""convscope: a microscope for convolutional neural networks.

>>> import convscope as cs
>>> model = cs.load_model("default")          # Tiny VGG trained on MNIST, shipped inside
>>> model.predict("digit.png")                # [[('7', 0.99), ...]]
>>> cs.explain.GradCAM, cs.features.visualize  # the sub-packages are attributes too

Public names and sub-packages are imported lazily, on first use, so ``import convscope``
stays fast and ``convscope --version`` / ``--help`` answer without importing torch; see
``__all__``. The ``TYPE_CHECKING`` imports below name the same things for type checkers
and editors (a test keeps the two lists equal).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names __getattr__ gives, for type checkers (noqa: they are used through __all__)
    from . import analysis, data, explain, features, models, render, train  # noqa: F401
    from .compare import compare, compare_attributions, compare_images, compare_models  # noqa: F401
    from .data import ImageDataset, load_splits  # noqa: F401
    from .errors import ConvscopeError  # noqa: F401
    from .explain import (  # noqa: F401  # noqa: F401  # noqa: F401  # noqa: F401
        CAM,
        Attribution,
        EigenCAM,
        GradCAM,
        GradCAMPlusPlus,
        GuidedBackprop,
        GuidedGradCAM,
        HiResCAM,
        InputXGradient,
        IntegratedGradients,
        LayerCAM,
        Occlusion,
        Saliency,
        ScoreCAM,
        SmoothGrad,
        XGradCAM,
        attribute,
        confidence_change,
        deletion,
        insertion,
        sanity_check,
    )
    from .features import kernels, receptive_field, top_examples, visualize  # noqa: F401
    from .models import Model, Preprocessing, load_checkpoint, load_model, save_checkpoint  # noqa: F401
    from .notebook import explore  # noqa: F401
    from .trace import Trace, trace  # noqa: F401
    from .train import Run  # noqa: F401

    __version__: str

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
    **{name: "convscope.compare" for name in ("compare", "compare_images", "compare_models", "compare_attributions")},
    "Run": "convscope.train",  # your own training loop writing convscope train's run folder
    **{
        name: "convscope.explain"
        for name in (
            "attribute",
            "Attribution",
            "CAM",
            "GradCAM",
            "GradCAMPlusPlus",
            "XGradCAM",
            "LayerCAM",
            "HiResCAM",
            "ScoreCAM",
            "EigenCAM",
            "Saliency",
            "SmoothGrad",
            "InputXGradient",
            "GuidedBackprop",
            "GuidedGradCAM",
            "IntegratedGradients",
            "Occlusion",
            "sanity_check",
            "deletion",
            "insertion",
            "confidence_change",
        )
    },
    **{name: "convscope.features" for name in ("visualize", "kernels", "top_examples", "receptive_field")},
    "explore": "convscope.notebook",
}

# sub-packages reachable as attributes (cs.explain.GradCAM) without importing them by hand
_SUBPACKAGES = ("analysis", "data", "explain", "features", "models", "render", "train")

__all__ = sorted([*_EXPORTS, *_SUBPACKAGES, "__version__"])


def _version() -> str:
    """The installed distribution's version (pyproject.toml is its one source); in a source
    checkout that was never installed, read pyproject.toml itself."""
    from importlib import metadata

    try:
        return metadata.version("convscope")
    except metadata.PackageNotFoundError:
        from pathlib import Path

        try:
            import tomllib

            pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
        except (ImportError, OSError, KeyError, ValueError):
            return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module 'convscope' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
