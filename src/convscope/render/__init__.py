"""Pure functions from arrays to pictures: colour scales, grids, overlays, figures.
Nothing here runs a model; callers pass NumPy arrays."""

from .activations import activation_figure, activation_grid, channel_ranges, scale_for_kind, vector_figure
from .colormap import colorize, value_range
from .figure_io import save_figure
from .grid import as_rgb, png_bytes, save_png, tile
from .kernels import kernel_figure, kernel_grid, kernel_images
from .panel import prediction_panel, top_k

__all__ = ["as_rgb", "colorize", "png_bytes", "save_png", "tile", "value_range"]
__all__ += [
    "activation_figure",
    "activation_grid",
    "channel_ranges",
    "kernel_figure",
    "kernel_grid",
    "kernel_images",
    "prediction_panel",
    "save_figure",
    "scale_for_kind",
    "top_k",
    "vector_figure",
]
