"""Which kind a module or functional op is, and its hyper-parameters.

One table for both tracing paths (torch.fx and hooks): modules are classified by
type, functional ops (``F.relu``, ``torch.cat``, ``x + y``, ``x.view``) by their
normalised name. Padding is always reported twice: ``padding`` as the layer was
written (ints, ``'same'``, ``'valid'``) and ``pad`` = ``(left, right, top, bottom)``,
the explicit amounts the arithmetic in :mod:`convscope.trace.details` uses.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# -- modules ------------------------------------------------------------------------
_MODULE_KINDS: tuple[tuple[type, str], ...] = (
    (nn.Conv2d, "conv"),
    (nn.ReLU6, "relu6"),  # before ReLU-like checks: ReLU6 is a Hardtanh subclass
    (nn.ReLU, "relu"),
    (nn.SiLU, "silu"),
    (nn.Sigmoid, "sigmoid"),
    (nn.Tanh, "tanh"),
    (
        (
            nn.LeakyReLU,
            nn.ELU,
            nn.GELU,
            nn.Hardswish,
            nn.Hardsigmoid,
            nn.Hardtanh,
            nn.Softplus,
            nn.Mish,
            nn.PReLU,
            nn.SELU,
            nn.CELU,
        ),
        "activation",
    ),
    (nn.MaxPool2d, "maxpool"),
    (nn.AvgPool2d, "avgpool"),
    (nn.AdaptiveAvgPool2d, "adaptive_avgpool"),
    (nn.AdaptiveMaxPool2d, "adaptive_maxpool"),
    ((nn.BatchNorm2d, nn.BatchNorm1d), "batchnorm"),
    (nn.Linear, "linear"),
    (nn.Flatten, "flatten"),
    ((nn.Dropout, nn.Dropout2d, nn.AlphaDropout), "dropout"),
    (nn.Softmax, "softmax"),
    ((nn.ZeroPad2d, nn.ConstantPad2d, nn.ReflectionPad2d, nn.ReplicationPad2d), "pad"),
    (nn.Identity, "identity"),
)

# -- functional ops, by normalised name ------------------------------------------------
_FUNCTION_KINDS: dict[str, str] = {
    "conv2d": "conv",
    "relu": "relu",
    "relu6": "relu6",
    "silu": "silu",
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "leaky_relu": "activation",
    "elu": "activation",
    "gelu": "activation",
    "hardswish": "activation",
    "hardsigmoid": "activation",
    "hardtanh": "activation",
    "softplus": "activation",
    "mish": "activation",
    "selu": "activation",
    "max_pool2d": "maxpool",
    "_max_pool2d": "maxpool",
    "avg_pool2d": "avgpool",
    "adaptive_avg_pool2d": "adaptive_avgpool",
    "adaptive_max_pool2d": "adaptive_maxpool",
    "batch_norm": "batchnorm",
    "linear": "linear",
    "flatten": "flatten",
    "add": "add",
    "iadd": "add",
    "radd": "add",
    "mul": "mul",
    "imul": "mul",
    "rmul": "mul",
    "cat": "concat",
    "concat": "concat",
    "concatenate": "concat",
    "dropout": "dropout",
    "dropout2d": "dropout",
    "softmax": "softmax",
    "pad": "pad",
}

# positional argument names of the functional ops whose hyper-parameters we read
_SIGNATURES: dict[str, tuple[str, ...]] = {
    "conv2d": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "max_pool2d": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool2d": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
    "adaptive_avg_pool2d": ("input", "output_size"),
    "adaptive_max_pool2d": ("input", "output_size", "return_indices"),
    "linear": ("input", "weight", "bias"),
    "batch_norm": ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps"),
    "flatten": ("input", "start_dim", "end_dim"),
    "cat": ("tensors", "dim"),
    "softmax": ("input", "dim"),
    "pad": ("input", "pad", "mode", "value"),
    "dropout": ("input", "p", "training", "inplace"),
    "leaky_relu": ("input", "negative_slope", "inplace"),
    "hardtanh": ("input", "min_val", "max_val", "inplace"),
}
_SIGNATURES["_max_pool2d"] = _SIGNATURES["max_pool2d"]
_SIGNATURES["concat"] = _SIGNATURES["concatenate"] = _SIGNATURES["cat"]

# in-place operator functions (x += y traced eagerly) and their readable names
_INPLACE_OPERATORS = {operator.iadd, operator.imul, operator.isub, operator.itruediv}


@dataclass
class Classified:
    """A module call or functional op, as the trace reports it."""

    kind: str
    op: str
    params: dict[str, Any]
    weight: torch.Tensor | None = None
    bias: torch.Tensor | None = None


def pair(value: Any) -> tuple[int, int]:
    """An int or a 1/2-sequence as (h, w)."""
    if isinstance(value, (list, tuple)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def explicit_padding(
    padding: Any, kernel_size: tuple[int, int], dilation: tuple[int, int] = (1, 1)
) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` for a conv/pool padding as written.

    ``'same'`` pads ``d*(k-1)`` in total per axis, the odd one extra on the right/bottom
    (PyTorch's rule, as TensorFlow's); ``'valid'`` pads nothing.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            th, tw = (d * (k - 1) for d, k in zip(dilation, kernel_size))
            return (tw // 2, tw - tw // 2, th // 2, th - th // 2)
        raise ValueError(f"unknown padding {padding!r}")
    ph, pw = pair(padding)
    return (pw, pw, ph, ph)


# -- module classification ------------------------------------------------------------
def module_kind(module: nn.Module) -> str:
    for types, kind in _MODULE_KINDS:
        if isinstance(module, types):
            return kind
    return "other"


def classify_module(module: nn.Module, args: tuple, output: Any) -> Classified:
    """Kind, op name, hyper-parameters, weight and bias of one module call."""
    kind = module_kind(module)
    op = type(module).__name__
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    weight = weight if isinstance(weight, torch.Tensor) else None
    bias = bias if isinstance(bias, torch.Tensor) else None
    params = _MODULE_PARAMS.get(kind, _no_params)(module, args)
    if kind == "activation":
        params.update(_activation_params(module))
    return Classified(kind, op, params, weight, bias)


def _no_params(module: nn.Module, args: tuple) -> dict[str, Any]:
    return {}


def _conv_module(m: nn.Conv2d, args: tuple) -> dict[str, Any]:
    k, s, d = pair(m.kernel_size), pair(m.stride), pair(m.dilation)
    return {
        "in_channels": m.in_channels,
        "out_channels": m.out_channels,
        "kernel_size": k,
        "stride": s,
        "padding": m.padding if isinstance(m.padding, str) else pair(m.padding),
        "pad": explicit_padding(m.padding, k, d),
        "padding_mode": m.padding_mode,
        "dilation": d,
        "groups": m.groups,
        "bias": m.bias is not None,
    }


def _maxpool_module(m: nn.MaxPool2d, args: tuple) -> dict[str, Any]:
    return _pool_params("max", m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


def _avgpool_module(m: nn.AvgPool2d, args: tuple) -> dict[str, Any]:
    return _pool_params(
        "avg", m.kernel_size, m.stride, m.padding, 1, m.ceil_mode, m.count_include_pad, m.divisor_override
    )


def _pool_params(
    kind: str, kernel_size, stride, padding, dilation=1, ceil_mode=False, count_include_pad=True, divisor_override=None
) -> dict[str, Any]:
    k = pair(kernel_size)
    s = pair(stride) if stride not in (None, ()) and stride != [] else k
    p, d = pair(padding), pair(dilation)
    params = {
        "kernel_size": k,
        "stride": s,
        "padding": p,
        "pad": (p[1], p[1], p[0], p[0]),
        "dilation": d,
        "ceil_mode": bool(ceil_mode),
    }
    if kind == "avg":
        params.update(count_include_pad=bool(count_include_pad), divisor_override=divisor_override)
    return params


def _adaptive_module(m: nn.Module, args: tuple) -> dict[str, Any]:
    return {"output_size": _output_size(m.output_size, args)}


def _output_size(size: Any, args: tuple) -> tuple[int, int]:
    h, w = (size, size) if not isinstance(size, (list, tuple)) else (size[0], size[-1])
    x = args[0] if args and isinstance(args[0], torch.Tensor) else None
    h = x.shape[-2] if h is None and x is not None else h
    w = x.shape[-1] if w is None and x is not None else w
    return (int(h), int(w))


def _bn_module(m: nn.modules.batchnorm._BatchNorm, args: tuple) -> dict[str, Any]:
    return {
        "num_features": m.num_features,
        "eps": float(m.eps),
        "momentum": m.momentum,
        "affine": m.affine,
        "batch_statistics": bool(m.training or not m.track_running_stats),
        "running_mean": m.running_mean,
        "running_var": m.running_var,
    }


def _linear_module(m: nn.Linear, args: tuple) -> dict[str, Any]:
    return {"in_features": m.in_features, "out_features": m.out_features, "bias": m.bias is not None}


def _flatten_module(m: nn.Flatten, args: tuple) -> dict[str, Any]:
    return {"start_dim": m.start_dim, "end_dim": m.end_dim}


def _dropout_module(m: nn.Module, args: tuple) -> dict[str, Any]:
    return {"p": float(m.p), "active": bool(m.training)}


def _softmax_module(m: nn.Softmax, args: tuple) -> dict[str, Any]:
    return {"dim": m.dim if m.dim is not None else -1}


def _pad_module(m: nn.Module, args: tuple) -> dict[str, Any]:
    p = m.padding
    p = (p,) * 4 if isinstance(p, int) else tuple(int(v) for v in p)
    mode = {nn.ReflectionPad2d: "reflect", nn.ReplicationPad2d: "replicate"}.get(type(m), "constant")
    return {"pad": p, "mode": mode, "value": float(getattr(m, "value", 0.0))}


def _activation_params(m: nn.Module) -> dict[str, Any]:
    names = ("negative_slope", "alpha", "min_val", "max_val", "beta", "threshold", "approximate")
    return {n: getattr(m, n) for n in names if hasattr(m, n)}


_MODULE_PARAMS: dict[str, Callable[[Any, tuple], dict[str, Any]]] = {
    "conv": _conv_module,
    "maxpool": _maxpool_module,
    "avgpool": _avgpool_module,
    "adaptive_avgpool": _adaptive_module,
    "adaptive_maxpool": _adaptive_module,
    "batchnorm": _bn_module,
    "linear": _linear_module,
    "flatten": _flatten_module,
    "dropout": _dropout_module,
    "softmax": _softmax_module,
    "pad": _pad_module,
}


# -- functional classification --------------------------------------------------------
def function_name(target: Any) -> str:
    """Normalised name of a functional op: ``F.relu`` -> relu, ``Tensor.__iadd__`` -> iadd,
    ``x.relu_`` -> relu."""
    name = target if isinstance(target, str) else getattr(target, "__name__", type(target).__name__)
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
    elif name.endswith("_") and not name.startswith("_"):
        name = name[:-1]
    return name


def function_kind(target: Any) -> str:
    """The record kind of a functional op (``'other'`` when unknown)."""
    return _FUNCTION_KINDS.get(function_name(target), "other")


def op_label(target: Any, is_method: bool = False) -> str:
    """How the op reads in a table: ``F.relu``, ``torch.flatten``, ``operator.add``, ``Tensor.view``."""
    if is_method or isinstance(target, str):
        return f"Tensor.{target if isinstance(target, str) else target.__name__}"
    name = getattr(target, "__name__", repr(target))
    if getattr(torch.Tensor, name, None) is target:
        return f"Tensor.{name}"
    module = getattr(target, "__module__", None) or ""
    if module == "torch.nn.functional" or getattr(torch.nn.functional, name, None) is target:
        return f"F.{name}"
    if module in ("_operator", "operator") or target in vars(operator).values():
        return f"operator.{name}"
    if module.startswith("torch") or getattr(torch, name, None) is target:
        return f"torch.{name}"
    return f"{module}.{name}" if module else name


def is_inplace_call(target: Any, kwargs: dict[str, Any], module: nn.Module | None = None) -> bool:
    """Whether the call overwrites its first argument (``inplace=True``, ``x.relu_()``, ``+=``)."""
    if module is not None:
        return bool(getattr(module, "inplace", False))
    if kwargs.get("inplace"):
        return True
    if target in _INPLACE_OPERATORS:
        return True
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    if name.startswith("__i") and name.endswith("__") and name[3:-2] in ("add", "sub", "mul", "truediv", "div"):
        return True
    return name.endswith("_") and not name.startswith("_")


def bind(name: str, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Positional and keyword arguments of a functional op, by parameter name."""
    names = _SIGNATURES.get(name, ())
    bound = {n: a for n, a in zip(names, args)}
    bound.update(kwargs)
    return bound


def classify_function(
    target: Any, args: tuple, kwargs: dict[str, Any], output: Any, is_method: bool = False
) -> Classified:
    """Kind, op label and hyper-parameters of a functional op call (``F.conv2d(x, w, ...)``)."""
    name = function_name(target)
    kind = _FUNCTION_KINDS.get(name, "other")
    label = op_label(target, is_method)
    a = bind(name, args, kwargs)
    weight = bias = None
    params: dict[str, Any] = {}
    if kind == "conv":
        weight, bias = a.get("weight"), a.get("bias")
        k = tuple(weight.shape[-2:])
        d = pair(a.get("dilation", 1))
        padding = a.get("padding", 0)
        params = {
            "in_channels": int(weight.shape[1]) * int(a.get("groups", 1)),
            "out_channels": int(weight.shape[0]),
            "kernel_size": k,
            "stride": pair(a.get("stride", 1)),
            "padding": padding if isinstance(padding, str) else pair(padding),
            "pad": explicit_padding(padding, k, d),
            "padding_mode": "zeros",
            "dilation": d,
            "groups": int(a.get("groups", 1)),
            "bias": bias is not None,
        }
    elif kind == "maxpool":
        params = _pool_params(
            "max",
            a["kernel_size"],
            a.get("stride"),
            a.get("padding", 0),
            a.get("dilation", 1),
            a.get("ceil_mode", False),
        )
    elif kind == "avgpool":
        params = _pool_params(
            "avg",
            a["kernel_size"],
            a.get("stride"),
            a.get("padding", 0),
            1,
            a.get("ceil_mode", False),
            a.get("count_include_pad", True),
            a.get("divisor_override"),
        )
    elif kind in ("adaptive_avgpool", "adaptive_maxpool"):
        params = {"output_size": _output_size(a.get("output_size"), args)}
    elif kind == "linear":
        weight, bias = a.get("weight"), a.get("bias")
        params = {"in_features": int(weight.shape[1]), "out_features": int(weight.shape[0]), "bias": bias is not None}
    elif kind == "batchnorm":
        weight, bias = a.get("weight"), a.get("bias")
        params = {
            "num_features": int(args[0].shape[1]),
            "eps": float(a.get("eps", 1e-5)),
            "momentum": a.get("momentum", 0.1),
            "affine": weight is not None,
            "batch_statistics": bool(a.get("training", False)),
            "running_mean": a.get("running_mean"),
            "running_var": a.get("running_var"),
        }
    elif kind == "flatten":
        params = {"start_dim": int(a.get("start_dim", 0)), "end_dim": int(a.get("end_dim", -1))}
    elif kind == "concat":
        params = {"dim": int(a.get("dim", 0))}
    elif kind == "softmax":
        params = {"dim": a.get("dim", -1)}
    elif kind == "pad":
        p = tuple(int(v) for v in a["pad"])
        params = {
            "pad": p + (0,) * (4 - len(p)) if len(p) < 4 else p,
            "mode": a.get("mode", "constant"),
            "value": float(a.get("value") or 0.0),
        }
    elif kind == "dropout":
        params = {"p": float(a.get("p", 0.5)), "active": bool(a.get("training", True))}
    elif kind == "activation":
        params = {k: v for k, v in a.items() if k not in ("input", "inplace")}
    elif kind == "other" and name in ("view", "reshape") and _is_flatten(args, output):
        kind, params = "flatten", {"start_dim": 1, "end_dim": -1}
    return Classified(kind, label, params, weight, bias)


def _is_flatten(args: tuple, output: Any) -> bool:
    """``x.view(B, -1)`` / ``x.reshape(B, -1)``: keeps the batch, makes one feature axis."""
    x = args[0] if args else None
    return (
        isinstance(x, torch.Tensor)
        and isinstance(output, torch.Tensor)
        and x.dim() > 2
        and output.dim() == 2
        and output.shape[0] == x.shape[0]
    )
