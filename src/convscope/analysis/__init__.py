"""Dataset-level analysis: one batched pass of a model over a dataset split, and what is
read off it (accuracy, confusion, mistakes, embeddings, training history, the report).

>>> from convscope.analysis import cached_pass, evaluate, misclassified, embed
>>> result = cached_pass(model, load_splits("digits")["test"], split="test")
>>> evaluate(result)["accuracy"], misclassified(result)[:3]
>>> embed(result.features, method="tsne", seed=0).coords.shape   # (N, 2)

Every result is NumPy arrays or JSON-able dicts, and long work takes a progress
callback, so the web explorer can serve them. Passes over shards merge exactly.
"""

from .cache import cache_root, cached_embedding, cached_pass, model_fingerprint, pass_key
from .dataset_pass import DatasetPass, last_linear, merge, run_pass
from .embedding import METHODS, Embedding, embed, has_opentsne, has_umap
from .layers import activation_maps, layer_table, report_layers
from .metrics import (
    Mistake,
    cell_rows,
    confusion_matrix,
    evaluate,
    misclassified,
    mistakes_json,
    per_class_accuracy,
    random_rows,
)
from .runs import curves, read_metrics, run_history

__all__ = [
    "METHODS",
    "DatasetPass",
    "Embedding",
    "Mistake",
    "activation_maps",
    "cache_root",
    "cached_embedding",
    "cached_pass",
    "cell_rows",
    "confusion_matrix",
    "curves",
    "embed",
    "evaluate",
    "has_opentsne",
    "has_umap",
    "last_linear",
    "layer_table",
    "merge",
    "misclassified",
    "mistakes_json",
    "model_fingerprint",
    "pass_key",
    "per_class_accuracy",
    "random_rows",
    "read_metrics",
    "report_layers",
    "run_history",
    "run_pass",
]
