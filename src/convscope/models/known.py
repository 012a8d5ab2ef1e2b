"""Published models recognised by their weights, so they get their class names.

A TF.js model.json carries no class names: CNN Explainer's Tiny VGG would show "6 88.0%"
instead of "espresso". A published model is recognised by the SHA-256 of its float32
weights in manifest order (for a float32 model: the SHA-256 of its weight shard bytes),
so a copy saved anywhere, or fetched from its published URL, is still known; the URL is
listed too, for the loaders that see it before any weight is read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class KnownModel:
    name: str
    weights_sha256: str
    classes: tuple[str, ...]
    urls: tuple[str, ...] = ()


KNOWN: tuple[KnownModel, ...] = (
    KnownModel(
        name="CNN Explainer Tiny VGG",
        weights_sha256="306666f2a1cc2a0a8f7b3422617daac5ecdca20c707ab44b721522be1fe3f630",
        classes=(
            "lifeboat",
            "ladybug",
            "pizza",
            "bell pepper",
            "school bus",
            "koala",
            "espresso",
            "red panda",
            "orange",
            "sport car",
        ),
        urls=("https://poloclub.github.io/cnn-explainer/assets/data/model.json",),
    ),
)


def weights_digest(arrays: Iterable[np.ndarray]) -> str:
    """SHA-256 of the arrays as little-endian float32, one after another."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype="<f4").tobytes())
    return h.hexdigest()


def known_by_weights(weights: Mapping[str, np.ndarray]) -> KnownModel | None:
    """The published model whose weights (name -> array, in manifest order) these are."""
    digest = weights_digest(weights.values())
    return next((k for k in KNOWN if k.weights_sha256 == digest), None)


def known_by_url(url: str) -> KnownModel | None:
    return next((k for k in KNOWN if url in k.urls), None)
