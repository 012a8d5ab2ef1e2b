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

from ..i18n import message

TOP_FRACTION = 0.10
FAITHFUL_RATIO = 0.5
STRONG_DROP = 0.5
WEAK_DROP = TOP_FRACTION
SANITY_SPEARMAN = 0.5


def _at(fractions: Sequence[float], scores: Sequence[float], where: float) -> float:
    return float(np.interp(where, np.asarray(fractions, float), np.asarray(scores, float)))


def _area(fractions: Sequence[float], scores: Sequence[float]) -> float:
    return float(np.trapezoid(np.asarray(scores, float), np.asarray(fractions, float)))


def reading_message(
    fractions: Sequence[float],
    deletion: Sequence[float],
    insertion: Sequence[float],
) -> dict[str, Any]:
    """One sentence on a map's deletion / insertion curves (class probability against the
    fraction of pixels changed) as a catalogue message (:func:`convscope.i18n.message`, keys
    ``server.why.*``); the thresholds are the module docstring's."""
    start = float(deletion[0])
    after = _at(fractions, deletion, TOP_FRACTION)
    d_auc, i_auc = _area(fractions, deletion), _area(fractions, insertion)
    change = (start - after) / start if start > 0 else 0.0
    effect = (
        message("server.why.drops", change=f"{change:.0%}")
        if change >= 0
        else message("server.why.raises", change=f"{-change:.0%}")
    )
    if d_auc <= FAITHFUL_RATIO * i_auc and change >= STRONG_DROP:
        verdict = "server.why.points_at_evidence"
    elif change <= WEAK_DROP or d_auc >= i_auc:
        verdict = "server.why.no_evidence"
    else:
        verdict = "server.why.partly"
    return message(
        "server.why.reading",
        top=f"{TOP_FRACTION:.0%}",
        effect=effect,
        deletion_auc=f"{d_auc:.3f}",
        insertion_auc=f"{i_auc:.3f}",
        verdict=message(verdict),
    )


def describe_metrics(
    fractions: Sequence[float],
    deletion: Sequence[float],
    insertion: Sequence[float],
) -> str:
    """:func:`reading_message` in English, for the CLI and notebooks."""
    return reading_message(fractions, deletion, insertion)["text"]


def sanity_message(report: Any, method: str) -> tuple[bool, dict[str, Any]]:
    """(passed, reason as a catalogue message, keys ``server.sanity.*``) for one method of a
    :class:`~convscope.explain.sanity.SanityReport`: the batch-mean Spearman of |map| after the
    last randomisation step against :data:`SANITY_SPEARMAN`. A map that became constant has no
    rank correlation (NaN): it changed with the weights, so it passes."""
    last: Any = report.steps[-1] if report.steps else message("server.sanity.original")
    rho = float(report.spearman[method][-1].nanmean())
    if math.isnan(rho):
        return True, message("server.sanity.pass_constant", layer=last)
    key = "server.sanity.pass" if rho < SANITY_SPEARMAN else "server.sanity.fail"
    return rho < SANITY_SPEARMAN, message(key, rho=f"{rho:.2f}", threshold=f"{SANITY_SPEARMAN}", layer=last)


def sanity_verdict(report: Any, method: str) -> tuple[bool, str]:
    """(passed, reason) in English: :func:`sanity_message`'s text."""
    passed, reason = sanity_message(report, method)
    return passed, reason["text"]


__all__ = ["describe_metrics", "reading_message", "sanity_message", "sanity_verdict"]
