"""What a unit of a CNN looks for: activation maximisation, kernels, top dataset examples.

>>> import convscope as cs
>>> from convscope import features
>>> model = cs.load_model("default")
>>> vis = features.visualize(model, "conv_2_2", units=range(10), steps=128)   # vis.images: uint8
>>> k = features.kernels(model, "conv_1_1")                                  # arrays + value scale
>>> top = features.top_examples(model, cs.load_splits("mnist").val, "conv_2_2", k=9)
>>> dead = features.constant_channels(model, cs.load_splits("mnist").val, "relu_2_2")  # {0: 0.0}: dead

Long calls take ``progress(done, total)`` and ``cancel() -> bool`` callbacks; results are
arrays, and :class:`FeatureCache` keeps pictures on disk per model, layer, unit and settings.
Drawing lives in :mod:`convscope.render.features`.
"""

from ..probe import resolve_layer
from .cache import FeatureCache, cached_visualize, model_fingerprint
from .constant import ConstantChannels, constant_channels
from .examples import TopExamples, example_images, merge, top_examples
from .kernels import Kernels, kernels
from .objectives import OBJECTIVES
from .optimize import FeatureVis, visualize
from .params import PARAMETERISATIONS, ImageParam
from .progress import Cancelled
from .receptive import ReceptiveField, receptive_field
from .transforms import Transforms

__all__ = [
    "Cancelled",
    "ConstantChannels",
    "FeatureCache",
    "FeatureVis",
    "ImageParam",
    "Kernels",
    "OBJECTIVES",
    "PARAMETERISATIONS",
    "ReceptiveField",
    "TopExamples",
    "Transforms",
    "cached_visualize",
    "constant_channels",
    "example_images",
    "kernels",
    "merge",
    "model_fingerprint",
    "receptive_field",
    "resolve_layer",
    "top_examples",
    "visualize",
]
