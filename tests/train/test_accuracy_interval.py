"""The accuracy's 95% interval that `convscope evaluate` prints: Wilson's score interval, checked
against SciPy's, and said with a warning for a split too small to mean much (a 12-image folder
split 10/1/1 printed "accuracy: 1.0000 (1/1)" with nothing to say how little that is)."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.train.evaluate import Evaluation, wilson_interval

stats = pytest.importorskip("scipy.stats", reason="SciPy (a scikit-learn dependency) is the independent check")


@pytest.mark.parametrize(("right", "n"), [(1, 1), (0, 1), (0, 7), (5, 9), (487, 500), (9999, 10000)])
def test_wilson_interval_equals_scipys(right, n):
    ci = stats.binomtest(right, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(right, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_no_images_is_the_whole_range_and_the_dict_carries_it():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    ev = Evaluation(classes=["a", "b"], confusion=np.array([[3, 1], [0, 4]]), loss=0.5)
    assert ev.to_dict()["accuracy_95"] == list(wilson_interval(7, 8))
