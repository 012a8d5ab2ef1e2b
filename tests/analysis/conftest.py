"""A digits model trained for a few seconds (once per session) and its test split."""

from __future__ import annotations

import pytest
import torch

from convscope.data import load_splits
from convscope.models import load_model

from digits_run import train_digits_run


@pytest.fixture(autouse=True)
def one_thread():
    """These nets are tiny: one thread is faster, and on a busy 2-core machine far faster
    than two threads contending with other processes."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """(checkpoint path, model loaded back from it, conformed test split)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path, _ = train_digits_run(tmp_path_factory.mktemp("run"))
    finally:
        torch.set_num_threads(old)
    model = load_model(path)
    test = load_splits("digits")["test"].conform(model.preprocessing)
    return path, model, test


@pytest.fixture(scope="session")
def digits_pass(digits_run):
    from convscope.analysis import run_pass

    _, model, test = digits_run
    return run_pass(model, test, progress=False)
