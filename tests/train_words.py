"""The words of a short ``convscope train`` on the built-in digits, for the tests that train first.

Spelled once so that every such test trains the same way (no progress bars, on the CPU
unless told otherwise); ``extra`` adds the test's own options.
"""

from __future__ import annotations

from pathlib import Path


def train_words(out: str | Path, epochs: int, *extra: str, model: str | Path = "tiny-vgg", device: str | None = "cpu"):
    """``train --model MODEL --data digits --epochs N --out OUT --no-progress [--device D] EXTRA...``."""
    words = ["train", "--model", str(model), "--data", "digits", "--epochs", str(epochs), "--out", str(out)]
    return [*words, "--no-progress", *(["--device", device] if device else []), *extra]
