"""What the metrics say, in one sentence: the Why? panel's and the CLI's reading of the numbers.

Pure functions of numbers already computed (no model runs here), so the page, the CLI and a
notebook say the same thing.

Faithfulness (:func:`describe_metrics`), after Petsiuk et al. 2018 (RISE): deleting pixels
in the map's order should make the class probability collapse fast (low deletion AUC) and
inserting them should restore it fast (high insertion AUC). A map in random order deletes
and inserts alike, so the two areas are about equal at chance. The verdict:

* *points at evidence* when the deletion AUC is at most half the insertion AUC
  (:data:`FAITHFUL_RATIO`) **and** deleting the top 10% (:data:`TOP_FRACTION`) removes at
  least half the probability (:data:`STRONG_DROP`);
* *does not point at evidence* when deleting the top 10% costs at most 10% of the
  probability (:data:`WEAK_DROP`: no more than the share of pixels removed, what a map
  blind to the evidence costs) or the deletion AUC is not below the insertion AUC;
* *partly* in between.

Sanity (:func:`sanity_verdict`), after Adebayo et al. 2018 ("Sanity Checks for Saliency
Maps"): a method passes the cascading-randomisation check when its map decorrelates from
the original once the top layers are randomised: the Spearman rank correlation of |map|
at the last step below :data:`SANITY_SPEARMAN` (0.5). Maps that stay similar under random
weights (Guided Backprop in their Fig. 2) show the input's edges, not what the model learned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

TOP_FRACTION = 0.10
FAITHFUL_RATIO = 0.5
STRONG_DROP = 0.5
WEAK_DROP = TOP_FRACTION
SANITY_SPEARMAN = 0.5


def _at(fractions: Sequence[float], scores: Sequence[float], where: float) -> float:
    return float(np.interp(where, np.asarray(fractions, float), np.asarray(scores, float)))


def _area(fractions: Sequence[float], scores: Sequence[float]) -> float:
    return float(np.trapezoid(np.asarray(scores, float), np.asarray(fractions, float)))


def describe_metrics(
    fractions: Sequence[float],
    deletion: Sequence[float],
    insertion: Sequence[float],
) -> str:
    """One sentence on a map's deletion / insertion curves (class probability against the
    fraction of pixels changed); the thresholds are the module docstring's."""
    start = float(deletion[0])
    after = _at(fractions, deletion, TOP_FRACTION)
    d_auc, i_auc = _area(fractions, deletion), _area(fractions, insertion)
    change = (start - after) / start if start > 0 else 0.0
    verb = f"drops confidence by {change:.0%}" if change >= 0 else f"raises confidence by {-change:.0%}"
    head = f"deleting the highlighted {TOP_FRACTION:.0%} {verb} (deletion AUC {d_auc:.3f} vs insertion AUC {i_auc:.3f})"
    if d_auc <= FAITHFUL_RATIO * i_auc and change >= STRONG_DROP:
        return f"{head}: the map points at evidence the model uses"
    if change <= WEAK_DROP or d_auc >= i_auc:
        return f"{head}: no better than a random order, the map does not point at evidence the model uses"
    return f"{head}: the map partly points at evidence the model uses"


def sanity_verdict(report: Any, method: str) -> tuple[bool, str]:
    """(passed, reason) for one method of a :class:`~convscope.explain.sanity.SanityReport`:
    the batch-mean Spearman of |map| after the last randomisation step against
    :data:`SANITY_SPEARMAN`. A map that became constant has no rank correlation (NaN): it
    changed with the weights, so it passes."""
    last = report.steps[-1] if report.steps else "(original)"
    rho = float(report.spearman[method][-1].nanmean())
    if math.isnan(rho):
        return True, f"pass: the map became constant once randomised down to {last}, so it depends on the weights"
    if rho < SANITY_SPEARMAN:
        return True, (
            f"pass: Spearman of |map| falls to {rho:.2f} (< {SANITY_SPEARMAN}) once randomised down to {last}: "
            "the map depends on the learned weights"
        )
    return False, (
        f"fail: Spearman of |map| stays at {rho:.2f} (>= {SANITY_SPEARMAN}) once randomised down to {last}: "
        "the map shows the input more than what the model learned"
    )


__all__ = ["describe_metrics", "sanity_verdict"]
