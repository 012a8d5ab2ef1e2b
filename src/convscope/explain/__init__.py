"""Why did the network decide that: attribution methods, their faithfulness metrics and
the model-randomisation sanity check.

>>> import convscope as cs
>>> result = cs.attribute(model, image, method="gradcam")     # doctest: +SKIP
>>> result.maps          # (B, H, W) heatmap at the input's resolution, on the model's device
>>> cs.GradCAM(model, "layer4")(batch, target=281).raw        # (B, 7, 7)

Methods are listed by name in :data:`METHODS` (``method_names()``, ``method_info()``
for menus); each is ``Method(model, layer=None, **options)(x, target=None)``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..models.model import Model
from ..probe import LayerRef, spatial_layers
from .base import METHODS, Attribution, Method, Progress, get_method, method_info, method_names
from .cam import CAM, CAMMethod, EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from .gradient import GuidedBackprop, GuidedGradCAM, InputXGradient, IntegratedGradients, Saliency, SmoothGrad
from .metrics import ConfidenceChange, Curve, confidence_change, deletion, insertion
from .occlusion import Occlusion
from .sanity import SanityReport, sanity_check
from .similarity import spearman, ssim
from .targets import TargetSpec


def attribute(
    model: Model | nn.Module,
    x: Any,
    method: str = "gradcam",
    layer: str | nn.Module | None = None,
    target: TargetSpec = None,
    progress: Progress | None = None,
    **options: Any,
) -> Attribution:
    """One call: ``get_method(method)(model, layer, **options)(x, target)``.

    Build the method object yourself to explain many batches (it caches the layer
    lookup and the BatchNorm-folded copy between calls).
    """
    return get_method(method)(model, layer, progress=progress, **options)(x, target)


__all__ = [
    "Attribution",
    "CAM",
    "CAMMethod",
    "EigenCAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "GuidedBackprop",
    "GuidedGradCAM",
    "HiResCAM",
    "InputXGradient",
    "IntegratedGradients",
    "LayerCAM",
    "METHODS",
    "Method",
    "Occlusion",
    "Saliency",
    "ScoreCAM",
    "SmoothGrad",
    "XGradCAM",
    "attribute",
    "get_method",
    "method_info",
    "method_names",
    "Curve",
    "ConfidenceChange",
    "confidence_change",
    "deletion",
    "insertion",
    "SanityReport",
    "sanity_check",
    "spearman",
    "ssim",
    "LayerRef",
    "spatial_layers",
]
