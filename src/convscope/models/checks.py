"""Does this image suit this model? Warnings shown next to the prediction.

A model answers for any input, so a mismatch reads as a confident mistake: a dark "7"
drawn on white goes into the MNIST net (trained on white digits on black) and comes out
"8" at 77%; a colour photo goes into a 1-channel digit net. :func:`input_warnings` tells
these cases from the pixels and the model's own preprocessing, each with the fix the page
offers (``invert``, or ``photo-model``: pick a model made for photos). Pure: no drawing,
no state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..i18n import message
from .model import Model
from .preprocessing import ImageLike, open_image

DIGIT_SIDE = 32  # 1-channel inputs this small are MNIST-like data: light strokes on black
LIGHT = 0.5  # mean brightness (0..1, after the model's own preprocessing) above which an image is dark-on-light
COLOURFUL = 0.08  # mean (max - min) over R, G, B (0..1) above which an RGB image is a colour image


def expects_light_on_dark(model: Model) -> bool:
    """A 1-channel net with MNIST-sized input: trained on light strokes on a dark background."""
    return model.preprocessing.channels == 1 and max(model.preprocessing.size) <= DIGIT_SIDE


def colourfulness(pixels: np.ndarray) -> float:
    """Mean spread between the R, G and B of each pixel (0: grey, 1: pure colours)."""
    if pixels.ndim != 3 or pixels.shape[-1] < 3:
        return 0.0
    rgb = pixels[..., :3].astype(np.float32) / 255.0
    return float((rgb.max(-1) - rgb.min(-1)).mean())


def input_warnings(model: Model, image: ImageLike) -> list[dict[str, Any]]:
    """What is wrong with feeding ``image`` to ``model``: ``[{"kind", "message", "message_i18n", "fix"}, ...]``
    (``message_i18n``: the same sentence as a catalogue message, keys ``server.warning.*``).

    * ``colour``: a colour image into a 1-channel net (it sees only the grey levels);
      fix ``photo-model``;
    * ``polarity``: a mostly light image into a net that expects light strokes on black
      (the mean of what the net sees, back in 0..1, is above :data:`LIGHT`); fix ``invert``.
    """
    pil = open_image(image)
    out: list[dict[str, Any]] = []
    digits = model.classes is not None and [str(c) for c in model.classes] == [str(i) for i in range(10)]
    if model.preprocessing.channels == 1 and pil.mode in ("RGB", "RGBA", "P"):
        if colourfulness(np.asarray(pil.convert("RGB"))) > COLOURFUL:
            said = message("server.warning.colour." + ("digits" if digits else "grey"), model=model.name)
            out.append(_warning("colour", said, "photo-model"))
    if expects_light_on_dark(model):
        seen = model.to_display(model.preprocess(pil)).astype(np.float32) / 255.0
        if float(seen.mean()) > LIGHT:
            key = "server.warning.polarity." + ("digits" if digits else "strokes")
            said = message(key, model=model.name, brightness=f"{float(seen.mean()):.2f}")
            out.append(_warning("polarity", said, "invert"))
    return out


def _warning(kind: str, said: dict[str, Any], fix: str) -> dict[str, Any]:
    """One warning: ``message`` in English (the CLI, API users), ``message_i18n`` for the page."""
    return {"kind": kind, "message": said["text"], "message_i18n": said, "fix": fix}
