"""The Markdown report: the text report's content as tables (GitHub-flavoured).

Run names, metric names and notes come from files anyone can write, so every cell, heading and
list item is escaped: first :func:`~runlens.textsafe.shown` (line breaks, controls and bidi
characters become visible ``\\x0a``, ``\\u202e``: a cell stays one table cell, a heading one
line), then Markdown's emphasis, code, link, heading, math and table characters get a backslash,
``<``/``>``/``&`` become entities (no raw HTML gets through), and a leading list marker
(``-``, ``+``, ``1.``) is escaped so a list item cannot open another list.

>>> escape("a|b <script>")
'a\\\\|b &lt;script&gt;'
>>> escape("run\\n# x"), _item("1. run"), _item("-x")
('run\\\\\\\\x0a\\\\# x', '1\\\\. run', '\\\\-x')
"""

from __future__ import annotations

import re

from runlens.report.model import Report
from runlens.report.render import describe
from runlens.textsafe import shown, text_lines

_PUNCTUATION = re.compile(r"([\\`*_\[\]|~#$])")
_LIST_MARKER = re.compile(r"^(\d+(?=[.)])[.)]|[-+])")


def escape(text: str) -> str:
    """``text`` safe inside a Markdown table cell or heading."""
    text = shown(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _PUNCTUATION.sub(r"\\\1", text)


def _item(text: str) -> str:
    """``text`` safe as a list item: :func:`escape`, and a leading list marker escaped."""
    return _LIST_MARKER.sub(lambda m: f"{m.group()[:-1]}\\{m.group()[-1]}", escape(text))


def render_markdown(report: Report) -> str:
    """The whole report as Markdown."""
    s = report.settings
    out = [f"# runlens report: {escape(report.source)}", "", *_pairs(describe.header_lines(report))]
    out += ["", f"_{escape(describe.EPOCHS_NOTE)}_", "", "## Runs", ""]
    out += _table(describe.run_headers(s), [describe.run_cells(r) for r in report.runs])
    for record in report.runs:
        out += ["", f"### {escape(record.run)}", "", *_pairs(describe.run_lines(record, s))]
    out += ["", f"## Sweep: {escape(describe.sweep_title(report))}", ""]
    out += _table(describe.sweep_headers(report), describe.sweep_cells(report))
    out += ["", *_pairs(describe.sweep_lines(report))]
    out += ["", "## Totals", "", *_pairs(describe.totals_lines(report))]
    if report.warnings:
        out += ["", "## Warnings", "", *[f"- {_item(w)}" for w in report.warnings]]
    return text_lines(out)


def _pairs(lines: describe.Lines) -> list[str]:
    """Label/text pairs as a two-column table, labels in bold."""
    return ["| | |", "|---|---|", *(f"| **{escape(label)}** | {escape(text)} |" for label, text in lines)]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(escape(c) for c in cells) + " |"

    return [line(headers), "|" + "|".join("---" for _ in headers) + "|", *(line(r) for r in rows)]
