"""Dataset-level work on more than one process: the engine a cluster already runs.

Every dataset-level operation (:func:`convscope.analysis.run_pass`,
:func:`convscope.features.top_examples`) takes ``engine="local"`` (one process, the
default) or ``engine="ray"`` (or a :class:`RayEngine`). The Ray engine cuts the dataset
into contiguous blocks, gives them to a pool of actors that each load the model once
from the words it was loaded with (never a pickled ``nn.Module``) and read each block
themselves from its descriptor (a ``folder:``'s paths, a built-in set's positions:
:mod:`convscope.data.items`), runs convscope's own shard function in each actor, and
merges the partials with the existing exact merge.
"""

from .blocks import plan_blocks
from .engine import Engine, engine_scope
from .ray_engine import ModelSource, RayEngine

__all__ = ["Engine", "ModelSource", "RayEngine", "engine_scope", "plan_blocks"]
