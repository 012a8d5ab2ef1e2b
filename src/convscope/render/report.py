"""A report as one self-contained HTML file (or a PDF) from sections of text, tables and figures.

The HTML embeds every figure as a base64 PNG ``data:`` URI and carries its own CSS, so
it opens from disk with no network and can be mailed as one file. The PDF is the same
figures through matplotlib's ``PdfPages`` (tables become table figures), so both
formats show exactly the same pictures.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from ..io_utils import atomic_path, write_text_atomic
from .dataset_figures import table_figure
from .figure_io import figure_bytes


@dataclass
class Table:
    header: list[str] | None  # None: a key-value table without a header row
    rows: list[list[object]]


@dataclass
class Section:
    """One heading with paragraphs, an optional table, figures (with alt text) and a note."""

    title: str
    paragraphs: list[str] = field(default_factory=list)
    table: Table | None = None
    figures: list[tuple[Figure, str]] = field(default_factory=list)
    note: str = ""  # shown in italics, e.g. why a part is missing

    @property
    def anchor(self) -> str:
        return "".join(ch if ch.isalnum() else "-" for ch in self.title.lower()).strip("-")


ROWS_PER_PAGE = 40  # table rows on one PDF page

CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2328}
h1{margin-bottom:.1em}.sub{color:#59636e;margin-top:0}
h2{border-bottom:1px solid #d1d9e0;padding-bottom:.2em;margin-top:1.8em}
nav ol{columns:2;color:#59636e}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
th,td{border:1px solid #d1d9e0;padding:3px 8px;text-align:left}th{background:#f6f8fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
.note{color:#59636e;font-style:italic}
pre{background:#f6f8fa;padding:.6em;overflow:auto;font-size:12px}
"""


def image_tag(fig: Figure, alt: str) -> str:
    """An ``<img>`` with the figure inline as a base64 PNG."""
    data = base64.b64encode(figure_bytes(fig, "png")).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in table.header or [])
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{html.escape(str(c))}</td>'
            if isinstance(c, (int, float))
            else f"<td>{html.escape(str(c))}</td>"
            for c in row
        )
        + "</tr>"
        for row in table.rows
    )
    thead = f"<thead><tr>{head}</tr></thead>" if head else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def render_html(title: str, sections: Sequence[Section], subtitle: str = "") -> str:
    """The whole report as one HTML string (no external resources)."""
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a></li>' for s in sections)
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>",
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class=sub>{html.escape(subtitle)}</p><nav><ol>{toc}</ol></nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>')
        parts.extend(f"<p>{html.escape(p)}</p>" for p in s.paragraphs)
        if s.note:
            parts.append(f'<p class="note">{html.escape(s.note)}</p>')
        if s.table is not None:
            parts.append(table_html(s.table))
        parts.extend(image_tag(fig, alt) for fig, alt in s.figures)
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(path: str | Path, title: str, sections: Sequence[Section], subtitle: str = "") -> Path:
    write_text_atomic(path, render_html(title, sections, subtitle))
    return Path(path)


def write_pdf(path: str | Path, title: str, sections: Sequence[Section], subtitle: str = "") -> Path:
    """The same sections as a PDF: a title page, then each table and figure on its own page."""
    path = Path(path)
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        cover = Figure(figsize=(8.27, 11.69))
        lines = [subtitle, ""] + [f"{i + 1}. {s.title}" for i, s in enumerate(sections)]
        cover.text(0.08, 0.92, title, fontsize=18, weight="bold", va="top")
        cover.text(0.08, 0.87, "\n".join(lines), fontsize=10, va="top", wrap=True)
        pdf.savefig(cover)
        for s in sections:
            if s.table is not None:
                for start in range(0, max(len(s.table.rows), 1), ROWS_PER_PAGE):
                    page = table_figure(s.table.header, s.table.rows[start : start + ROWS_PER_PAGE], title=s.title)
                    pdf.savefig(page, bbox_inches="tight")
            elif not s.figures and (s.paragraphs or s.note):
                page = Figure(figsize=(8.27, 3))
                page.text(0.05, 0.9, s.title, fontsize=14, weight="bold", va="top")
                page.text(0.05, 0.7, "\n".join([*s.paragraphs, s.note]), fontsize=9, va="top", wrap=True)
                pdf.savefig(page)
            for fig, _alt in s.figures:
                fig.suptitle(s.title, fontsize=11)
                pdf.savefig(fig, bbox_inches="tight")
    return path
