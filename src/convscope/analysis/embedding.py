"""2-D embeddings of dataset features: PCA, t-SNE (scikit-learn or openTSNE) and UMAP.

PCA is linear and instant; t-SNE (van der Maaten & Hinton 2008) keeps neighbourhoods:
it matches the pairwise affinities ``p_ij`` of the features (Gaussian kernels with a
per-point width set by the perplexity) with Student-t affinities
``q_ij ∝ (1 + |y_i - y_j|²)^-1`` in the plane by minimising ``KL(P || Q)``. UMAP does
the same job with a fuzzy-graph objective. For t-SNE and UMAP the features are first
reduced to at most 50 dimensions by PCA, the usual practice: it removes noise and
makes the neighbour search fast. A fixed ``seed`` gives the same picture.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConvscopeError
from ..io_utils import load_arrays, save_arrays
from ..render.notebook import Displayable

METHODS = ("pca", "tsne", "umap")
MIN_POINTS = 3  # t-SNE needs a perplexity below (N - 1) / 3, and 2 points have one picture


def has_opentsne() -> bool:
    return importlib.util.find_spec("openTSNE") is not None


def has_umap() -> bool:
    return importlib.util.find_spec("umap") is not None


@dataclass
class Embedding(Displayable):
    """``coords`` (N, 2) float32, one row per row of the features it came from.

    ``labels`` / ``preds`` (N,) and ``class_names``, when known, colour its scatter plot
    (the notebook view, ``show()``, ``save("map.png")``) by true class, predictions that
    differ drawn as crosses; they are not part of the ``.npz`` file.
    """

    coords: np.ndarray
    method: str
    backend: str
    seed: int
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    labels: np.ndarray | None = field(default=None, repr=False)
    preds: np.ndarray | None = field(default=None, repr=False)
    class_names: Sequence[str] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(len(self.coords))

    def __repr__(self) -> str:
        return f"Embedding({self.method!r} via {self.backend}, {len(self)} points, seed {self.seed})"

    def figure(self):
        """The points coloured by label (one colour when there are none); misclassified ones as crosses."""
        from ..render.dataset_figures import embedding_scatter

        labels = np.zeros(len(self), np.int64) if self.labels is None else np.asarray(self.labels)
        correct = np.ones(len(self), bool) if self.preds is None else labels == np.asarray(self.preds)
        names = self.class_names or [str(k) for k in range(int(labels.max(initial=0)) + 1)]
        return embedding_scatter(self.coords, labels, correct, names, title=f"{self.method} ({self.backend})")

    def to_json(
        self, labels: np.ndarray | None = None, preds: np.ndarray | None = None, indices: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Columnar JSON (compact for 10,000 points): x, y and, when given, label, pred, correct, index."""
        out: dict[str, Any] = {
            "method": self.method,
            "backend": self.backend,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "params": self.params,
            "x": np.round(self.coords[:, 0], 4).tolist(),
            "y": np.round(self.coords[:, 1], 4).tolist(),
        }
        if labels is not None:
            out["label"] = np.asarray(labels).tolist()
        if preds is not None:
            out["pred"] = np.asarray(preds).tolist()
        if labels is not None and preds is not None:
            out["correct"] = (np.asarray(labels) == np.asarray(preds)).tolist()
        if indices is not None:
            out["index"] = np.asarray(indices).tolist()
        return out

    def save(self, path: str | Path) -> Path:
        """``.npz``: the coordinates and settings (:meth:`load` reads them); ``.png``, ``.svg``,
        ``.html``: the scatter plot (:meth:`figure`)."""
        if Path(path).suffix.lower() in (".png", ".svg", ".html"):
            return Displayable.save(self, path)
        header = {
            "method": self.method,
            "backend": self.backend,
            "seed": self.seed,
            "seconds": self.seconds,
            "params": self.params,
        }
        return save_arrays(path, header, {"coords": self.coords})

    @classmethod
    def load(cls, path: str | Path) -> Embedding:
        header, arrays = load_arrays(path, ("coords",), "embedding")
        return cls(coords=arrays["coords"], **header)


def embed(
    features: np.ndarray,
    method: str = "tsne",
    seed: int = 0,
    backend: str = "auto",
    perplexity: float = 30.0,
    pca_dims: int = 50,
    n_jobs: int | None = None,
    labels: np.ndarray | None = None,
    preds: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> Embedding:
    """Embed (N, D) features in 2-D with ``method`` in ``pca``, ``tsne``, ``umap``.

    ``backend`` picks the t-SNE implementation: ``"sklearn"``, ``"opentsne"`` (FFT
    accelerated, the ``embed`` extra), or ``"auto"`` (openTSNE when installed). The
    perplexity is lowered to ``(N - 1) / 3`` for tiny inputs, as t-SNE requires.
    ``labels``, ``preds``, ``class_names`` are kept on the result for its scatter plot.
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise ConvscopeError(f"features must be (N, D), got shape {x.shape}")
    if method not in METHODS:
        raise ConvscopeError(f"unknown embedding method {method!r}; choose one of {', '.join(METHODS)}")
    if len(x) < MIN_POINTS:
        raise ConvscopeError(f"an embedding needs at least {MIN_POINTS} points, got {len(x)}")
    if not np.isfinite(x).all():
        raise ConvscopeError("the features contain NaN or infinite values; the model's outputs are broken")
    start = time.perf_counter()
    if method == "pca":
        coords, backend_used, params = _pca(x, 2, seed), "sklearn", {}
    else:
        reduced = _pca(x, pca_dims, seed) if x.shape[1] > pca_dims else x
        params = {"pca_dims": int(reduced.shape[1])}
        if method == "tsne":
            perplexity = float(min(perplexity, (len(x) - 1) / 3.0 - 1e-3))
            params["perplexity"] = round(perplexity, 3)
            coords, backend_used = _tsne(reduced, seed, backend, perplexity, n_jobs)
        else:
            coords, backend_used = _umap(reduced, seed), "umap-learn"
    return Embedding(
        coords=np.ascontiguousarray(coords, dtype=np.float32),
        method=method,
        backend=backend_used,
        seed=seed,
        seconds=time.perf_counter() - start,
        params=params,
        labels=labels,
        preds=preds,
        class_names=class_names,
    )


def _pca(x: np.ndarray, dims: int, seed: int) -> np.ndarray:
    """Project on the top principal components; padded with zeros if fewer than ``dims`` exist."""
    from sklearn.decomposition import PCA

    k = min(dims, x.shape[0], x.shape[1])
    out = PCA(n_components=k, random_state=seed).fit_transform(x.astype(np.float64))
    if k < dims and dims == 2:
        out = np.pad(out, ((0, 0), (0, dims - k)))
    return out.astype(np.float32)


def _tsne(x: np.ndarray, seed: int, backend: str, perplexity: float, n_jobs: int | None) -> tuple[np.ndarray, str]:
    if backend not in ("auto", "sklearn", "opentsne"):
        raise ConvscopeError(f"unknown t-SNE backend {backend!r}; use auto, sklearn or opentsne")
    if backend == "opentsne" and not has_opentsne():
        raise ConvscopeError("openTSNE is not installed: pip install 'convscope[embed]' (or openTSNE)")
    if backend == "opentsne" or (backend == "auto" and has_opentsne()):
        from openTSNE import TSNE

        emb = TSNE(
            n_components=2,
            perplexity=perplexity,
            initialization="pca",
            random_state=seed,
            n_jobs=n_jobs or 1,
            verbose=False,
        ).fit(x.astype(np.float64))
        return np.asarray(emb), "opentsne"
    from sklearn.manifold import TSNE as SkTSNE

    coords = SkTSNE(
        n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed, n_jobs=n_jobs
    ).fit_transform(x)
    return coords, "sklearn"


def _umap(x: np.ndarray, seed: int) -> np.ndarray:
    if not has_umap():
        raise ConvscopeError("UMAP needs umap-learn: pip install 'convscope[embed]' (or umap-learn)")
    import umap

    return umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
