"""The dataset pass against plain PyTorch, shard merging, hooks, progress and the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convscope.analysis import DatasetPass, cached_pass, merge, model_fingerprint, pass_key, run_pass
from convscope.errors import ConvscopeError, NotFound
from convscope.models import Model

ARRAYS = ("labels", "preds", "probs", "loss", "features", "indices")


def prefix(model: Model, stop: int) -> torch.nn.Sequential:
    """The first layers of the zoo net as a plain Sequential (slicing a subclass would call its __init__)."""
    return torch.nn.Sequential(*list(model.net.children())[:stop])


def plain_forward(model: Model, ds):
    """The independent computation: one batch through the net, the head's input by slicing the Sequential."""
    x, y = next(ds.batches(model.preprocessing, batch_size=len(ds)))
    with torch.no_grad():
        features = prefix(model, -1)(x)  # every layer but the final nn.Linear 'output'
        logits = model.net(x)
    return y, logits, features


def test_pass_matches_plain_pytorch(digits_run, digits_pass):
    _, model, test = digits_run
    y, logits, features = plain_forward(model, test)
    r = digits_pass
    assert len(r) == len(test) == 180 and r.layer == "output" and r.feature_side == "input"
    np.testing.assert_array_equal(r.labels, y.numpy())
    np.testing.assert_array_equal(r.preds, logits.argmax(1).numpy())
    np.testing.assert_allclose(r.probs, logits.softmax(1).numpy(), atol=1e-6)
    np.testing.assert_allclose(r.loss, F.cross_entropy(logits, y, reduction="none").numpy(), atol=1e-5)
    np.testing.assert_allclose(r.features, features.numpy(), atol=1e-5)
    np.testing.assert_array_equal(r.indices, test.indices.numpy())
    assert r.classes == [str(i) for i in range(10)]
    np.testing.assert_allclose(r.confidence, r.probs.max(1))


def test_shards_merge_to_the_single_pass_exactly(digits_run):
    """The merge is exact: shards of 45 run in batches of 15 see the very batches the whole
    pass in batches of 15 sees, so every number is bit-identical by construction."""
    _, model, test = digits_run
    whole = run_pass(model, test, batch_size=15, progress=False)
    parts = [run_pass(model, test, shard=(i, 4), batch_size=15, progress=False) for i in (3, 1, 0, 2)]
    assert sum(len(p) for p in parts) == len(test)
    assert {p.shard for p in parts} == {(i, 4) for i in range(4)}
    merged = merge(parts)
    for name in ARRAYS:
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name
    assert merged.shard is None


def test_other_batchings_agree_to_float32_rounding(digits_run, digits_pass):
    """Batches of 17 against one batch of 180: a CPU convolution may pick another algorithm
    for another batch size, so the forward agrees to rounding, not bit for bit."""
    _, model, test = digits_run
    merged = merge([run_pass(model, test, shard=(i, 4), batch_size=17, progress=False) for i in range(4)])
    for name in ("labels", "indices"):
        assert np.array_equal(getattr(merged, name), getattr(digits_pass, name)), name
    for name in ("probs", "loss", "features"):
        np.testing.assert_allclose(getattr(merged, name), getattr(digits_pass, name), rtol=1e-4, atol=1e-6)
    top2 = np.sort(digits_pass.probs, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-4  # a near-tie may flip under rounding
    assert np.array_equal(merged.preds[clear], digits_pass.preds[clear])


def test_merge_refuses_incomplete_or_mixed_shards(digits_run):
    _, model, test = digits_run
    small = test.subset(list(range(30)))
    a, b = (run_pass(model, small, shard=(i, 3), progress=False) for i in (0, 1))
    with pytest.raises(ConvscopeError, match="exactly once"):
        merge([a, b])
    with pytest.raises(ConvscopeError, match="exactly once"):
        merge([a, a, b])
    with pytest.raises(ConvscopeError, match="sharded and unsharded"):
        merge([a, run_pass(model, small, progress=False)])
    with pytest.raises(ConvscopeError):
        merge([])


def test_empty_shard_merges(digits_run):
    _, model, test = digits_run
    tiny = test.subset([0, 1, 2])
    parts = [run_pass(model, tiny, shard=(i, 5), progress=False) for i in range(5)]
    assert [len(p) for p in parts].count(0) == 2
    whole = run_pass(model, tiny, batch_size=1, progress=False)  # the shards ran batches of one, too
    merged = merge(parts)
    for name in ARRAYS:
        assert np.array_equal(getattr(merged, name), getattr(whole, name)), name


def test_named_layer_features(digits_run):
    _, model, test = digits_run
    small = test.subset(list(range(20)))
    r = run_pass(model, small, layer="conv_1_2", progress=False)
    x, _ = next(small.batches(model.preprocessing, batch_size=20))
    with torch.no_grad():
        expected = prefix(model, 3)(x).flatten(1)  # conv_1_1, relu_1_1, conv_1_2
    assert r.feature_side == "output" and r.layer == "conv_1_2"
    np.testing.assert_allclose(r.features, expected.numpy(), atol=1e-5)
    with pytest.raises(NotFound, match="conv_1_2"):
        run_pass(model, small, layer="nope", progress=False)


def test_unconformed_dataset_is_conformed(digits_run, digits_pass):
    """The raw 8x8 split gives the same result as the one conformed beforehand."""
    from convscope.data import load_splits

    _, model, _ = digits_run
    raw = load_splits("digits")["test"]
    assert raw.size == (8, 8)
    r = run_pass(model, raw, progress=False)
    assert np.array_equal(r.probs, digits_pass.probs)


def test_progress_callback_hooks_removed_and_mode_restored(digits_run):
    _, model, test = digits_run
    calls = []
    model.net.train()
    run_pass(model, test, batch_size=50, progress=False, callback=lambda d, t: calls.append((d, t)))
    assert calls == [(50, 180), (100, 180), (150, 180), (180, 180)]
    assert model.net.training, "train mode must be restored"
    model.net.eval()
    assert all(not m._forward_hooks for m in model.net.modules())


def test_cancel_from_callback_leaves_no_hooks(digits_run):
    _, model, test = digits_run

    def cancel(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pass(model, test, batch_size=50, progress=False, callback=cancel)
    assert all(not m._forward_hooks for m in model.net.modules())
    assert not model.net.training


def test_wrong_dataset_for_model_is_a_clear_error(digits_run):
    _, model, test = digits_run
    bad = test.subset(list(range(10)))
    bad.labels = bad.labels + 5  # labels up to 14, the model has 10 outputs
    with pytest.raises(ConvscopeError, match="only 10 outputs"):
        run_pass(model, bad, progress=False)


def test_save_load_roundtrip(tmp_path, digits_pass):
    path = digits_pass.save(tmp_path / "p.npz")
    back = DatasetPass.load(path)
    for name in ARRAYS:
        assert np.array_equal(getattr(back, name), getattr(digits_pass, name))
    assert (back.classes, back.layer, back.dataset) == (digits_pass.classes, digits_pass.layer, "digits")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ConvscopeError):
        DatasetPass.load(tmp_path / "bad.npz")


def test_cache_hits_and_keys(tmp_path, digits_run, digits_pass):
    _, model, test = digits_run
    first = cached_pass(model, test, split="test", seed=0, cache_dir=tmp_path, progress=False)
    second = cached_pass(model, test, split="test", seed=0, cache_dir=tmp_path, progress=False)
    assert first.meta["cached"] is False and second.meta["cached"] is True
    assert first.meta["key"] == second.meta["key"]
    assert len(list((tmp_path / "dataset-pass").glob("*.npz"))) == 1
    for name in ARRAYS:
        assert np.array_equal(getattr(second, name), getattr(digits_pass, name))
    # the key follows the weights' bytes, the split, the seed and the images
    changed = Model(
        type(model.net)(in_channels=1, num_classes=10, input_size=(16, 16)),
        classes=model.classes,
        preprocessing=model.preprocessing,
    )
    changed.net.load_state_dict(model.net.state_dict())
    assert model_fingerprint(changed) == model_fingerprint(model)
    with torch.no_grad():
        changed.net.output.bias[0] += 1e-3
    assert model_fingerprint(changed) != model_fingerprint(model)
    keys = {
        pass_key(model, test, "test", 0),
        pass_key(changed, test, "test", 0),
        pass_key(model, test, "val", 0),
        pass_key(model, test, "test", 1),
        pass_key(model, test.subset(list(range(10))), "test", 0),
    }
    assert len(keys) == 5


def test_cache_key_follows_the_output_selector(digits_run):
    """The same weights read at another output are another result: the pass cache must not mix them."""
    _, model, test = digits_run
    other = Model(model.net, classes=model.classes, preprocessing=model.preprocessing, output=0)
    assert pass_key(model, test, split="test") != pass_key(other, test, split="test")
