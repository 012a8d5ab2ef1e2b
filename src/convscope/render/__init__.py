"""Pure functions from arrays to pictures: colour scales, grids, overlays, figures.
Nothing here runs a model; callers pass NumPy arrays."""

from .colormap import colorize, value_range
from .grid import as_rgb, png_bytes, save_png, tile

__all__ = ["as_rgb", "colorize", "png_bytes", "save_png", "tile", "value_range"]
