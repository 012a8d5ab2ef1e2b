"""Activation maximisation: the image a unit responds to most, by gradient ascent.

For target units ``u_1..u_B`` (channels of a layer, neurons, or class logits) one
batch of images ``x_b = T(g(theta_b))`` is optimised jointly with Adam:

    theta* = argmax_theta  sum_b [ obj_b(f(normalize(T(g(theta_b))))) - l2 * ||g - 1/2||^2 - tv * TV(g) ]

where ``g`` is the image parameterisation (pixels or Fourier + decorrelated colour,
see :mod:`.params`), ``T`` the random robustness transforms (:mod:`.transforms`),
``normalize`` the model's own preprocessing (pixels 0..255 -> network input) and
``obj_b`` the objective (:mod:`.objectives`). Inactive ReLUs get Lucid's redirected gradient (:mod:`.relu`). Gradients are taken with
``torch.autograd.grad`` with respect to ``theta`` only, so the model's parameters never
receive gradients and their ``requires_grad`` flags are never touched (another thread
may be using the same model). The layer is read by a forward hook that stops the
forward pass right after the layer, removed in ``finally``; the model's train/eval
modes are restored after the optimisation runs in eval mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConvscopeError
from ..models.model import Model, as_model
from ..outputs import OutputSpec, select_output
from ..probe import LayerRef, capture, model_state, resolve_layer, run_to
from ..progress import ProgressArg, progress_callback
from ..render.notebook import Displayable
from .objectives import check_objective, default_position, objective_values
from .params import ImageParam
from .progress import CancelFn, ProgressFn, tick
from .relu import redirected_relu
from .transforms import Transforms


@dataclass
class FeatureVis(Displayable):
    """The result of :func:`visualize` for B target units; in a notebook, its pictures
    captioned with unit and value (``show()``, ``save(path)``: :class:`~convscope.render.notebook.Displayable`)."""

    images: np.ndarray  # uint8 (B, H, W, C): the pictures in the model's pixel space
    inputs: torch.Tensor  # (B, C, H, W) network input (normalised), on the CPU
    units: list[int]  # the target channel / class of each image
    values: np.ndarray  # (B,) objective reached by the final images (no transforms)
    history: np.ndarray  # (steps, B) objective at each step (through the random transforms)
    layer: str  # qualified layer name ("" for class logits)
    settings: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        size = "x".join(str(s) for s in self.images.shape[1:3])
        return f"FeatureVis({self.layer or 'logits'!r}, units {self.units}, {size} pixels)"

    def figure(self):
        from ..render.dataset_figures import labelled_images

        what = self.layer or "class"
        titles = [f"{what} #{u}\n{self.settings.get('objective', '')} {v:.3g}" for u, v in zip(self.units, self.values)]
        return labelled_images(list(self.images), titles, cell=128)


@dataclass(frozen=True)
class _Target:
    net: nn.Module
    layer: str
    ref: LayerRef | None  # None: the net's output (class logits)
    objective: str
    position: tuple[int, int] | None
    output: OutputSpec = None  # which tensor of the net's output holds the logits (the Model's)


def _pixels_to_input(model: Model, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    prep = model.preprocessing
    mean = torch.tensor(prep.mean, dtype=torch.float32, device=device).view(-1, 1, 1)
    std = torch.tensor(prep.std, dtype=torch.float32, device=device).view(-1, 1, 1)
    return mean, std


def _forward(target: _Target, x: torch.Tensor) -> torch.Tensor:
    """The target layer's output (or the logits) for input ``x``."""
    if target.ref is None:
        return select_output(target.net(x), target.output)
    with capture(target.net, target.ref, stop=True, detach=False) as box:
        return run_to(target.net, x, box)


def _resolve_target(
    model: Model, layer: str | nn.Module | None, objective: str, position: tuple[int, int] | None
) -> _Target:
    objective = check_objective(objective)
    if objective == "logit":
        if layer not in (None, ""):
            raise ConvscopeError("the logit objective reads the model's output; do not name a layer")
        return _Target(model.net, "", None, objective, None, model.output)
    if layer in (None, ""):
        raise ConvscopeError(f"the {objective} objective needs a layer (a qualified module name)")
    ref = resolve_layer(model.net, layer)
    return _Target(model.net, str(ref), ref, objective, position)


def _check_units(target: _Target, model: Model, units: list[int]) -> _Target:
    """Dry run: validate unit indices against the layer's width; fix the neuron position."""
    with torch.no_grad(), model_state(model.net):
        act = _forward(target, torch.zeros(1, *model.input_shape, device=model.device))
    width = act.shape[1]
    bad = [u for u in units if not 0 <= u < width]
    if bad:
        what = "classes" if target.ref is None else f"channels in {target.layer}"
        raise ConvscopeError(f"unit(s) {bad} out of range: there are {width} {what}")
    position = target.position
    if target.objective == "neuron" and act.dim() == 4:
        position = position or default_position(act.shape)
        if not (0 <= position[0] < act.shape[-2] and 0 <= position[1] < act.shape[-1]):
            raise ConvscopeError(
                f"position {tuple(position)} is outside {target.layer}'s {act.shape[-2]}x{act.shape[-1]} map"
            )
    return _Target(target.net, target.layer, target.ref, target.objective, position, target.output)


def unit_generators(seed: int, units: list[int]) -> list[torch.Generator]:
    """One random stream per target unit, from (seed, unit): a unit's picture depends on the
    seed and the unit only, not on which other units share its batch (so it can be cached)."""
    return [torch.Generator().manual_seed(int(seed) * 1_000_003 + int(u)) for u in units]


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute difference of neighbouring pixels, (B,)."""
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dy + dx


def visualize(
    model: Model | nn.Module,
    layer: str | nn.Module | None = None,
    units: int | Sequence[int] = 0,
    objective: str = "channel",
    position: tuple[int, int] | None = None,
    steps: int = 256,
    param: str = "fft",
    lr: float = 0.05,
    seed: int = 0,
    transforms: Transforms | str | None = "standard",
    l2: float = 0.0,
    tv: float = 0.0,
    batch_size: int | None = None,
    redirect_relu: bool = True,
    progress: ProgressFn | ProgressArg = True,
    cancel: CancelFn = None,
) -> FeatureVis:
    """Optimise one image per unit so that the unit's ``objective`` is as large as possible.

    Args:
        model: a :class:`~convscope.Model` (its preprocessing defines pixel space) or a module.
        layer: qualified module name, trace record name (``conv2d_1``, see
            :mod:`convscope.probe`) or module; None for ``objective="logit"``, which reads the
            logits the Model's ``output`` selects (``Model(net, output="logits")``).
        units: channel indices (or class indices for ``logit``); one image each.
        objective: ``"channel"`` (mean activation), ``"neuron"`` (at ``position``,
            default the centre) or ``"logit"``.
        steps, lr: Adam steps and learning rate.
        param: ``"fft"`` (Fourier + decorrelated colour) or ``"pixel"``.
        seed: the same seed gives the same pictures.
        transforms: ``"standard"`` (scaled to the input size), ``"none"`` or a :class:`Transforms`.
        l2, tv: weights of the L2 (distance from grey) and total-variation penalties.
        batch_size: units optimised together (default: all at once).
        redirect_relu: let gradients through inactive ReLUs when an image's true gradient
            vanishes (see :mod:`.relu`); without it a unit that is off on the grey start
            image often never moves.
        progress, cancel: see :mod:`convscope.features.progress`; ``progress=True`` (the default)
            draws a bar once the call runs for a second (:mod:`convscope.progress`), False is silent.

    Returns:
        :class:`FeatureVis` with uint8 images in the model's pixel space.

    Example:
        >>> vis = visualize(load_model("default"), "conv_2_2", units=range(10), steps=128)
    """
    model = as_model(model)
    units = [int(units)] if isinstance(units, (int, np.integer)) else [int(u) for u in units]
    if not units:
        raise ConvscopeError("no units to visualise")
    if steps < 1:
        raise ConvscopeError(f"steps must be at least 1, not {steps}")
    target = _check_units(_resolve_target(model, layer, objective, position), model, units)
    if isinstance(transforms, str) or transforms is None:
        name = transforms or "none"
        if name not in ("standard", "none"):
            raise ConvscopeError(f"unknown transforms {name!r}; use 'standard' or 'none'")
        transforms = Transforms.standard(model.preprocessing.size) if name == "standard" else Transforms.none()
    batch_size = batch_size or len(units)
    settings = {
        "objective": objective,
        "position": list(target.position) if target.position else None,
        "steps": steps,
        "param": param,
        "lr": lr,
        "seed": seed,
        "transforms": transforms.to_dict(),
        "l2": l2,
        "tv": tv,
        "redirect_relu": redirect_relu,
    }

    progress = progress_callback(progress, f"visualize {target.layer or 'logits'}", "step")
    chunks = [units[i : i + batch_size] for i in range(0, len(units), batch_size)]
    total = steps * len(chunks)
    inputs, values, history = [], [], []
    with model_state(model.net):
        for k, chunk in enumerate(chunks):

            def report(done: int, _total: int, offset: int = k * steps) -> None:
                tick(progress, cancel, offset + done, total)

            with redirected_relu(model.net) if redirect_relu else nullcontext():
                x, v, h = _ascend(model, target, chunk, steps, param, lr, transforms, l2, tv, seed, report)
            inputs.append(x)
            values.append(v)
            history.append(h)
    x = torch.cat(inputs)
    return FeatureVis(
        images=model.to_display(x),
        inputs=x,
        units=units,
        values=np.concatenate(values),
        history=np.concatenate(history, axis=1),
        layer=target.layer,
        settings=settings,
    )


def _ascend(
    model: Model,
    target: _Target,
    units: list[int],
    steps: int,
    param: str,
    lr: float,
    transforms: Transforms,
    l2: float,
    tv: float,
    seed: int,
    report,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Adam on one batch of units; returns the final inputs, their values and the history."""
    device = model.device
    c, h, w = model.input_shape
    p = transforms.pad
    generators = unit_generators(seed, units)
    image = ImageParam(len(units), c, (h + 2 * p, w + 2 * p), kind=param, generators=generators).to(device)
    mean, std = _pixels_to_input(model, device)
    unit_t = torch.tensor(units, device=device)
    optimizer = torch.optim.Adam([image.raw], lr=lr)
    history = np.zeros((steps, len(units)), dtype=np.float32)
    report(0, steps)
    for step in range(steps):
        canvas = image()
        view = transforms.view(canvas, (h, w), generators)
        obj = objective_values(_forward(target, (view * 255.0 - mean) / std), unit_t, target.objective, target.position)
        loss = -obj.sum()
        if l2:
            loss = loss + l2 * ((canvas - 0.5) ** 2).flatten(1).mean(1).sum()
        if tv:
            loss = loss + tv * total_variation(canvas).sum()
        (grad,) = torch.autograd.grad(loss, [image.raw])
        image.raw.grad = grad
        optimizer.step()
        history[step] = obj.detach().float().cpu().numpy()
        report(step + 1, steps)
    with torch.no_grad():
        view = transforms.view(image(), (h, w), None, random=False)
        # the picture as shown (rounded to uint8 pixels) is what is scored
        x = (torch.round(view * 255.0) - mean) / std
        final = objective_values(_forward(target, x), unit_t, target.objective, target.position)
    return x.detach().cpu(), final.float().cpu().numpy(), history
