"""The arithmetic behind each layer, recomputed from a trace record.

Pure functions of a :class:`~convscope.trace.LayerRecord` (batch item 0 unless
``batch=`` says otherwise); results are small dataclasses of tensors with
``to_dict()`` for JSON. Each one reproduces PyTorch's own output, which the tests check.

=====================  ==============================================================
``conv_channel``       one output channel = sum of per-input-channel maps + bias
``conv_position``      one output value = sum of receptive-field patch * kernel + bias
``pool_window(s)``     the window behind a pooling output (max: arg-max; avg: divisor)
``activation``         input, output and formula of ReLU / ReLU6 / SiLU / sigmoid / tanh
``batchnorm``          per-channel scale and shift: output = input * scale + shift
``flatten_index``      flat index <-> (c, h, w) (``flatten_map``: the shape behind it)
``merge``              x + y, x * y, torch.cat: operands, result, channel ranges
``linear``             contributions w_ij * x_j, their sums, bias, outputs
``top_contributions``  one output's largest contributions, and all positive / negative summed
``softmax``            exp(logit_i), their sum, probabilities
``softmax_rest``       the classes a table leaves out: count, exp sum, probability sum
``layer_norm``         LayerNorm over the channels at one position: mean, var, normalised
``relayout``           permute / view / reshape: which axes went where
``reduction``          a mean over some axes: the axes, the count, the mean redone
``broadcast_product``  a × b with size-1 axes repeated (SE gates, layer scale)
=====================  ==============================================================
"""

from __future__ import annotations

from typing import Any

from ...errors import ConvscopeError
from ..records import ELEMENTWISE_KINDS, POOL_KINDS, LayerRecord
from .base import Detail
from .conv import ConvChannel, ConvPosition, conv_channel, conv_geometry, conv_position, padded_input
from .pool import PoolWindow, PoolWindows, pool_window, pool_windows
from .shape import (
    Broadcast,
    LayerNormDetail,
    Reduction,
    Relayout,
    broadcast_product,
    layer_norm,
    node_parameters,
    reduction,
    relayout,
)
from .simple import (
    FORMULAS,
    BatchNormAffine,
    Elementwise,
    FlattenMap,
    LinearDetail,
    Merge,
    SoftmaxDetail,
    SoftmaxRest,
    TopContributions,
    activation,
    batchnorm,
    flatten_index,
    flatten_map,
    flatten_position,
    linear,
    merge,
    softmax,
    softmax_rest,
    top_contributions,
)

__all__ = [
    "BatchNormAffine",
    "Broadcast",
    "ConvChannel",
    "LayerNormDetail",
    "Reduction",
    "Relayout",
    "broadcast_product",
    "layer_norm",
    "node_parameters",
    "reduction",
    "relayout",
    "ConvPosition",
    "Detail",
    "Elementwise",
    "FORMULAS",
    "FlattenMap",
    "LinearDetail",
    "Merge",
    "PoolWindow",
    "PoolWindows",
    "SoftmaxDetail",
    "SoftmaxRest",
    "TopContributions",
    "activation",
    "batchnorm",
    "conv_channel",
    "conv_geometry",
    "conv_position",
    "describe",
    "flatten_index",
    "flatten_map",
    "flatten_position",
    "linear",
    "merge",
    "padded_input",
    "pool_window",
    "pool_windows",
    "softmax",
    "softmax_rest",
    "top_contributions",
]


def describe(
    rec: LayerRecord, c: int | None = None, y: int | None = None, x: int | None = None, batch: int = 0
) -> Detail:
    """The detail that fits a record's kind, for views that handle any layer.

    conv: ``conv_position`` when ``c, y, x`` are given, else ``conv_channel(c or 0)``;
    pooling: ``pool_window`` at ``c, y, x`` (default 0, 0, 0); activations, batch-norm,
    flatten, linear, softmax, add/mul/concat: their one detail.
    """
    if rec.kind == "conv":
        if y is not None and x is not None:
            return conv_position(rec, c or 0, y, x, batch)
        return conv_channel(rec, c or 0, batch)
    if rec.kind in POOL_KINDS:
        return pool_window(rec, c or 0, y or 0, x or 0, batch)
    if rec.kind in ELEMENTWISE_KINDS:
        return activation(rec, batch)
    simple: dict[str, Any] = {
        "batchnorm": lambda: batchnorm(rec),
        "linear": lambda: linear(rec, batch),
        "softmax": lambda: softmax(rec, batch),
        "flatten": lambda: flatten_map(rec),
        "add": lambda: merge(rec, batch),
        "mul": lambda: merge(rec, batch),
        "concat": lambda: merge(rec, batch),
    }
    if rec.kind in simple:
        return simple[rec.kind]()
    raise ConvscopeError(f"no arithmetic detail for {rec.kind} layers ({rec.name!r})")
