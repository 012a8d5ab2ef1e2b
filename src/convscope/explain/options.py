"""Sensible constructor options per method for an input size: one home for the defaults
the CLI and the explorer both use, so the two always compute the same picture."""

from __future__ import annotations

from typing import Any

IG_STEPS = 32
SMOOTHGRAD_SAMPLES = 16


def default_options(name: str, size: tuple[int, int], *, steps: int | None = None, samples: int | None = None,
                    seed: int = 0, window: int | None = None, top_n: int | None = None) -> dict[str, Any]:
    """Options for ``get_method(name)(model, layer, **options)`` on inputs of ``size`` (H, W).

    Occlusion's default window is an eighth of the shorter side (at least 2 pixels) with a
    half-window stride; ``top_n`` turns on Score-CAM's documented top-N approximation.
    """
    if name == "integratedgradients":
        return {"steps": steps or IG_STEPS}
    if name == "smoothgrad":
        return {"samples": samples or SMOOTHGRAD_SAMPLES, "seed": seed}
    if name == "occlusion":
        window = window or max(2, min(size) // 8)
        return {"window": window, "stride": max(1, window // 2)}
    if name == "scorecam" and top_n:
        return {"top_n": top_n}
    return {}
