"""Training and evaluation: the loop, its metrics stream, checkpoints and snapshots.

>>> from convscope.train import TrainConfig, train, evaluate
>>> result = train(TrainConfig(model="tiny-vgg", data="digits", epochs=3, out="runs/demo"))
>>> result.best                          # runs/demo/best.pt, loadable with load_model
>>> run = Run("runs/mine", net, classes)  # the same run folder from your own loop (run_api.py)
"""

from .config import TrainConfig
from .evaluate import Evaluation, confusion_matrix, evaluate, predict_logits
from .run_api import Run
from .runlog import read_metrics
from .snapshots import load_snapshot
from .trainer import Trainer, TrainResult, recorded_config, train

__all__ = [
    "Evaluation",
    "Run",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "confusion_matrix",
    "evaluate",
    "load_snapshot",
    "predict_logits",
    "read_metrics",
    "recorded_config",
    "train",
]
