"""A digits model trained for a few seconds (once per session) and its test split."""

from __future__ import annotations

import pytest

from convscope.data import load_splits
from convscope.models import load_model

from digits_run import train_digits_run


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """(checkpoint path, model loaded back from it, conformed test split)."""
    path, _ = train_digits_run(tmp_path_factory.mktemp("run"))
    model = load_model(path)
    test = load_splits("digits")["test"].conform(model.preprocessing)
    return path, model, test


@pytest.fixture(scope="session")
def digits_pass(digits_run):
    from convscope.analysis import run_pass

    _, model, test = digits_run
    return run_pass(model, test, progress=False)
