"""What is being explained: one score per sample, read off the model's output.

``target`` is ``None`` (each sample's predicted class), an ``int`` (that class for every
sample), a sequence / 1-D tensor (one class per sample), or a callable mapping the model
output ``(N, ...)`` to ``N`` scores row by row (segmentation, detection, a margin...).
Perturbation methods evaluate the target on batches of perturbed copies of the samples,
so class targets are looked up per row through ``rows`` (which sample a row belongs to).

A model may end in its own softmax or log-softmax. Where scores become probabilities
(Score-CAM's weights, deletion / insertion, confidence changes) the output is used as it
is then: :func:`convscope.outputs.output_kind` tells, once per target, from the values of the first output
turned into probabilities (rows of non-negative numbers summing to 1; rows whose exponentials sum to 1), and
``Target.kind`` records it (``"logits"``, ``"probabilities"`` or ``"log-probabilities"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ..errors import ConvscopeError
from ..outputs import as_probabilities, output_kind

TargetSpec = int | Sequence[int] | torch.Tensor | Callable[[torch.Tensor], torch.Tensor] | None


class Target:
    """A resolved target: ``classes`` (B,) long, or a row-wise ``fn``."""

    def __init__(
        self,
        classes: torch.Tensor | None = None,
        fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        kind: str | None = None,
    ) -> None:
        self.classes = classes
        self.fn = fn
        self.kind = kind  # what the output is (output_kind); None: read off the first output seen

    @classmethod
    def explicit(cls, target: TargetSpec, batch: int, classes: int, device: torch.device) -> Target:
        """Resolve a target that is not ``None`` without running the model (``classes``: output width)."""
        return resolve_target(target, torch.empty(batch, classes, device="meta"), device)

    def scores(self, output: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """One score per row of ``output``; row ``i`` belongs to sample ``rows[i]`` (default: ``i``)."""
        if self.fn is not None:
            s = self.fn(output)
            if not isinstance(s, torch.Tensor) or s.shape != output.shape[:1]:
                raise ConvscopeError(
                    f"a target callable must return one score per row, shape ({output.shape[0]},); "
                    f"got {getattr(s, 'shape', type(s).__name__)}"
                )
            return s
        classes = self.classes if rows is None else self.classes[rows]
        return output.reshape(output.shape[0], -1).gather(1, classes.view(-1, 1)).squeeze(1)

    def probabilities(self, output: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Probability of the target class: the softmax of logits, the output itself when the model
        gives probabilities (``exp`` of log-probabilities); the raw score for a callable target."""
        if self.fn is not None:
            return self.scores(output, rows)
        flat = output.reshape(output.shape[0], -1)
        if self.kind is None:
            self.kind = output_kind(flat)
        return Target(self.classes).scores(as_probabilities(flat, self.kind), rows)


def resolve_target(target: TargetSpec, output: torch.Tensor, device: torch.device | None = None) -> Target:
    """Resolve ``target`` against the model's output on the unperturbed batch."""
    b = output.shape[0]
    device = device or output.device
    if callable(target) and not isinstance(target, torch.Tensor):
        return Target(fn=target)
    if output.dim() != 2:
        raise ConvscopeError(
            f"the model's output has shape {tuple(output.shape)}; class targets need (B, classes): "
            "pass a callable target that returns one score per sample"
        )
    k = output.shape[1]
    if target is None:
        if output.is_meta:
            raise ConvscopeError("the predicted class needs the model's output")
        return Target(classes=output.argmax(1))  # in range by construction: no check, no host sync
    if isinstance(target, int) or (isinstance(target, torch.Tensor) and target.dim() == 0):
        classes = torch.full((b,), int(target), dtype=torch.long)
    else:
        classes = torch.as_tensor(
            list(target) if not isinstance(target, torch.Tensor) else target, dtype=torch.long
        ).view(-1)
        if classes.numel() != b:
            raise ConvscopeError(f"got {classes.numel()} targets for a batch of {b}")
    # checked where the classes were given (the host for ints and lists), before they move to the device
    if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= k):
        raise ConvscopeError(f"target class out of range: the model has {k} classes (0..{k - 1})")
    return Target(classes=classes.to(device))
