"""Command-line choices mapped onto a method's constructor: the constructors hold the only
defaults, so the Python API, the CLI and the explorer compute the same picture unless the
user asks for something else (``Method.defaults()`` lists them for help texts and pages)."""

from __future__ import annotations

from typing import Any

# CLI option -> (method, constructor keyword)
_FLAGS = {
    "steps": ("integratedgradients", "steps"),
    "samples": ("smoothgrad", "samples"),
    "seed": ("smoothgrad", "seed"),
    "window": ("occlusion", "window"),
    "top_n": ("scorecam", "top_n"),
}


def given_options(name: str, **given: Any) -> dict[str, Any]:
    """The constructor options of method ``name`` that the user set (``None``: not set).

    Occlusion's stride follows a given window (half of it), as its constructor's default does.
    """
    options = {
        key: value
        for flag, value in given.items()
        if value is not None
        for method, key in [_FLAGS[flag]]
        if method == name
    }
    if name == "occlusion" and "window" in options:
        options["stride"] = max(1, options["window"] // 2)
    return options
