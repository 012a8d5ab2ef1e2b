"""Forwards of copies of an input that differ from it only inside a box, reusing the
unchanged input's forward outside the box (for occlusion: every covered copy differs
from the image only inside its window).

A convolution or max-pool whose input differs from the unchanged run only inside a box
gives an output that differs only inside the box's footprint (its receptive field), so
:class:`ChangedBoxes` computes just that footprint from a crop of the input and pastes
it into the output recorded on the unchanged forward; element-wise modules (BatchNorm in
eval, activations, Identity, eval dropout) keep the box as it is, and the sum of two such
maps of one shape (a residual addition, ``a + b`` or ``a += b`` in the net's own code, seen
by a :class:`~torch.overrides.TorchFunctionMode` during the forward) differs only inside
the union of their boxes. Boxes grow layer by layer; once one covers most of a map, or a
tensor comes out of anything else (a reshape, a module of another type, any other
operation, an in-place change by code that is not a tracked module or an addition, seen
through the tensor's version counter), the rest of the forward runs as usual. The result equals the plain forward up to float rounding (a convolution on a
crop may sum in another order).

Only this thread's forwards inside :meth:`ChangedBoxes.session` are affected: the
convolutions' ``forward`` is swapped for a dispatcher that runs the module's own forward
for anyone else, and put back when the last session using the module ends.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..probe import observe

Box = tuple[int, int, int, int]  # rows [y0, y1), columns [x0, x1)

POINTWISE = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.GELU,
    nn.ELU,
    nn.Mish,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout2d,
)
FULL = 0.8  # a box covering this share of its map: compute the whole map instead

_local = threading.local()
_installed: dict[int, int] = {}
_install_lock = threading.Lock()


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _same_padding(m: nn.Conv2d) -> tuple[int, int] | None:
    """(top, left) zeros a convolution adds before its own padding: none for ``nn.Conv2d``'s own
    forward, the fixed ``static_padding`` of EfficientNet's TensorFlow-"SAME" convolutions
    (their forward is that padding, then the convolution); None for any other forward."""
    if type(m).forward is nn.Conv2d.forward:
        return 0, 0
    pad = getattr(m, "static_padding", None)
    if type(m).__name__ == "Conv2dStaticSamePadding" and isinstance(pad, nn.ZeroPad2d):
        left, _, top, _ = pad.padding
        return top, left
    if type(m).__name__ == "Conv2dStaticSamePadding" and type(pad).__name__ == "Identity":
        return 0, 0
    return None


def _geometry(m: nn.Module) -> tuple[tuple[int, int], ...] | None:
    """(kernel, stride, padding before, dilation) per axis of a convolution / max-pool we can
    crop, else None (zeros beyond the input's far side need no number: the crop adds them)."""
    if (
        isinstance(m, nn.Conv2d)
        and m.padding_mode == "zeros"
        and not isinstance(m.padding, str)
        and (extra := _same_padding(m)) is not None
    ):
        padding = tuple(p + e for p, e in zip(_pair(m.padding), extra))
        return _pair(m.kernel_size), _pair(m.stride), padding, _pair(m.dilation)
    if type(m) is nn.MaxPool2d and not m.ceil_mode and not m.return_indices:
        return (
            _pair(m.kernel_size),
            _pair(m.stride if m.stride is not None else m.kernel_size),
            _pair(m.padding),
            _pair(m.dilation),
        )
    return None


def _span(lo: int, hi: int, k: int, s: int, p: int, d: int, size_out: int) -> tuple[int, int]:
    """Output positions whose receptive field meets input positions [lo, hi)."""
    return max(0, math.ceil((lo + p - (k - 1) * d) / s)), min(size_out, (hi - 1 + p) // s + 1)


class ChangedBoxes:
    """``base(x)`` runs and records the unchanged forward; ``run(xs, rows, boxes)`` runs
    ``xs`` (copies of ``x[rows]``, row i changed only inside ``boxes[i]``) reusing it."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self.local = {m: g for m in net.modules() if (g := _geometry(m)) is not None}
        self.pointwise = [m for m in net.modules() if type(m) in POINTWISE and not m.training]
        self.recorded: dict[tuple[nn.Module, int], tuple[torch.Size, torch.Tensor]] = {}
        self._pending: dict[nn.Module, list[Box] | None] = {}
        self._tracked: dict[int, tuple[torch.Tensor, int, list[Box] | None]] = {}
        self._calls: dict[nn.Module, int] = {}
        self._rows: torch.Tensor | None = None
        self.reused = 0  # module calls computed on a crop in the last run (for tests and benchmarks)

    # -- the two forwards -----------------------------------------------------------
    def base(self, x: torch.Tensor) -> torch.Tensor:
        self.recorded.clear()
        return self._forward(x, None, None)

    def run(self, xs: torch.Tensor, rows: torch.Tensor, boxes: Sequence[Box]) -> torch.Tensor:
        self.reused = 0
        return self._forward(xs, rows, list(boxes))

    def _forward(self, x, rows, boxes):
        self._tracked.clear()
        self._calls.clear()
        self._pending.clear()
        self._rows = rows
        self._track(x, boxes)
        try:
            with _Additions(self):
                return self.net(x)
        finally:
            self._tracked.clear()

    @contextmanager
    def session(self) -> Iterator[ChangedBoxes]:
        """Swap the convolutions' forward for this thread's forwards of the block."""
        _install(self.local)
        previous = getattr(_local, "session", None)
        _local.session = self
        try:
            with observe(self.pointwise, hook=self._pointwise_out, pre_hook=self._pointwise_in):
                yield self
        finally:
            _local.session = previous
            _uninstall(self.local)

    # -- tracking -------------------------------------------------------------------
    def _track(self, t: torch.Tensor, boxes: list[Box] | None) -> None:
        self._tracked[id(t)] = (t, t._version, boxes)

    def _boxes(self, t) -> tuple[bool, list[Box] | None]:
        """(tracked, boxes) of an input tensor (boxes None on the unchanged forward)."""
        entry = self._tracked.get(id(t)) if isinstance(t, torch.Tensor) else None
        if entry is None or entry[0] is not t or entry[1] != t._version:
            return False, None
        return True, entry[2]

    def _pointwise_in(self, m, args):
        # checked before the module runs: an in-place activation bumps its input's version
        tracked, boxes = self._boxes(args[0] if args else None)
        if tracked:
            self._pending[m] = boxes
        else:
            self._pending.pop(m, None)

    def _pointwise_out(self, m, args, out):
        if m in self._pending:
            boxes = self._pending.pop(m)
            if isinstance(out, torch.Tensor) and out.shape == args[0].shape:
                self._track(out, boxes)

    def call(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The dispatcher's work for a tracked module of this session."""
        tracked, boxes = self._boxes(x)
        index = self._calls.get(m, 0)
        self._calls[m] = index + 1
        if not tracked:
            return type(m).forward(m, x)
        if boxes is None:  # the unchanged forward: record
            out = type(m).forward(m, x)
            self.recorded[(m, index)] = (x.shape, out.clone())
            self._track(out, None)
            return out
        shape, ref = self.recorded.get((m, index), (None, None))
        if ref is None or x.shape[1:] != shape[1:] or len(boxes) != x.shape[0]:
            return type(m).forward(m, x)
        out_boxes = self._out_boxes(m, boxes, x.shape[-2:], ref.shape[-2:])
        if out_boxes is None:
            return type(m).forward(m, x)
        out = self._patched(m, x, ref, out_boxes)
        self._track(out, out_boxes)
        self.reused += 1
        return out

    # -- geometry and the crop ------------------------------------------------------
    def _out_boxes(self, m, boxes: list[Box], size_in, size_out) -> list[Box] | None:
        """One box per row of the same size (so the crops stack), inside the output, or None if too big."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.local[m]
        spans = [
            (*_span(y0, y1, kh, sh, ph, dh, size_out[0]), *_span(x0, x1, kw, sw, pw, dw, size_out[1]))
            for y0, y1, x0, x1 in boxes
        ]
        h = max(max(b - a for a, b, _, _ in spans), 1)
        w = max(max(b - a for _, _, a, b in spans), 1)
        if h * w > FULL * size_out[0] * size_out[1]:
            return None
        out = []
        for a, _, c, _ in spans:
            a, c = max(0, min(a, size_out[0] - h)), max(0, min(c, size_out[1] - w))
            out.append((a, a + h, c, c + w))
        return out

    def _patched(self, m, x, ref, out_boxes: list[Box]) -> torch.Tensor:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.local[m]
        H, W = x.shape[-2:]
        fill = 0.0 if isinstance(m, nn.Conv2d) else -math.inf
        crops = []
        for i, (y0, y1, x0, x1) in enumerate(out_boxes):
            r0, r1 = y0 * sh - ph, (y1 - 1) * sh - ph + (kh - 1) * dh + 1
            c0, c1 = x0 * sw - pw, (x1 - 1) * sw - pw + (kw - 1) * dw + 1
            crop = x[i, :, max(r0, 0) : min(r1, H), max(c0, 0) : min(c1, W)]
            crops.append(F.pad(crop, (max(0, -c0), max(0, c1 - W), max(0, -r0), max(0, r1 - H)), value=fill))
        crops = torch.stack(crops)
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            crops = crops.contiguous(memory_format=torch.channels_last)
        if isinstance(m, nn.Conv2d):
            patch = F.conv2d(crops, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)
        else:
            patch = F.max_pool2d(crops, m.kernel_size, m.stride, 0, m.dilation)
        out = ref.index_select(0, self._rows)
        for i, (y0, y1, x0, x1) in enumerate(out_boxes):
            out[i, :, y0:y1, x0:x1] = patch[i]
        return out


def _union(a: list[Box] | None, b: list[Box] | None) -> list[Box] | None:
    """Per row, the smallest box holding both (None: the unchanged forward)."""
    if a is None or b is None:
        return None
    return [(min(p[0], q[0]), max(p[1], q[1]), min(p[2], q[2]), max(p[3], q[3])) for p, q in zip(a, b)]


_ADDS = {
    torch.add,
    torch.Tensor.add,
    torch.Tensor.add_,
    torch.Tensor.__add__,
    torch.Tensor.__radd__,
    torch.Tensor.__iadd__,
}


class _Additions(TorchFunctionMode):
    """During one forward of a session: the sum of two tracked maps of one shape is tracked, with
    the union of their boxes (both unchanged on the unchanged forward, or both changed only
    inside their boxes). Modes are per thread, so other threads' forwards are not seen."""

    def __init__(self, regions: ChangedBoxes) -> None:
        super().__init__()
        self.regions = regions

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in _ADDS or len(args) != 2 or kwargs:
            return func(*args, **kwargs)
        a, b = args
        seen_a, boxes_a = self.regions._boxes(a)  # read before an in-place addition bumps a's version
        seen_b, boxes_b = self.regions._boxes(b)
        out = func(*args)
        if seen_a and seen_b and isinstance(out, torch.Tensor) and out.shape == a.shape == b.shape:
            both_unchanged = boxes_a is None and boxes_b is None
            if both_unchanged or (boxes_a is not None and boxes_b is not None):
                self.regions._track(out, None if both_unchanged else _union(boxes_a, boxes_b))
        return out


def _dispatch(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    session = getattr(_local, "session", None)
    if session is None or m not in session.local:
        return type(m).forward(m, x)
    return session.call(m, x)


def _install(modules) -> None:
    with _install_lock:
        for m in modules:
            n = _installed.get(id(m), 0)
            if n == 0 and "forward" not in vars(m):
                m.forward = _dispatch.__get__(m)
            _installed[id(m)] = n + 1


def _uninstall(modules) -> None:
    with _install_lock:
        for m in modules:
            n = _installed.get(id(m), 0) - 1
            if n <= 0:
                _installed.pop(id(m), None)
                if getattr(vars(m).get("forward"), "__func__", None) is _dispatch:
                    del m.forward
            else:
                _installed[id(m)] = n
