"""What every view's router is built from: one :class:`ServerContext`, made once by ``create_app``.

Each view module exposes ``router(ctx) -> APIRouter`` and reads from the context only
what it needs: the models and their traces (``registry``), the shared pool of
background work (``jobs``), the runs folder, the dataset option and the explain panels'
settings. Views that add a kind of image id register it on the registry
(:meth:`~convscope.server.registry.Registry.add_image_source`), in their ``router``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..data.base import ImageDataset
from ..features import FeatureCache
from .jobs import JobManager
from .registry import Registry


@dataclass
class ExplainSettings:
    """Server options for the "Why?" and "What does it look for?" panels.

    ``data``: the dataset for top examples: ``"auto"`` (embedded MNIST for 1-channel
    28x28 models, none for others), ``None``, a dataset name (``convscope serve --data``),
    or an :class:`ImageDataset`; ``split`` which split of a named one. ``cache_dir``:
    the feature-visualisation cache (default ``$CONVSCOPE_CACHE/features``). ``steps``:
    the optimisation steps the page asks for by default. Read per request, so tests and
    embedding code may change them after the app is made (``app.state.explain``).
    """

    data: str | ImageDataset | None = "auto"
    split: str = "val"
    cache_dir: str | Path | None = None
    steps: int = 128

    def cache(self) -> FeatureCache:
        if self.cache_dir is not None:
            return FeatureCache(self.cache_dir)
        from ..data.download import cache_dir

        return FeatureCache(cache_dir() / "features")


@dataclass
class ServerContext:
    """The server's shared state and options, handed to every view's ``router``.

    ``runs``: the folder of training runs the training view lists (None: none);
    ``data``: the dataset the dataset view measures every model on (None: the one each
    checkpoint was trained on); ``split_seed``: that view's split seed (None: recorded);
    ``engine``: where that view's dataset pass runs (``"local"``, or a
    :class:`convscope.scale.RayEngine` kept for the server's life, so its actors load each model once).
    """

    registry: Registry
    jobs: JobManager = field(default_factory=JobManager)
    runs: str | Path | None = None
    data: str | None = None
    split_seed: int | None = None
    explain: ExplainSettings = field(default_factory=ExplainSettings)
    engine: Any = "local"
