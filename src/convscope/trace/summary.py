"""A Keras-style ``model.summary()`` read off a trace.

Multiply-adds count the weight layers only, per image, the usual convention behind
"ResNet-18: 1.8 G":

* convolution: ``C_out * H_out * W_out * (C_in / groups) * k_h * k_w``
* linear: ``out_features * in_features`` (times any extra leading axes)

Element-wise layers, pooling and batch-norm are listed with 0.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .records import LayerRecord

if TYPE_CHECKING:
    from .core import Trace


def multiply_adds(rec: LayerRecord) -> int:
    """Multiply-adds of one record for one image (see the module docstring)."""
    if rec.output is None or rec.output.dim() == 0:
        return 0
    per_image = rec.output[0].numel() if rec.output.dim() > 1 else rec.output.numel()
    if rec.kind == "conv" and rec.weight is not None:
        c_in_per_group, kh, kw = rec.weight.shape[1:]
        return int(per_image * c_in_per_group * kh * kw)
    if rec.kind == "linear" and rec.weight is not None:
        return int(per_image * rec.weight.shape[1])
    return 0


@dataclass
class SummaryRow:
    name: str
    op: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    inputs: list[str]


@dataclass
class Summary:
    """Rows (layer, kind, output shape, parameters, multiply-adds) and totals."""

    model: str
    via: str
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    total_macs: int

    @classmethod
    def from_trace(cls, t: Trace) -> Summary:
        rows = [
            SummaryRow(r.name, r.op, r.kind, r.output_shape, r.param_count, multiply_adds(r), list(r.inputs))
            for r in t.layers
        ]
        params = list(t.model.net.parameters())
        return cls(
            model=t.model.name,
            via=t.via,
            rows=rows,
            total_params=sum(p.numel() for p in params),
            trainable_params=sum(p.numel() for p in params if p.requires_grad),
            total_macs=sum(r.macs for r in rows),
        )

    @property
    def non_trainable_params(self) -> int:
        return self.total_params - self.trainable_params

    @property
    def is_chain(self) -> bool:
        """True when every layer feeds only the next one (then 'Connected to' is noise)."""
        return all(r.inputs == [prev.name] for prev, r in zip(self.rows, self.rows[1:]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for row in d["rows"]:
            row["output_shape"] = list(row["output_shape"])
        d["non_trainable_params"] = self.non_trainable_params
        return d

    def _table(self) -> tuple[list[str], list[list[str]]]:
        header = ["Layer (type)", "Kind", "Output Shape", "Param #", "Mult-Adds"]
        chain = self.is_chain
        if not chain:
            header.append("Connected to")
        body = []
        for r in self.rows:
            cells = [f"{r.name} ({r.op})", r.kind, str(r.output_shape), f"{r.params:,}", f"{r.macs:,}"]
            if not chain:
                cells.append(", ".join(r.inputs))
            body.append(cells)
        return header, body

    def _footer(self) -> list[str]:
        return [
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.non_trainable_params:,}",
            f"Total mult-adds per image: {_human(self.total_macs)} ({self.total_macs:,})",
        ]

    def __str__(self) -> str:
        header, body = self._table()
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        right = {3, 4}

        def line(cells: list[str]) -> str:
            return (
                " "
                + "  ".join(
                    c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
                ).rstrip()
            )

        rule = "_" * (sum(widths) + 2 * len(widths))
        lines = [f'Model: "{self.model}" (traced via {self.via})', rule, line(header), "=" * len(rule)]
        lines += [line(cells) for cells in body]
        lines += ["=" * len(rule), *self._footer(), rule]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Summary({self.model!r}, {len(self.rows)} layers, {self.total_params:,} params)"

    def _repr_html_(self) -> str:
        header, body = self._table()
        esc = html.escape
        head = "".join(f"<th style='text-align:left'>{esc(h)}</th>" for h in header)
        rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>" for cells in body)
        foot = "<br>".join(esc(s) for s in self._footer())
        return (
            f"<div><b>Model: {esc(self.model)}</b> (traced via {esc(self.via)})"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>{foot}</p></div>"
        )


def _human(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)
