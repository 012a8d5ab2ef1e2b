"""The model-parameter randomisation test (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

A heatmap that explains *the model* must change when the model's weights are destroyed.
Starting from the output, the layers are re-initialised one group at a time, cumulatively
(cascading randomisation), on a copy of the net; after each step every method is run
again for the same class and its map compared with the original one by

* Spearman rank correlation of the absolute maps (Adebayo et al.'s Fig. 2 measure), and
* SSIM of the maps scaled to [0, 1].

A method that passes decorrelates quickly (values near 0); one whose maps stay similar
while the weights are random (Guided Backprop, in their experiments) mostly shows the
input's edges rather than what the model learned.

Groups: the parameterised modules in reverse order of their first call, grouped by
block (``layer4.1``, ``_blocks.15``; a top-level module is its own group). A module is
re-initialised with its own ``reset_parameters`` (BatchNorm: weight 1, bias 0, fresh
running statistics) under a fixed seed.
"""

from __future__ import annotations

import copy
import csv
import html
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConvscopeError
from ..models.model import Model, as_model
from ..probe import model_state, module_name, observe
from ..progress import ProgressArg, progress_callback
from ..render.notebook import Displayable
from .base import _silent, get_method
from .interpret import sanity_verdict
from .similarity import spearman, ssim
from .targets import TargetSpec, resolve_target


def _has_own_params(m: nn.Module) -> bool:
    return any(True for _ in m.parameters(recurse=False))


def randomization_groups(net: nn.Module, x: torch.Tensor) -> list[tuple[str, list[str]]]:
    """(group name, module names) from the output down, by a dry run on ``x[:1]``."""
    names = {m: n for n, m in net.named_modules() if n and _has_own_params(m)}
    first: list[str] = []

    def note(m, _args):
        if names[m] not in first:
            first.append(names[m])

    with observe(names, pre_hook=note), torch.no_grad():
        net(x[:1])
    modules = dict(net.named_modules())
    groups: list[tuple[str, list[str]]] = []
    for name in reversed(first):
        parts = name.split(".")
        key = parts[0]
        if len(parts) > 2 and parts[1].isdigit() and isinstance(modules[parts[0]], (nn.Sequential, nn.ModuleList)):
            key = ".".join(parts[:2])
        if groups and groups[-1][0] == key:
            groups[-1][1].append(name)
        else:
            groups.append((key, [name]))
    return groups


def reinitialize(module: nn.Module, generator_seed: int) -> None:
    """Re-initialise one module's own parameters (and BatchNorm statistics) reproducibly."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(generator_seed)
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        else:
            for p in module.parameters(recurse=False):
                p.normal_(0.0, 0.02)


@dataclass
class SanityReport(Displayable):
    """Per method: ``spearman[m]`` and ``ssim[m]`` (steps + 1, B), ``maps[m]`` (steps + 1, B, H, W).

    Row 0 is the original model (similarity 1); row i has groups ``steps[:i]`` randomised.
    Printed it is its :meth:`table`; in a notebook an HTML table and the figure of the first
    sample (:func:`~convscope.render.heatmap.sanity_figure`); ``pixels`` gives the input as
    uint8 (B, H, W, C) for that figure, computed only when drawn.
    """

    steps: list[str]
    methods: list[str]
    targets: torch.Tensor | None
    spearman: dict[str, torch.Tensor] = field(default_factory=dict)
    ssim: dict[str, torch.Tensor] = field(default_factory=dict)
    maps: dict[str, torch.Tensor] = field(default_factory=dict)
    pixels: Callable[[], np.ndarray] | None = field(default=None, repr=False, compare=False)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (method, step) with the batch-mean Spearman and SSIM."""
        out = []
        for m in self.methods:
            for i, step in enumerate(["(original)"] + self.steps):
                out.append(
                    {
                        "method": m,
                        "step": i,
                        "randomized_down_to": step,
                        "spearman": float(self.spearman[m][i].nanmean()),
                        "ssim": float(self.ssim[m][i].mean()),
                    }
                )
        return out

    @property
    def verdicts(self) -> dict[str, tuple[bool, str]]:
        """Per method (passed, reason): Adebayo et al.'s criterion, :func:`~convscope.explain.interpret.sanity_verdict`."""
        return {m: sanity_verdict(self, m) for m in self.methods}

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["method", "step", "randomized_down_to", "spearman", "ssim"])
        writer.writeheader()
        writer.writerows(self.rows())
        return buf.getvalue()

    def to_json(self) -> str:
        return json.dumps(
            {
                "steps": self.steps,
                "methods": self.methods,
                "targets": None if self.targets is None else self.targets.tolist(),
                "rows": self.rows(),
                "verdicts": {m: {"passed": ok, "reason": why} for m, (ok, why) in self.verdicts.items()},
            },
            indent=2,
        )

    def table(self) -> str:
        """A text table: methods as columns, steps as rows, 'spearman / ssim' per cell."""
        head = f"{'randomized down to':<24}" + "".join(f"{m:>22}" for m in self.methods)
        lines = [head, f"{'':<24}" + "".join(f"{'spearman / ssim':>22}" for _ in self.methods)]
        for i, step in enumerate(["(original)"] + self.steps):
            cells = "".join(
                f"{float(self.spearman[m][i].nanmean()):>12.3f} / {float(self.ssim[m][i].mean()):.3f}"
                for m in self.methods
            )
            lines.append(f"{step:<24}{cells}")
        lines += [f"{m}: {reason}" for m, (_, reason) in self.verdicts.items()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__  # a report printed at the prompt is its table, not its tensors

    def _repr_html_(self) -> str:
        """The table (rows: steps, columns: methods, cells: Spearman / SSIM batch means) and the figure."""
        e = html.escape
        head = "".join(f"<th>{e(m)}<br><small>spearman / ssim</small></th>" for m in self.methods)
        body = []
        for i, step in enumerate(["(original)"] + self.steps):
            cells = "".join(
                f"<td style='text-align:right'>{float(self.spearman[m][i].nanmean()):.3f} / "
                f"{float(self.ssim[m][i].mean()):.3f}</td>"
                for m in self.methods
            )
            body.append(f"<tr><td>{e(step)}</td>{cells}</tr>")
        table = (
            f"<table><thead><tr><th>randomized down to</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
        return f"<div>{table}{self.png_tag('sanity check figure')}</div>"

    def picture(self) -> np.ndarray:
        """The first sample's maps over the randomisation steps and both similarity curves."""
        from ..render.heatmap import sanity_figure

        first = {m: self.maps[m][:, 0].cpu().numpy() for m in self.methods}
        image = (
            self.pixels()[0] if self.pixels is not None else np.zeros(next(iter(first.values())).shape[1:], np.uint8)
        )
        return sanity_figure(
            image,
            self.steps,
            first,
            {m: self.spearman[m][:, 0].cpu().numpy() for m in self.methods},
            {m: self.ssim[m][:, 0].cpu().numpy() for m in self.methods},
        )


def sanity_check(
    model: Model | nn.Module,
    x: Any,
    methods: Sequence[str] = ("gradcam", "saliency", "guidedbackprop"),
    target: TargetSpec = None,
    layer: str | nn.Module | None = None,
    seed: int = 0,
    options: dict[str, dict[str, Any]] | None = None,
    max_steps: int | None = None,
    progress: ProgressArg = True,
) -> SanityReport:
    """Cascading randomisation from the top; see the module docstring.

    ``layer`` is the CAM family's layer; ``options[method]`` extra constructor arguments;
    ``max_steps`` stops after that many groups. The user's model is not modified.
    ``progress``: ``progress(done, total)`` after each step, or True (a bar once the check
    runs for a second, see :mod:`convscope.progress`) or False.
    """
    model = as_model(model)
    progress = progress_callback(progress, "sanity check", "step") or _silent
    x = model.batch(x)
    if isinstance(layer, nn.Module):
        layer = module_name(model.net, layer)
    with model_state(model.net, freeze=True) as net, torch.no_grad():
        tgt = resolve_target(target, model.scores(net(x)))
    if tgt.classes is None:
        raise ConvscopeError("the sanity check explains classes: give None, a class index or a list")
    work = copy.deepcopy(model.net)
    twin = Model(work, model.classes, model.preprocessing, model.name, model.meta, output=model.output)
    groups = randomization_groups(work, x)
    if max_steps is not None:
        groups = groups[:max_steps]
    report = SanityReport([g for g, _ in groups], list(methods), tgt.classes, pixels=partial(model.to_display, x))
    classes = [get_method(m) for m in methods]
    options = options or {}
    explainers = []
    for name, cls in zip(methods, classes):
        # the weights change at every step: a folded / channels-last copy would be rebuilt each time
        kwargs = {"fold_bn": False, "channels_last": False, **options.get(name, {})}
        if cls.uses_layer:
            kwargs.setdefault("layer", layer)
        explainers.append(cls(twin, **kwargs))
    found: dict[str, list[torch.Tensor]] = {m: [] for m in methods}
    total = len(groups) + 1
    modules = dict(work.named_modules())
    for step in range(total):
        if step:
            for k, name in enumerate(groups[step - 1][1]):
                reinitialize(modules[name], seed * 100_003 + step * 1009 + k)
        for name, explainer in zip(methods, explainers):
            found[name].append(explainer(x, tgt.classes).maps.detach().float())
        progress(step + 1, total)
    for name in methods:
        maps = torch.stack(found[name])  # (steps + 1, B, H, W)
        report.maps[name] = maps
        ref = maps[0]
        report.spearman[name] = torch.stack([spearman(ref.abs(), m.abs()) for m in maps]).float()
        report.ssim[name] = torch.stack([ssim(ref, m) for m in maps]).float()
    return report
