"""Figures for the trace views: a blank figure, a colour bar, and PNG/SVG output.

Figures are built on :class:`matplotlib.figure.Figure` directly (no global pyplot
state, no GUI backend, safe in servers and threads). Their pixel size is exactly
``figsize * dpi`` because they are never saved with ``bbox_inches='tight'``; SVG keeps
text as text and carries no date, so the same figure gives the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConvscopeError
from ..io_utils import write_bytes_atomic

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

FORMATS = ("png", "svg")
DPI = 100


def new_figure(width: float, height: float) -> Figure:
    """A blank figure of ``width`` x ``height`` inches (``DPI`` pixels per inch)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def add_colorbar(fig: Figure, ax, scale: str, vrange: tuple[float, float] | None) -> None:
    """A colour bar for ``scale`` over ``vrange``; None draws a relative bar (each tile its own range).

    The diverging scale is drawn symmetric around 0, as :func:`~convscope.render.colorize` maps it.
    """
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from .colormap import SCALES

    cmap = colormaps[SCALES.get(scale, scale)]
    if vrange is None:
        bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap), ax=ax, shrink=0.6, pad=0.01)
        ticks = ([0.0, 0.5, 1.0], ["-max", "0", "+max"]) if scale == "diverging" else ([0.0, 1.0], ["min", "max"])
        bar.set_ticks(ticks[0], labels=ticks[1])
        bar.set_label("each tile's own range", fontsize=8)
        return
    lo, hi = float(vrange[0]), float(vrange[1])
    if scale == "diverging":
        m = max(abs(lo), abs(hi)) or 1.0
        lo, hi = -m, m
    elif hi <= lo:
        hi = lo + 1.0
    fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap), ax=ax, shrink=0.6, pad=0.01)


def figure_bytes(fig: Figure, fmt: str = "png") -> bytes:
    """Encode a figure as PNG or SVG bytes at its own size."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ConvscopeError(f"figures are written as {' or '.join(FORMATS)}, not {fmt!r}")
    from matplotlib import rc_context

    buf = io.BytesIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "convscope"}):
        fig.savefig(buf, format=fmt, dpi=fig.dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buf.getvalue()


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write a figure atomically to ``path``; the suffix (``.png`` / ``.svg``) picks the format."""
    path = Path(path)
    write_bytes_atomic(path, figure_bytes(fig, path.suffix or "png"))
    return path
