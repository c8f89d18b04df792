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
from typing import Literal

from runlens.report.build.overview import Sort, detail_runs, sorted_runs
from runlens.report.model import Report
from runlens.report.render import describe, describe_overview
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


def render_markdown(report: Report, *, detail: int | Literal["all"] | None = None, sort: Sort = "run") -> str:
    """The whole report as Markdown, laid out as the text report (overview, sweep, runs table, the
    runs shown in detail, warnings); ``detail`` and ``sort`` as there."""
    o = report.overview
    out = [f"# runlens report: {escape(report.source)}", "", *_pairs(describe.header_lines(report))]
    out += ["", f"_{escape(describe.EPOCHS_NOTE)}_", "", "## Overview", ""]
    out += _pairs(describe_overview.overview_lines(report))
    stops, saved = describe_overview.distribution_titles(report)
    for title, rows in (
        (stops, describe_overview.histogram_rows(o.stop_epochs, epochs=True)),
        (saved, describe_overview.histogram_rows(o.epochs_saved)),
    ):
        out += ["", *_table([title, "runs"], [[label, str(n)] for label, n in rows])]
    out += ["", "### Runs worth a look", "", *_pairs(describe_overview.worth_a_look_lines(report))]
    out += ["", f"## Sweep: {escape(describe.sweep_title(report))}", ""]
    out += _table(describe.sweep_headers(report), describe.sweep_cells(report))
    ordered = sorted_runs(report, sort)
    detailed = {r.run for r in detail_runs(report, detail)}
    out += [
        "",
        "## Runs",
        "",
        f"{len(ordered)} run(s), sorted by {sort}; {len(detailed)} shown in detail.",
        "",
    ]
    out += _table(
        describe_overview.compact_headers(report), [describe_overview.compact_cells(r) for r in ordered]
    )
    legend = describe_overview.flags_legend(ordered)
    if legend:
        out += ["", f"Flags: {escape(legend)}"]
    for record in (r for r in ordered if r.run in detailed):
        lines = describe.run_lines(record, report.settings)
        reasons = describe_overview.reasons_of(report, record.run)
        if reasons:
            lines = [*lines, ("worth a look", ", ".join(reasons))]
        out += ["", f"### {escape(record.run)}", "", *_pairs(lines)]
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
