"""Turning a matplotlib figure into pixels, without pyplot's global state."""

from __future__ import annotations

import numpy as np


def figure_to_array(fig) -> np.ndarray:
    """Draw a ``matplotlib.figure.Figure`` on an Agg canvas and return uint8 RGB (H, W, 3)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
