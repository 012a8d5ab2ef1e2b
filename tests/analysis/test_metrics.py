"""Accuracy, confusion, cells, mistakes and the random sample, checked against scikit-learn and by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion

from convscope.analysis import (
    cell_rows,
    confusion_matrix,
    evaluate,
    misclassified,
    mistakes_json,
    per_class_accuracy,
    random_rows,
)
from convscope.errors import ConvscopeError


def test_confusion_matrix_matches_sklearn(digits_pass):
    r = digits_pass
    ours = confusion_matrix(r.labels, r.preds, 10)
    np.testing.assert_array_equal(ours, sk_confusion(r.labels, r.preds, labels=list(range(10))))
    assert ours.sum() == len(r) and np.trace(ours) == int(r.correct.sum())
    assert 0 < np.trace(ours) < len(r), "the tiny net should be good but not perfect, or the tests below are vacuous"


def test_confusion_matrix_with_absent_classes_and_bad_input():
    labels, preds = np.array([0, 0, 2, 2, 2]), np.array([0, 2, 2, 2, 0])
    cm = confusion_matrix(labels, preds, 4)
    np.testing.assert_array_equal(cm, sk_confusion(labels, preds, labels=[0, 1, 2, 3]))
    acc = per_class_accuracy(cm)
    assert acc[0] == 0.5 and np.isnan(acc[1]) and acc[2] == pytest.approx(2 / 3) and np.isnan(acc[3])
    with pytest.raises(ConvscopeError):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 4)
    with pytest.raises(ConvscopeError):
        confusion_matrix(np.array([0, 1]), np.array([0]), 4)


def test_evaluate_matches_sklearn(digits_pass):
    r = digits_pass
    stats = evaluate(r)
    json.dumps(stats)
    probs = r.probs.astype(np.float64) / r.probs.sum(1, keepdims=True, dtype=np.float64)  # JSON-able, for the explorer
    assert stats["accuracy"] == pytest.approx(accuracy_score(r.labels, r.preds))
    assert stats["mean_loss"] == pytest.approx(log_loss(r.labels, probs, labels=list(range(10))), rel=1e-5)
    present = [k for k in range(10) if (r.labels == k).any()]
    recall = recall_score(r.labels, r.preds, labels=present, average=None)
    np.testing.assert_allclose([stats["per_class_accuracy"][k] for k in present], recall)
    assert stats["errors"] == int((r.labels != r.preds).sum())


def test_cell_rows_are_the_images_behind_each_cell(digits_pass):
    r = digits_pass
    cm = confusion_matrix(r.labels, r.preds, 10)
    seen = []
    for i in range(10):
        for j in range(10):
            rows = cell_rows(r, i, j)
            assert len(rows) == cm[i, j]
            assert (r.labels[rows] == i).all() and (r.preds[rows] == j).all()
            seen.extend(rows.tolist())
    assert sorted(seen) == list(range(len(r)))


def test_misclassified_sorted_and_really_wrong(digits_run, digits_pass):
    _, model, test = digits_run
    r = digits_pass
    wrong = misclassified(r)
    assert len(wrong) == int((r.labels != r.preds).sum()) > 1
    conf = [m.confidence for m in wrong]
    assert conf == sorted(conf, reverse=True)
    # re-check each mistake independently: run the model on that image alone
    for m in wrong[:5]:
        x = model.preprocessing.normalize(test.images[m.row : m.row + 1])
        probs = model.net(x).softmax(1)[0].detach().numpy()
        assert int(test.labels[m.row]) == m.true != m.pred == int(probs.argmax())
        assert m.confidence == pytest.approx(float(probs.max()), abs=1e-5)
        assert m.true_prob == pytest.approx(float(probs[m.true]), abs=1e-5)
        assert m.index == int(test.indices[m.row])
    assert [m.row for m in misclassified(r, limit=3)] == [m.row for m in wrong[:3]]
    rows = mistakes_json(wrong, r)
    json.dumps(rows)
    assert rows[0]["true_name"] == r.classes[wrong[0].true]


def test_random_rows_seeded_and_distinct():
    a, b, c = random_rows(180, 24, seed=0), random_rows(180, 24, seed=0), random_rows(180, 24, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len(set(a.tolist())) == 24 and a.max() < 180
    assert len(random_rows(5, 24)) == 5
