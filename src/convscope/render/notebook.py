"""How a result object shows itself: in Jupyter, in a matplotlib window, in a file.

:class:`Displayable` is the one mixin every result class shares (a trace, an attribution,
a feature visualisation, a sanity report, an embedding). A class writes one drawing
method, :meth:`~Displayable.figure` (a matplotlib Figure) or :meth:`~Displayable.picture`
(uint8 RGB pixels), and gets from it:

* ``_repr_png_`` (and, for a class that has an HTML view, ``_repr_html_``), which Jupyter calls;
* ``show()``: the figure through pyplot (a window, or inline in a notebook);
* ``save(path)``: PNG or SVG by the suffix, or ``.html`` (the HTML view, images inline).

Nothing is drawn until one of these is called, and matplotlib is imported only then, so
``import convscope`` stays light: compute never draws.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConvscopeError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

SUFFIXES = (".png", ".svg", ".html")


class Displayable:
    """Display, ``show()`` and ``save()`` from one drawing method (see the module docstring)."""

    def figure(self) -> Figure:
        """The result drawn as a matplotlib Figure (default: :meth:`picture` at its pixel size)."""
        from matplotlib.figure import Figure

        from .figure_io import DPI

        pixels = self.picture()
        fig = Figure(figsize=(pixels.shape[1] / DPI, pixels.shape[0] / DPI), dpi=DPI)
        fig.figimage(pixels)
        return fig

    def picture(self) -> np.ndarray:
        """The result drawn as uint8 RGB pixels (H, W, 3) (default: :meth:`figure` rasterised)."""
        if type(self).figure is Displayable.figure:
            raise NotImplementedError(f"{type(self).__name__} draws neither a figure() nor a picture()")
        from .figure import figure_to_array

        return figure_to_array(self.figure())

    def _repr_png_(self) -> bytes:
        from .figure_io import figure_bytes

        return figure_bytes(self.figure(), "png")

    def html(self) -> str:
        """An HTML fragment of the result: the class's ``_repr_html_`` when it has one, else the PNG inline."""
        own = getattr(self, "_repr_html_", None)
        return own() if own is not None else self.png_tag()

    def png_tag(self, alt: str = "") -> str:
        """The figure as an ``<img>`` with the PNG inline (a data URI: the fragment needs no files)."""
        data = base64.b64encode(self._repr_png_()).decode("ascii")
        return f"<img src='data:image/png;base64,{data}' alt='{html.escape(alt or type(self).__name__)}'>"

    def show(self) -> Figure:
        """Show the figure through pyplot (a window, or inline in a notebook) and return it."""
        import matplotlib.pyplot as plt

        fig = self.figure()
        try:
            shown = plt.figure(fig)  # matplotlib >= 3.10 adopts a Figure made without pyplot
        except ValueError:  # older ones manage only their own: show the same pixels in one of those
            from .figure import figure_to_array

            shown = plt.figure(figsize=fig.get_size_inches(), dpi=fig.dpi)
            shown.figimage(figure_to_array(fig))
        plt.show()
        return shown

    def save(self, path: str | Path) -> Path:
        """Write the result to ``path``: ``.png`` or ``.svg`` (the figure), ``.html`` (:meth:`html`)."""
        from ..io_utils import write_text_atomic
        from .figure_io import save_figure

        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".html":
            title = html.escape(type(self).__name__)
            write_text_atomic(
                path,
                f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
                f"</head><body>{self.html()}</body></html>\n",
            )
            return path
        if suffix not in SUFFIXES:
            raise ConvscopeError(f"{type(self).__name__}.save writes {', '.join(SUFFIXES)} files, not {path.name!r}")
        return save_figure(self.figure(), path)
