"""A one-page static overview of a traced forward pass, as CNN Explainer lays it out.

One column per layer, left to right, each with its name, kind, output shape and a
thumbnail of its channels, then a table with every layer's hyper-parameters and
statistics. The page is self-contained: inline CSS, no script, no network; images are
files relative to the page (the caller writes them beside it), so the folder can be
zipped or served as it is.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5em;color:#1f2328}
h1{margin:0 0 .2em}.sub{color:#59636e;margin:0 0 1em}
.top{display:flex;gap:2em;align-items:flex-start;flex-wrap:wrap}
.top img{max-width:640px;width:100%}
ol.pred{font-variant-numeric:tabular-nums}
.flow{display:flex;gap:6px;overflow-x:auto;padding:.6em 0;border-top:1px solid #d1d9e0;border-bottom:1px solid #d1d9e0}
.col{flex:0 0 auto;width:92px;text-align:center;font-size:11px}
.col a{color:inherit;text-decoration:none}
.col .name{font-weight:600;word-break:break-all}
.col .kind{color:#59636e}
.col img{width:72px;image-rendering:pixelated;margin-top:4px;border:1px solid #eee}
.k-conv{border-top:4px solid #3a6ea5}.k-input{border-top:4px solid #888}.k-linear,.k-softmax{border-top:4px solid #e6550d}
.k-relu,.k-relu6,.k-silu,.k-activation,.k-sigmoid,.k-tanh{border-top:4px solid #d6604d}
.k-maxpool,.k-avgpool,.k-adaptive_avgpool,.k-adaptive_maxpool{border-top:4px solid #762a83}
.col{border-top:4px solid #bbb}
table{border-collapse:collapse;font-size:12px;margin:1em 0}
th,td{border:1px solid #d1d9e0;padding:2px 6px;text-align:left;vertical-align:top}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#59636e;font-style:italic}
"""


@dataclass
class OverviewLayer:
    """What the page shows of one layer; file fields are paths relative to the page."""

    name: str
    kind: str
    shape: Sequence[int]
    op: str = ""
    inputs: Sequence[str] = ()
    params: dict[str, Any] = field(default_factory=dict)
    param_count: int = 0
    stats: dict[str, float] | None = None
    figure: str | None = None
    kernels: str | None = None
    thumbnail: str | None = None


def overview_html(
    title: str,
    layers: Sequence[OverviewLayer],
    subtitle: str = "",
    panel: str | None = None,
    predictions: Sequence[tuple[str, float]] = (),
    notes: Sequence[str] = (),
    links: Sequence[tuple[str, str]] = (),
) -> str:
    """The whole page as one HTML string (see the module docstring)."""
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{e(title)}</title><meta name=viewport content='width=device-width,initial-scale=1'>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1><p class=sub>{e(subtitle)}</p>",
        "<div class=top>",
    ]
    if panel:
        parts.append(f"<img src='{e(panel)}' alt='input and prediction'>")
    if predictions:
        items = "".join(f"<li>{e(name)}: {p:.2%}</li>" for name, p in predictions)
        parts.append(f"<div><b>Top {len(predictions)}</b><ol class=pred>{items}</ol></div>")
    parts.append("</div>")
    parts.extend(f"<p class=note>{e(n)}</p>" for n in notes)

    parts.append("<h2>Layers</h2><div class=flow>")
    for layer in layers:
        shape = "x".join(str(s) for s in layer.shape) or "-"
        inner = f"<div class=name>{e(layer.name)}</div><div class=kind>{e(layer.kind)}</div><div>{e(shape)}</div>"
        if layer.thumbnail:
            inner += f"<img src='{e(layer.thumbnail)}' alt='{e(layer.name)} channels'>"
        if layer.figure:
            inner = f"<a href='{e(layer.figure)}'>{inner}</a>"
        parts.append(f"<div class='col k-{e(layer.kind)}'>{inner}</div>")
    parts.append("</div>")

    parts.append(
        "<table><thead><tr><th>#</th><th>layer</th><th>kind</th><th>op</th><th>inputs</th>"
        "<th>output shape</th><th>parameters</th><th>hyper-parameters</th><th>min</th><th>max</th>"
        "<th>mean</th><th>figures</th></tr></thead><tbody>"
    )
    for i, layer in enumerate(layers):
        stats = layer.stats or {}
        figs = " ".join(
            f"<a href='{e(path)}'>{label}</a>"
            for label, path in (("maps", layer.figure), ("kernels", layer.kernels))
            if path
        )
        hyper = ", ".join(f"{k}={_fmt(v)}" for k, v in layer.params.items())
        cells = [
            f"<td class=num>{i}</td>",
            f"<td>{e(layer.name)}</td>",
            f"<td>{e(layer.kind)}</td>",
            f"<td>{e(layer.op)}</td>",
            f"<td>{e(', '.join(layer.inputs))}</td>",
            f"<td>{e('x'.join(str(s) for s in layer.shape))}</td>",
            f"<td class=num>{layer.param_count:,}</td>",
            f"<td>{e(hyper)}</td>",
        ]
        cells += [f"<td class=num>{stats[k]:.4g}</td>" if k in stats else "<td></td>" for k in ("min", "max", "mean")]
        cells.append(f"<td>{figs}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    if links:
        parts.append("<p>" + " · ".join(f"<a href='{e(href)}'>{e(text)}</a>" for text, href in links) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
