"""Embeddings: shapes, determinism for a seed, PCA against an SVD, t-SNE neighbourhoods, cache."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.manifold import trustworthiness

from convscope.analysis import Embedding, cached_embedding, cached_pass, embed, has_umap
from convscope.errors import ConvscopeError


def test_pca_matches_svd(digits_pass):
    x = digits_pass.features.astype(np.float64)
    emb = embed(x, method="pca", seed=0)
    assert emb.coords.shape == (len(x), 2) and emb.coords.dtype == np.float32
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    for k in range(2):  # principal axes are defined up to sign
        sign = np.sign(expected[:, k] @ emb.coords[:, k])
        np.testing.assert_allclose(emb.coords[:, k], sign * expected[:, k], atol=1e-3 * np.abs(expected).max())


def test_tsne_sklearn_is_deterministic_and_keeps_neighbours(digits_pass):
    x = digits_pass.features
    a = embed(x, method="tsne", backend="sklearn", seed=0)
    b = embed(x, method="tsne", backend="sklearn", seed=0)
    assert a.coords.shape == (len(x), 2) and a.backend == "sklearn"
    assert np.array_equal(a.coords, b.coords)
    # t-SNE preserves local neighbourhoods far better than chance (random 2-D points: about 0.5)
    assert trustworthiness(x, a.coords, n_neighbors=5) > 0.9
    assert trustworthiness(x, np.random.default_rng(0).normal(size=(len(x), 2)), n_neighbors=5) < 0.7


def test_tsne_opentsne(digits_pass):
    pytest.importorskip("openTSNE", reason="openTSNE is the optional 'embed' extra")
    x = digits_pass.features
    a = embed(x, method="tsne", backend="opentsne", seed=0)
    b = embed(x, method="tsne", backend="auto", seed=0)
    assert a.backend == b.backend == "opentsne" and a.coords.shape == (len(x), 2)
    assert np.array_equal(a.coords, b.coords)
    assert trustworthiness(x, a.coords, n_neighbors=5) > 0.9


def test_umap_optional(digits_pass):
    if has_umap():
        emb = embed(digits_pass.features, method="umap", seed=0)
        assert emb.coords.shape == (len(digits_pass), 2)
    else:
        with pytest.raises(ConvscopeError, match="umap-learn"):
            embed(digits_pass.features, method="umap")


def test_small_and_bad_inputs():
    rng = np.random.default_rng(0)
    emb = embed(rng.normal(size=(5, 3)), method="tsne", backend="sklearn")  # perplexity lowered to fit
    assert emb.coords.shape == (5, 2) and emb.params["perplexity"] < 4 / 3
    assert embed(rng.normal(size=(6, 1)), method="pca").coords.shape == (6, 2)  # one feature: padded
    with pytest.raises(ConvscopeError, match="at least 3"):
        embed(rng.normal(size=(2, 4)))
    with pytest.raises(ConvscopeError, match="NaN"):
        embed(np.full((10, 4), np.nan))
    with pytest.raises(ConvscopeError, match="unknown embedding"):
        embed(rng.normal(size=(10, 4)), method="mds")
    with pytest.raises(ConvscopeError, match="backend"):
        embed(rng.normal(size=(10, 4)), backend="cuml")


def test_json_and_cache(tmp_path, digits_run, digits_pass):
    _, model, test = digits_run
    r = cached_pass(model, test, split="test", cache_dir=tmp_path, progress=False)
    first = cached_embedding(r, method="pca", seed=0, cache_dir=tmp_path)
    files = list((tmp_path / "embedding").glob("*.npz"))
    assert len(files) == 1
    again = cached_embedding(r, method="pca", seed=0, cache_dir=tmp_path)
    assert np.array_equal(first.coords, again.coords) and again.seconds == first.seconds
    assert isinstance(Embedding.load(files[0]), Embedding)
    cached_embedding(r, method="pca", seed=1, cache_dir=tmp_path)
    assert len(list((tmp_path / "embedding").glob("*.npz"))) == 2
    data = first.to_json(r.labels, r.preds, r.indices)
    json.dumps(data)
    assert len(data["x"]) == len(data["label"]) == len(data["correct"]) == len(r)
    assert data["correct"] == (r.labels == r.preds).tolist()
