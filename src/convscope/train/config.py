"""What a training run is asked to do, as one plain, JSON-able record.

The record travels inside every checkpoint (``meta["config"]``), so a run can be
resumed with exactly the settings it started with and a shipped model says how it
was made.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import ConvscopeError
from ..models.zoo import ACTIVATIONS

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
# Settings a resumed run may change; everything else must stay as recorded, or the
# continuation would not be the same run.
RESUMABLE_CHANGES = ("epochs", "patience", "device", "data_root", "download")


@dataclass
class TrainConfig:
    """Settings of one run (see ``convscope train --help`` for each one's meaning).

    ``model`` is a zoo name (a fresh net shaped to the data) or anything
    :func:`convscope.load_model` reads that records its architecture (``default``, a
    convscope checkpoint): that net is fine-tuned. ``split_seed`` fixes the
    train/val/test split independently of ``seed`` (initialisation, shuffling,
    augmentation, dropout), so runs with different seeds share one test set.
    """

    model: str = "tiny-vgg"
    data: str = "mnist"
    out: str = "runs/run"
    epochs: int = 10
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 64
    seed: int = 0
    split_seed: int = 0
    augment: str | None = None  # "auto" (chosen for the dataset) or e.g. "shift=2,rotate=10,flip"
    patience: int | None = None
    schedule: str = "constant"
    activation: str = "relu"
    dropout: float = 0.0
    input_size: tuple[int, int] | None = None
    device: str = "auto"
    data_root: str | None = None
    download: bool = True

    def __post_init__(self) -> None:
        if self.input_size is not None:
            self.input_size = tuple(int(s) for s in self.input_size)  # type: ignore[assignment]
        checks = [
            (self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}"),
            (_finite(self.lr) and self.lr > 0, f"--lr must be a positive finite number, not {self.lr}"),
            (_finite(self.momentum) and 0 <= self.momentum < 1, f"--momentum must be in [0, 1), not {self.momentum}"),
            (
                _finite(self.weight_decay) and self.weight_decay >= 0,
                f"--weight-decay must be a finite number >= 0, not {self.weight_decay}",
            ),
            (self.batch_size >= 1, f"--batch-size must be at least 1, not {self.batch_size}"),
            (self.optimizer in OPTIMIZERS, f"unknown optimizer {self.optimizer!r}; choose {' or '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose {' or '.join(SCHEDULES)}"),
            (
                self.activation in ACTIVATIONS,
                f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}",
            ),
            (_finite(self.dropout) and 0.0 <= self.dropout < 1.0, f"--dropout must be in [0, 1), not {self.dropout}"),
            (self.patience is None or self.patience >= 1, f"--patience must be at least 1, not {self.patience}"),
            (self.device in ("auto", "cpu", "cuda"), f"unknown device {self.device!r}; choose auto, cpu or cuda"),
            (
                self.input_size is None or (len(self.input_size) == 2 and min(self.input_size) >= 1),
                f"--input-size must be one or two positive numbers, not {self.input_size}",
            ),
        ]
        self.augment_options()  # raises for unknown kinds or bad values
        for ok, message in checks:
            if not ok:
                raise ConvscopeError(message)

    def augment_options(self) -> str | dict[str, Any] | None:
        """``augment`` as :func:`convscope.data.make_augment` takes it.

        ``"auto"`` -> the dataset name (the data package picks shifts, rotation and,
        except for digits, flips); ``"shift=2,rotate=15,flip"`` -> ``{"pad": 2,
        "degrees": 15.0, "flip": True}``. A kind without a value keeps the data
        package's default (shift: an eighth of the image side; rotate: 10 degrees);
        a kind left out is off.
        """
        if not self.augment:
            return None
        if self.augment == "auto":
            return self.data
        from ..data.augment import Augment

        options: dict[str, Any] = {"pad": 0, "degrees": 0.0, "flip": False}
        for token in self.augment.split(","):
            kind, _, value = token.strip().lower().partition("=")
            try:
                if kind in ("shift", "crop"):
                    options["pad"] = int(value) if value else None
                elif kind == "rotate":
                    options["degrees"] = float(value) if value else Augment.degrees
                elif kind == "flip" and not value:
                    options["flip"] = True
                else:
                    raise ValueError
            except ValueError:
                raise ConvscopeError(
                    f"unknown augmentation {token.strip()!r}; use 'auto' or a comma list of "
                    "shift[=PIXELS], rotate[=DEGREES], flip"
                ) from None
        return options

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size) if self.input_size else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def resumed_with(self, changes: dict[str, Any]) -> TrainConfig:
        """This (recorded) config with the changes a resume may make; others must match.

        ``changes`` holds only what the user set explicitly. Changing, say, ``lr`` on
        resume raises a :class:`ConvscopeError` instead of silently training a
        different run under the old name.
        """
        d = self.to_dict()
        for key, value in changes.items():
            if key == "input_size" and value is not None:
                value = list(value)
            if key in RESUMABLE_CHANGES or key == "out":
                d[key] = value
            elif value != d.get(key):
                raise ConvscopeError(
                    f"--{key.replace('_', '-')} cannot change when resuming (the run used {d.get(key)!r}); "
                    f"only {', '.join('--' + k.replace('_', '-') for k in RESUMABLE_CHANGES[:3])} may"
                )
        return TrainConfig.from_dict(d)


def _finite(value: Any) -> bool:
    """A real number that is neither NaN nor infinite (argparse's ``float`` accepts 'inf' and 'nan')."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
