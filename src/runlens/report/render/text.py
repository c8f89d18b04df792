"""The plain-text report (the ``runlens report`` default): aligned label/text lines, wrapped.

Every piece of text is :func:`~runlens.textsafe.shown` before it is measured or wrapped (a name's
line break or escape sequence is printed as ``\\x0a``/``\\x1b``, never acted on), and the lines
are joined by :func:`~runlens.textsafe.text_lines`, which shows each line again: no name can
start a line of its own (``== forged run``).

>>> print(render_text(runlens.build_report("sample_logs")))          # doctest: +SKIP
"""

from __future__ import annotations

import textwrap

from runlens.report.model import Report
from runlens.report.render import describe
from runlens.textsafe import shown, text_lines

WIDTH = 110


def render_text(report: Report) -> str:
    """The whole report as text: header, one block per run, the sweep, totals, warnings."""
    out = [f"runlens report: {report.source}", *_block(describe.header_lines(report)), describe.EPOCHS_NOTE]
    for record in report.runs:
        out += ["", f"== {record.run}", *_block(describe.run_lines(record, report.settings))]
    out += ["", f"== sweep: {describe.sweep_title(report)}"]
    out += table(describe.sweep_headers(report), describe.sweep_cells(report))
    out += _block(describe.sweep_lines(report))
    out += ["", "== totals", *_block(describe.totals_lines(report))]
    if report.warnings:
        out += ["", "== warnings", *[f"  - {w}" for w in report.warnings]]
    return text_lines(out)


def _block(lines: describe.Lines) -> list[str]:
    """Label/text pairs as aligned, wrapped lines."""
    if not lines:
        return []
    lines = [(shown(label), shown(text)) for label, text in lines]
    width = max(len(label) for label, _ in lines) + 2
    out = []
    for label, text in lines:
        out += textwrap.wrap(
            text,
            WIDTH,
            initial_indent=f"  {label:<{width}}",
            subsequent_indent=" " * (width + 4),
            break_on_hyphens=False,
            break_long_words=False,
        ) or [f"  {label}"]
    return out


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell, numbers right-aligned."""
    headers, rows = [shown(h) for h in headers], [[shown(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return (
            "  "
            + "  ".join(
                c.ljust(w) if i == len(cells) - 1 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths))
            ).rstrip()
        )

    return [line(headers), *(line(r) for r in rows)]
