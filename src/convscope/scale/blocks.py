"""How a dataset is cut into blocks for workers, so that merging stays exact.

Blocks are whole multiples of the batch size: each worker then sees exactly the batches
the local engine would have run (the same images in the same batch), so every number it
computes is bit-identical to the single-process pass, not just equal to float32 rounding.
"""

from __future__ import annotations

import math

from ..errors import ConvscopeError


def plan_blocks(n: int, batch_size: int, workers: int, per_worker: int = 4) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges covering ``range(n)``, each a multiple of ``batch_size`` long
    (but the last), about ``per_worker`` blocks per worker so a slow or restarted worker does not hold up the rest."""
    if batch_size < 1 or workers < 1:
        raise ConvscopeError(f"batch_size and workers must be at least 1, not {batch_size} and {workers}")
    if n <= 0:
        return [(0, 0)]
    batches = math.ceil(n / batch_size)
    per_block = max(1, math.ceil(batches / (workers * max(1, per_worker)))) * batch_size
    return [(start, min(n, start + per_block)) for start in range(0, n, per_block)]
