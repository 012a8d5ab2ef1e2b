"""The dataset-level Python entry points take a built-in dataset's name as well as an
ImageDataset: ``cs.top_examples(model, "digits", layer)`` streams the test split, as the CLI's
default ``--split`` does, and gives what the split itself gives (it was AttributeError: 'str'
object has no attribute 'conform'). Anything else is a one-line error naming cs.load_splits."""

from __future__ import annotations

import numpy as np
import pytest

import convscope as cs
from convscope.analysis.dataset_pass import run_pass
from convscope.analysis.report import build_report
from convscope.explain.audit import audit
from convscope.train.evaluate import evaluate


@pytest.fixture(scope="module")
def model():
    return cs.load_model("default")


@pytest.fixture(scope="module")
def test_split():
    return cs.load_splits("digits")["test"]


def test_top_examples_and_run_pass(model, test_split):
    by_name = cs.top_examples(model, "digits", "relu_2_2", k=3, channels=[0, 1], progress=False)
    by_split = cs.top_examples(model, test_split, "relu_2_2", k=3, channels=[0, 1], progress=False)
    assert np.array_equal(by_name.indices, by_split.indices) and np.allclose(by_name.values, by_split.values)
    a, b = run_pass(model, "digits", progress=False), run_pass(model, test_split, progress=False)
    assert len(a.preds) == len(test_split) and np.array_equal(a.preds, b.preds)


def test_evaluate_and_report(model, test_split, tmp_path):
    e = evaluate(model, "digits")
    assert e.split == "test" and np.array_equal(e.confusion, evaluate(model, test_split).confusion)
    assert evaluate(model, "digits", split="val").confusion.sum() == len(cs.load_splits("digits")["val"])
    _, _, _, facts = build_report(model, "digits", embedding=None, samples=2, cache_dir=tmp_path, progress=False)
    assert facts["count"] == len(test_split)


def test_audit(model, test_split):
    got, want = audit(model, "digits", steps=2, progress=False), audit(model, test_split, steps=2, progress=False)
    assert len(got.targets) == len(test_split)
    assert np.array_equal(got.indices, want.indices) and np.array_equal(got.targets, want.targets)


def test_anything_else_is_one_line(model):
    with pytest.raises(cs.ConvscopeError) as info:
        run_pass(model, [1, 2, 3], progress=False)
    said = str(info.value)
    assert "\n" not in said and 'cs.load_splits(name)["test"]' in said and "list" in said
    with pytest.raises(cs.ConvscopeError, match="unknown dataset 'digts'"):
        cs.top_examples(model, "digts", "relu_2_2")
