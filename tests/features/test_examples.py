"""Top-activating examples: brute force in plain PyTorch, shards merged exactly, pictures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convscope.errors import ConvscopeError
from convscope.features import TopExamples, example_images, merge, receptive_field, top_examples

LAYER = "relu_2_1"


@pytest.fixture(scope="module")
def data(mnist_val):
    return mnist_val.subset(torch.arange(300))


def test_single_pass_equals_brute_force(default_model, data, truncated):
    res = top_examples(default_model, data, LAYER, k=5, batch_size=60)
    with torch.no_grad():  # the same batches of 60, so the numbers are bit-identical by construction
        net = truncated(default_model.net, LAYER)
        act = torch.cat([net(chunk.float() / 255.0) for chunk in data.images.split(60)])
    flat = act.flatten(2)
    score = flat.max(2).values  # (N, C)
    assert res.seen == 300 and res.values.shape == (act.shape[1], 5) and res.maps.shape[2:] == act.shape[2:]
    ids = data.indices.numpy()
    for c in range(act.shape[1]):
        # best first, ties to the lower dataset index: a lexsort on (index, -score)
        order = np.lexsort((ids, -score[:, c].numpy()))[:5]
        assert np.array_equal(res.indices[c], ids[order])
        np.testing.assert_array_equal(res.values[c], score[order, c].numpy())
        np.testing.assert_array_equal(res.maps[c], act[order, c].numpy())
        for j, n in enumerate(order):
            y, x = res.positions[c, j]
            assert act[n, c, y, x] == score[n, c]


def test_shards_merge_to_the_single_pass_exactly(default_model, data, tmp_path):
    """Shards of 100 in batches of 50 see the batches the whole pass sees: bit-identical by construction."""
    whole = top_examples(default_model, data, LAYER, k=7, batch_size=50)
    parts = [top_examples(default_model, data.shard(i, 3), LAYER, k=7, batch_size=50) for i in range(3)]
    files = [p.save(tmp_path / f"p{i}.npz") for i, p in enumerate(parts)]
    merged = merge([TopExamples.load(f) for f in reversed(files)])
    assert merged.seen == whole.seen == 300
    for key in ("values", "indices", "positions", "maps", "channels"):
        assert np.array_equal(getattr(merged, key), getattr(whole, key)), key
    with pytest.raises(ConvscopeError, match="cannot merge"):
        merge([whole, top_examples(default_model, data.shard(0, 3), LAYER, k=3)])


def test_other_batchings_agree_to_float32_rounding(default_model, data):
    """Batches of 32 against batches of 50: the same top values to rounding (the CPU may pick
    another convolution algorithm per batch size, so not bit for bit)."""
    a = top_examples(default_model, data, LAYER, k=7, batch_size=50)
    b = merge([top_examples(default_model, data.shard(i, 3), LAYER, k=7, batch_size=32) for i in range(3)])
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-6)
    gap = np.diff(a.values, axis=1)  # where neighbours are clearly apart, the same images rank the same
    clear = np.concatenate([np.abs(gap) > 1e-4, np.ones((len(gap), 1), bool)], axis=1) & np.concatenate(
        [np.ones((len(gap), 1), bool), np.abs(gap) > 1e-4], axis=1
    )
    assert np.array_equal(a.indices[clear], b.indices[clear])


def test_k_larger_than_the_data_leaves_empty_slots(default_model, data):
    res = top_examples(default_model, data.subset(torch.arange(3)), LAYER, k=5, channels=[1, 4])
    assert list(res.channels) == [1, 4]
    assert (res.indices[:, 3:] == -1).all() and np.isneginf(res.values[:, 3:]).all()
    pics = example_images(res, data, default_model)
    assert (pics[:, 3:] == 128).all()


def test_pictures_and_receptive_field_crops(default_model, data):
    res = top_examples(default_model, data, LAYER, k=3, channels=[0, 2])
    pics = example_images(res, data, default_model)
    where = {int(g): i for i, g in enumerate(data.indices)}
    assert pics.shape == (2, 3, 28, 28, 1)
    assert np.array_equal(pics[1, 2], data.images[where[int(res.indices[1, 2])]].permute(1, 2, 0).numpy())
    rf = receptive_field(default_model, LAYER)
    crops = example_images(res, data, default_model, rf=rf)
    assert crops.shape == (2, 3, *rf.size, 1)
    y, x = res.positions[0, 0]
    t, b, left, r = rf.box(int(y), int(x), clip=False)
    img = data.images[where[int(res.indices[0, 0])], 0].numpy()
    expected = np.full(rf.size, 128, np.uint8)
    ys, xs = slice(max(t, 0), min(b, 28)), slice(max(left, 0), min(r, 28))
    expected[ys.start - t : ys.stop - t, xs.start - left : xs.stop - left] = img[ys, xs]
    assert np.array_equal(crops[0, 0, ..., 0], expected)


def test_progress_cancel_and_errors(default_model, data):
    seen = []
    top_examples(default_model, data, LAYER, k=2, batch_size=100, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 300), (100, 300), (200, 300), (300, 300)]
    from convscope.features import Cancelled

    with pytest.raises(Cancelled):
        top_examples(default_model, data, LAYER, k=2, batch_size=100, cancel=lambda: True)
    assert all(not m._forward_hooks for m in default_model.net.modules())
    with pytest.raises(ConvscopeError, match="out of range"):
        top_examples(default_model, data, LAYER, channels=[50])
    with pytest.raises(ConvscopeError, match="not a top-examples file"):
        TopExamples.load(__file__)


def test_progress_true_false_or_a_callable(default_model, data, capsys):
    """The README's promise for long calls: ``progress=False`` turns the bar off (it was
    ``'bool' object is not callable``), ``True`` draws one, a callable gets (done, total)."""
    from convscope.explain.audit import audit

    silent = top_examples(default_model, data, LAYER, k=3, progress=False)
    assert capsys.readouterr().err == ""
    seen = []
    called = top_examples(default_model, data, LAYER, k=3, batch_size=100, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(0, 300), (100, 300), (200, 300), (300, 300)]
    shown = top_examples(default_model, data, LAYER, k=3, progress=True)
    for res in (called, shown):
        np.testing.assert_array_equal(res.values, silent.values)
    few = data.subset(torch.arange(8))
    assert audit(default_model, few, "saliency", steps=4, progress=False).per_class()


def test_printed_in_one_line(default_model, data):
    """``print(cs.top_examples(...))`` in a notebook or a REPL says what was found in one line; it
    dumped every array (thousands of lines) before."""
    res = top_examples(default_model, data, LAYER, k=3)
    out = []
    module = dict(default_model.net.named_modules())[LAYER]
    handle = module.register_forward_hook(lambda m, i, o: out.append(o))
    with torch.no_grad():
        default_model.net(torch.zeros(1, 1, 28, 28))
    handle.remove()
    channels = out[0].shape[1]  # plain PyTorch: the layer's channel count
    dead = int((res.minimum == res.maximum).sum())
    h, w = res.maps.shape[2:]
    text = repr(res)
    assert "\n" not in text and len(text) < 120
    assert text.startswith(f"TopExamples({LAYER!r}, {channels} channels")
    assert f"top 3 of {len(data)} images, maps {h}x{w}" in text
    assert (f"{dead} constant" in text) == (dead > 0)
