"""The one place convscope reaches into a model: naming a layer, hooking it, setting its mode.

1. A layer is a :class:`LayerRef`: a name and which of its calls in one forward is meant, written
   ``name`` (the first call) or ``name#k`` (the k-th), exactly as trace records are named. A name is
   looked up among the net's qualified module names first, then among its trace records that no
   module produces (the torch.fx node names the summary shows: ``add_1``, ``cat``, or ``conv2d_1`` of
   a net that calls ``F.conv2d`` with its own ``nn.Parameter``); the same meaning everywhere.
2. Hooks (:func:`observe`, :func:`capture`) act only on forwards run by the thread that opened them and
   are removed on exit; :func:`capture` keeps clones, so a later in-place op cannot change what it saw.
   A record that is an fx node is captured by running the net's traced graph with an identity module
   after that node (see :class:`GraphLayers`): run the forward through ``box.run(x)`` / :func:`run_to`.
3. :func:`model_state` sets train/eval (and optionally freezes parameters) for a block, reference-counted
   per net; when its last user leaves, every module's ``training`` and parameter's ``requires_grad`` is
   put back exactly. :func:`model_fingerprint` is the one content hash of a net. Imports: torch, stdlib,
   errors; the fx side of layer names is provided by :mod:`convscope.trace.taps` (see :func:`use_graph_layers`).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import json
import re
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch
from torch import nn

from .errors import ConvscopeError, NotFound

# -- naming a layer ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerRef:
    """A module by qualified name and the call of it that is meant (0-based); ``shape`` is informative.

    A module can run several times in one forward (ResNet's shared ``relu``, EfficientNet's
    ``_swish``); each call is its own layer, named like the trace's records: ``relu`` is the
    first call, ``relu#2`` the second.
    """

    name: str
    call: int = 0
    shape: tuple[int, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        return self.name if self.call == 0 else f"{self.name}#{self.call + 1}"


_CALL = re.compile(r"^(.*)#([1-9][0-9]*)$")


def get_module(net: nn.Module, name: str) -> nn.Module:
    """The sub-module with this qualified name; :class:`NotFound` naming the closest ones."""
    modules = dict(net.named_modules())
    if name and name in modules:
        return modules[name]
    raise _no_layer(name, [n for n in modules if n])


def _no_layer(name: str, names: list[str]) -> NotFound:
    """The error for an unknown layer: the closest names, else the layers there are."""
    close = difflib.get_close_matches(name, names, n=5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; the model's layers are: {layer_list(names)}"
    return NotFound(f"the model has no layer named {name!r}{hint}")


def layer_list(names: list[str], limit: int = 30) -> str:
    """The first ``limit`` layer names for an unknown-layer error, so the user can pick one."""
    return ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")


def module_name(net: nn.Module, module: nn.Module) -> str:
    """The qualified name of ``module`` inside ``net``."""
    for name, m in net.named_modules():
        if m is module and name:
            return name
    raise NotFound(f"the given {type(module).__name__} module is not part of the model")


def resolve_layer(net: nn.Module, layer: str | nn.Module | LayerRef) -> LayerRef:
    """What a user gave (``'layer4.1.relu#2'``, a module, a :class:`LayerRef`) as a checked LayerRef.

    A module object means its first call. Whether the call happens is only known after a
    forward (:func:`capture` and :func:`run_to` say so clearly).
    """
    if isinstance(layer, LayerRef):
        get_module(net, layer.name)
        return layer
    if isinstance(layer, nn.Module):
        return LayerRef(module_name(net, layer))
    if not isinstance(layer, str):
        raise ConvscopeError(f"a layer is a qualified module name or a module, not {type(layer).__name__}")
    modules = dict(net.named_modules())
    match = _CALL.match(layer)
    if match and layer not in modules:
        name, call = match.group(1), int(match.group(2)) - 1
    else:
        name, call = layer, 0
    if name not in modules or not name:
        nodes = node_layers(net)
        if layer in nodes:
            return LayerRef(layer)
        if nodes:
            _not_found(net, layer, nodes)
    get_module(net, name)
    return LayerRef(name, call)


# -- layers that are fx nodes, not modules ------------------------------------------------------


class GraphLayers(Protocol):
    """What the trace package lends probe so that a trace record no module produces is a layer too."""

    def names(self, net: nn.Module) -> list[str]:
        """The net's record names that are fx nodes, not modules (empty when fx cannot trace it)."""

    def records(self, net: nn.Module, x: torch.Tensor) -> list[LayerRef]:
        """Every tensor record of one traced forward on ``x`` in program order, with output shapes."""

    def tapped(self, net: nn.Module, names: Sequence[str]) -> tuple[nn.Module, dict[str, nn.Module]]:
        """A module computing ``net``'s forward (sharing its layers) with an identity module after
        each named node: (the module to run, node name -> its identity module)."""


_GRAPH: GraphLayers | None = None


def use_graph_layers(provider: GraphLayers) -> None:
    """Install the fx side of layer names (:mod:`convscope.trace.taps` does on import)."""
    global _GRAPH
    _GRAPH = provider


def _graph() -> GraphLayers:
    """The installed provider; probe stays importable without the trace package, which depends
    on probe, so the provider module is imported on first need rather than at the top."""
    if _GRAPH is None:
        importlib.import_module(f"{__package__}.trace.taps")
    return _GRAPH


def node_layers(net: nn.Module) -> list[str]:
    """Record names of ``net`` that are fx nodes rather than modules (``add_1``, ``conv2d_1``)."""
    return _graph().names(net)


def _not_found(net: nn.Module, name: str, nodes: Sequence[str]) -> None:
    raise _no_layer(name, [n for n, _ in net.named_modules() if n] + list(nodes))


# -- hooks for this thread only ------------------------------------------------------------------

Hook = Callable[[nn.Module, tuple, Any], Any]
PreHook = Callable[[nn.Module, tuple], Any]


@contextmanager
def observe(modules: Iterable[nn.Module], hook: Hook | None = None, pre_hook: PreHook | None = None) -> Iterator[None]:
    """Forward (pre-)hooks on ``modules`` for the block, acting only on this thread's forwards.

    Another thread running the same model meanwhile sees no hook at all (its outputs are
    not touched, nothing it computes is recorded). Hooks are removed in ``finally``.
    """
    me = threading.get_ident()
    handles = []

    def post(m: nn.Module, args: tuple, out: Any) -> Any:
        return hook(m, args, out) if threading.get_ident() == me else None

    def pre(m: nn.Module, args: tuple) -> Any:
        return pre_hook(m, args) if threading.get_ident() == me else None

    try:
        for m in modules:
            if pre_hook is not None:
                handles.append(m.register_forward_pre_hook(pre))
            if hook is not None:
                handles.append(m.register_forward_hook(post))
        yield
    finally:
        for h in handles:
            h.remove()


def module_calls(net: nn.Module, x: torch.Tensor) -> list[LayerRef]:
    """Every module call of one forward on ``x`` (no grad), in completion order, with output shapes."""
    names = {m: n for n, m in net.named_modules() if n}
    counts: dict[str, int] = {}
    calls: list[LayerRef] = []

    def hook(m: nn.Module, _args: tuple, out: Any) -> None:
        name = names[m]
        k = counts.get(name, 0)
        counts[name] = k + 1
        calls.append(LayerRef(name, k, tuple(out.shape) if isinstance(out, torch.Tensor) else ()))

    with observe(names, hook), torch.no_grad():
        net(x)
    return calls


def layer_calls(net: nn.Module, x: torch.Tensor) -> list[LayerRef]:
    """:func:`module_calls` and the fx-node records (:func:`node_layers`) of one forward on ``x[:1]``,
    in completion order: each node record comes right after the module call before it in the traced
    program (a block's ``add`` before the block's last ``relu`` and the block itself)."""
    calls = module_calls(net, x[:1])
    nodes = set(node_layers(net))
    if not nodes:
        return calls
    where = {str(c): i for i, c in enumerate(calls)}
    after: dict[int, list[LayerRef]] = {}
    anchor = -1
    for rec in _graph().records(net, x[:1]):
        if rec.name in nodes:
            after.setdefault(anchor, []).append(rec)
        elif str(rec) in where:
            anchor = where[str(rec)]
    merged = list(after.get(-1, []))
    for i, c in enumerate(calls):
        merged += [c, *after.get(i, [])]
    return merged


def is_spatial(ref: LayerRef) -> bool:
    """Whether the call's output is a map (B, C, h, w) with h * w > 1."""
    return len(ref.shape) == 4 and ref.shape[2] * ref.shape[3] > 1


def spatial_layers(net: nn.Module, x: torch.Tensor) -> list[LayerRef]:
    """The layers (:func:`layer_calls`) whose output is a spatial map (B, C, h, w), h * w > 1, in
    completion order (one dry run on ``x[:1]``): what a layer menu offers."""
    return [r for r in layer_calls(net, x) if is_spatial(r)]


def default_layer(net: nn.Module, refs: Sequence[LayerRef]) -> LayerRef | None:
    """The one default layer (CAM methods, the CLI, the page's Why? panel) among ``refs``, the
    layer calls of one forward in completion order (:func:`module_calls` / :func:`layer_calls`).

    The last convolution block's output, before global or adaptive pooling: from the last feature
    convolution on, the last map (B, C, h, w) no wider than that convolution's (its BatchNorm,
    ReLU, max-pool, residual block, stage, a squeeze-excitation gate), up to the last map of the
    forward or a classifier convolution (SqueezeNet's 1x1 conv to as many channels as the net has
    classes). Adaptive or global pooling is never chosen (VGG's and AlexNet's ``avgpool``, even
    where it keeps the size; a reducing ``amax``/``mean``), nor dropout or identity; channels-last
    (B, H, W, C) calls (a ConvNeXt block's LayerNorm and Linear) are wider than the map, so passed
    over. With no convolution at all: the last spatial call, modules before fx nodes.
    """
    modules = dict(net.named_modules())
    kinds = [_call_kind(modules.get(r.name), r.name) for r in refs]
    width = _output_width(refs)
    convs = [
        i
        for i, r in enumerate(refs)
        if kinds[i] == "conv" and is_spatial(r) and not _classifier_conv(modules.get(r.name), width)
    ]
    if not convs:
        spatial = [r for r in refs if is_spatial(r)]
        return ([r for r in spatial if r.name in modules] or spatial or [None])[-1]
    start = convs[-1]
    h, w = refs[start].shape[2:]
    chosen = refs[start]
    last_map = max(i for i, r in enumerate(refs) if is_spatial(r))  # the head starts after it
    for r, kind in zip(refs[start + 1 : last_map + 1], kinds[start + 1 : last_map + 1]):
        if _classifier_conv(modules.get(r.name), width):
            break
        if kind in ("other", "conv") and is_spatial(r) and r.shape[2] <= h and r.shape[3] <= w:
            chosen = r
    return chosen


_GLOBAL_POOLS = (
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_SKIP = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity)


def _call_kind(module: nn.Module | None, name: str) -> str:
    """'conv', 'global' (adaptive / reducing pooling), 'skip' (dropout, identity) or 'other' for
    one layer call; an fx node by its name (``conv2d_1``, ``adaptive_avg_pool2d``, ``amax``)."""
    if module is None:
        base = name.split("#")[0]
        return (
            "conv"
            if base.startswith(("conv", "_conv"))
            else "global"
            if re.match(r"(adaptive|amax|amin|mean)", base)
            else "other"
        )
    if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "conv"
    return "global" if isinstance(module, _GLOBAL_POOLS) else "skip" if isinstance(module, _SKIP) else "other"


def _classifier_conv(module: nn.Module | None, width: int | None) -> bool:
    """A 1x1 convolution to as many channels as the net has classes (SqueezeNet's ``classifier.1``)."""
    return (
        width is not None
        and isinstance(module, nn.modules.conv._ConvNd)
        and module.out_channels == width
        and all(k == 1 for k in module.kernel_size)
    )


def _output_width(refs: Sequence[LayerRef]) -> int | None:
    """The class count when the forward's last call is flat scores (B, K) or (B, K, 1, 1)."""
    if not refs:
        return None
    shape = refs[-1].shape
    if len(shape) == 2 or (len(shape) == 4 and shape[2] * shape[3] == 1):
        return shape[1]
    return None


class _StopForward(Exception):
    """Raised by a capture hook to end the forward once every wanted layer was seen."""


class Captured:
    """What :func:`capture` saw in the latest forward of this thread, by :class:`LayerRef`."""

    def __init__(self, refs: Sequence[LayerRef], runner: nn.Module) -> None:
        self.refs = list(refs)
        self.values: dict[LayerRef, torch.Tensor] = {}
        self.runner = runner  # the net, or its traced graph with taps when a layer is an fx node

    def run(self, x: torch.Tensor) -> Any:
        """One forward of the captured net on ``x`` (through its tapped graph for fx-node layers)."""
        return self.runner(x)

    def __getitem__(self, ref: LayerRef) -> torch.Tensor:
        return self.values[ref]

    @property
    def value(self) -> torch.Tensor | None:
        """The tensor of the (first) captured layer, or None when it was not reached."""
        return self.values.get(self.refs[0])


@contextmanager
def capture(
    net: nn.Module,
    layers: LayerRef | Sequence[LayerRef],
    *,
    side: Literal["input", "output"] = "output",
    stop: bool = False,
    detach: bool = True,
    grad_above: bool = False,
) -> Iterator[Captured]:
    """Record the layers' outputs (or first inputs) during this thread's forwards of ``net`` in the block.

    Each forward of ``net`` starts afresh (calls are counted per forward, so ``relu#2`` is the
    second call of that forward). Values are clones: ``detach=False`` keeps them in autograd's
    graph (feature visualisation differentiates through them). ``stop`` ends the forward once
    every layer was seen (call the net through :func:`run_to`). ``grad_above`` (one layer, a
    forward under ``torch.no_grad()``): at the layer, grad recording is switched on and the net
    continues from a clone of a fresh leaf, which is what is stored, so autograd builds a graph
    only above the layer and the caller takes ``torch.autograd.grad`` with respect to the leaf.
    Run the forward as ``box.run(x)`` (or :func:`run_to`): when a layer is an fx node, that is the
    net's traced graph with a tap; a module layer that fx traces through (a container such as
    ``layer4``) is not reached there, so capture such layers apart from fx-node layers.
    """
    refs = [layers] if isinstance(layers, LayerRef) else list(layers)
    modules = dict(net.named_modules())
    nodes = [r.name for r in refs if r.name not in modules or not r.name]
    runner, taps = net, {}
    if nodes:
        unknown = [n for n in nodes if n not in node_layers(net)]
        if unknown:
            get_module(net, unknown[0])  # the NotFound naming the closest layers
        if side == "input":
            raise ConvscopeError(f"layer {nodes[0]!r} is a traced operation: only its output can be captured")
        runner, taps = _graph().tapped(net, nodes)
    box = Captured(refs, runner)
    wanted: dict[nn.Module, dict[int, LayerRef]] = {}
    for ref in refs:
        wanted.setdefault(taps.get(ref.name) or modules[ref.name], {})[ref.call] = ref
    counts: dict[nn.Module, int] = {}

    def start(_m: nn.Module, _args: tuple) -> None:
        counts.clear()
        box.values.clear()

    def hook(m: nn.Module, args: tuple, out: Any) -> Any:
        k = counts.get(m, 0)
        counts[m] = k + 1
        ref = wanted[m].get(k)
        if ref is None:
            return None
        value = (args[0] if args else None) if side == "input" else out
        if isinstance(value, (tuple, list)) and value:
            value = value[0]
        if not isinstance(value, torch.Tensor):
            raise ConvscopeError(f"layer {str(ref)!r} gives {type(value).__name__}, not a tensor")
        replaced = None
        if grad_above:
            torch.set_grad_enabled(True)  # thread-local; the caller's no_grad block restores it
            box.values[ref] = value.detach().requires_grad_(True)
            replaced = box.values[ref].clone()
        else:
            box.values[ref] = value.detach().clone() if detach else value.clone()
        if stop and len(box.values) == len(refs):
            raise _StopForward
        return replaced

    with observe([runner], pre_hook=start), observe(wanted, hook):
        yield box


def run_to(net: nn.Module, x: torch.Tensor, box: Captured) -> torch.Tensor:
    """Run ``net(x)`` (``box.run``) under a ``capture(..., stop=True)``; the (first) captured value."""
    try:
        box.run(x)
    except _StopForward:
        pass
    if box.value is None:
        raise NotFound(f"layer {str(box.refs[0])!r} was not reached in the model's forward pass")
    return box.value


# -- the model's mode ---------------------------------------------------------------------------------

_LOCK = threading.Lock()
_STATE: dict[int, _Saved] = {}


@dataclass
class _Saved:
    train: bool
    frozen: bool
    modes: list[tuple[nn.Module, bool]]
    flags: list[tuple[nn.Parameter, bool]]
    users: int = 0


@contextmanager
def model_state(net: nn.Module, *, train: bool = False, freeze: bool = False) -> Iterator[nn.Module]:
    """``net`` in train (or eval) mode, its parameters frozen if asked, for the block.

    Reference-counted per net: calls overlapping in time (threads, a server's requests) share
    one saved state; the first to enter saves every module's ``training`` flag and every
    parameter's ``requires_grad``, the last to leave restores them exactly, so a submodule
    deliberately kept in eval stays in eval. Overlapping calls that want different modes
    cannot both be right: the later one is refused with a :class:`ConvscopeError`.
    """
    key = id(net)
    with _LOCK:
        saved = _STATE.get(key)
        if saved is None:
            saved = _STATE[key] = _Saved(
                train, False, [(m, m.training) for m in net.modules()], [(p, p.requires_grad) for p in net.parameters()]
            )
            net.train(train)  # through train(), so a module that overrides it has its say
        elif saved.train != train:
            mode = "train" if saved.train else "eval"
            raise ConvscopeError(
                f"the model is in use in {mode} mode by another call; "
                "run this when it is done (or on a copy of the model)"
            )
        if freeze and not saved.frozen:
            saved.frozen = True
            for p, _ in saved.flags:
                p.requires_grad_(False)
        saved.users += 1
    try:
        yield net
    finally:
        with _LOCK:
            saved.users -= 1
            if saved.users == 0:
                del _STATE[key]
                for m, mode in saved.modes:
                    m.training = mode
                for p, flag in saved.flags:
                    p.requires_grad_(flag)


# -- has the model changed? ----------------------------------------------------------------------------

_FINGERPRINTS: weakref.WeakKeyDictionary[nn.Module, tuple[Any, str]] = weakref.WeakKeyDictionary()


def model_version(net: nn.Module) -> tuple:
    """A cheap key that changes when a module, parameter or buffer is replaced or modified in place."""
    return (
        tuple(id(m) for m in net.modules()),
        tuple((id(t), t._version) for t in (*net.parameters(), *net.buffers())),
    )


def model_fingerprint(net: nn.Module, extra: dict[str, Any] | None = None) -> str:
    """SHA-256 of the net's architecture (type, repr) and state (names, dtypes, shapes, bytes) and ``extra``.

    Memoised on :func:`model_version`, so asking again for an unchanged net costs no hashing.
    """
    head = json.dumps({"type": type(net).__qualname__, "repr": repr(net), "extra": extra}, sort_keys=True, default=str)
    memo_key = (model_version(net), head)
    memo = _FINGERPRINTS.get(net)
    if memo is not None and memo[0] == memo_key:
        return memo[1]
    h = hashlib.sha256(head.encode())
    for name, t in net.state_dict().items():
        if not isinstance(t, torch.Tensor):
            continue
        h.update(f"|{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = h.hexdigest()
    _FINGERPRINTS[net] = (memo_key, digest)
    return digest
