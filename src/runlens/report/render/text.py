"""The plain-text report (the ``runlens report`` default): aligned label/text lines, wrapped to the
terminal's width.

Layout, for 5 runs or 2,000: the header, the overview (totals, recommendation, frontier, the
distributions of stop epochs and epochs saved as bars, the runs worth a look), the sweep table, a
compact runs table (one line per run, in the order asked), then a section for each run shown in
detail (:func:`~runlens.report.build.overview.detail_runs`) and the warnings. Lines are at most
``width`` wide (the terminal's, ``COLUMNS``, else :data:`WIDTH`), except for a word longer than
the line.

Every piece of text is :func:`~runlens.textsafe.shown` before it is measured or wrapped (a name's
line break or escape sequence is printed as ``\\x0a``/``\\x1b``, never acted on), and the lines
are joined by :func:`~runlens.textsafe.text_lines`, which shows each line again: no name can
start a line of its own (``== forged run``).

>>> fit("lr_0.001/dropout_0.25/seed_17", 16)
'lr_0.00...eed_17'
>>> print(render_text(runlens.build_report("sample_logs"), width=100))   # doctest: +SKIP
"""

from __future__ import annotations

import os
import sys
import textwrap
from typing import Literal

from runlens.report.build.overview import Sort, detail_runs, sorted_runs
from runlens.report.model import Report
from runlens.report.render import describe, describe_overview
from runlens.textsafe import shown, text_lines

WIDTH = 110  # when the width is not known (not a terminal, no COLUMNS)
MIN_WIDTH = 60  # narrower terminals get lines of this width (wrapped by the terminal)
_NAME_MIN = 8  # the run column is never cut below this (the table fits 80 columns)
_BAR = 50  # the longest bar of a histogram


def terminal_width() -> int:
    """The width to lay the report out in: ``COLUMNS`` when set (as
    :func:`shutil.get_terminal_size` reads it), else the terminal's when standard output is one,
    else :data:`WIDTH` (a file or a pipe gets the same report wherever it is written); at least
    :data:`MIN_WIDTH`."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    else:
        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns if sys.stdout.isatty() else WIDTH
        except (AttributeError, OSError, ValueError):  # no real file behind stdout (a test runner's)
            width = WIDTH
    return max(MIN_WIDTH, width)


def render_text(
    report: Report,
    *,
    detail: int | Literal["all"] | None = None,
    sort: Sort = "run",
    width: int | None = None,
) -> str:
    """The whole report as text; ``detail`` and ``sort`` as :func:`~runlens.report.build.overview.detail_runs`
    and :func:`~runlens.report.build.overview.sorted_runs` take them, ``width`` in characters
    (default :func:`terminal_width`)."""
    width = max(MIN_WIDTH, width or terminal_width())
    o = report.overview
    out = [f"runlens report: {report.source}", *_block(describe.header_lines(report), width)]
    out += [*_wrap(describe.EPOCHS_NOTE, width, "", ""), ""]
    out += ["== overview", *_block(describe_overview.overview_lines(report), width)]
    stops, saved = describe_overview.distribution_titles(report)
    out += ["", *bars(stops, describe_overview.histogram_rows(o.stop_epochs, epochs=True), width)]
    out += ["", *bars(saved, describe_overview.histogram_rows(o.epochs_saved), width)]
    out += ["", "  runs worth a look:", *_block(describe_overview.worth_a_look_lines(report), width)]
    out += ["", f"== sweep: {describe.sweep_title(report)}"]
    out += table(describe.sweep_headers(report), describe.sweep_cells(report), width=width)
    ordered = sorted_runs(report, sort)
    detailed = {r.run for r in detail_runs(report, detail)}
    shown_in_detail = "every run" if len(detailed) == len(ordered) else f"{len(detailed)} in detail below"
    out += ["", f"== runs: {len(ordered)}, sorted by {sort}; {shown_in_detail}"]
    cells = [describe_overview.compact_cells(r) for r in ordered]
    out += table(describe_overview.compact_headers(report), cells, width=width, left={0, 8})
    legend = describe_overview.flags_legend(ordered)
    if legend:
        out += _wrap(f"flags: {legend}", width, "  ", "  ")
    for record in (r for r in ordered if r.run in detailed):
        lines = describe.run_lines(record, report.settings)
        reasons = describe_overview.reasons_of(report, record.run)
        if reasons:
            lines = [*lines, ("worth a look", ", ".join(reasons))]
        out += ["", f"== {record.run}", *_block(lines, width)]
    if report.warnings:  # one line each, not wrapped: a warning names a path, found with grep
        out += ["", "== warnings", *[f"  - {w}" for w in report.warnings]]
    return text_lines(out)


def _wrap(text: str, width: int, first: str, rest: str) -> list[str]:
    return textwrap.wrap(
        shown(text),
        width,
        initial_indent=first,
        subsequent_indent=rest,
        break_on_hyphens=False,
        break_long_words=False,
    ) or [first.rstrip()]


def _block(lines: describe.Lines, width: int = WIDTH) -> list[str]:
    """Label/text pairs as aligned, wrapped lines (labels take at most a third of the width)."""
    if not lines:
        return []
    lines = [(shown(label), shown(text)) for label, text in lines]
    column = min(max(len(label) for label, _ in lines), width // 3) + 2
    out = []
    for label, text in lines:
        if len(label) >= column:  # a long label on a line of its own, its text below
            out.append(f"  {label}")
            label = ""
        out += _wrap(text, width, f"  {label:<{column}}", " " * (column + 4))  # hanging indent
    return out


def bars(title: str, rows: list[tuple[str, int]], width: int = WIDTH) -> list[str]:
    """A histogram as labelled bars of ``#`` scaled to the widest count."""
    if not rows:
        return [f"  {shown(title)}: no run"]
    label = max(len(lab) for lab, _ in rows)
    digits = max(len(str(n)) for _, n in rows)
    room = max(10, min(_BAR, width - label - digits - 10))
    top = max(n for _, n in rows) or 1
    out = [f"  {shown(title)}:"]
    for lab, n in rows:
        bar = "#" * (round(n / top * room) if n else 0)
        if n and not bar:
            bar = "."  # a count too small for one '#': still visible
        out.append(f"    {lab:>{label}}  {n:>{digits}}  {bar}".rstrip())
    return out


def fit(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters (``...`` marks the cut)."""
    if len(text) <= width:
        return text
    head = (width - 3 + 1) // 2
    return text[:head] + "..." + text[len(text) - (width - 3 - head) :]


def table(
    headers: list[str], rows: list[list[str]], *, width: int | None = None, left: set[int] | None = None
) -> list[str]:
    """Columns padded to their widest cell, numbers right-aligned (the columns in ``left`` and the
    last one left-aligned). With ``width``, the first column is cut (:func:`fit`, at least
    :data:`_NAME_MIN` wide) so that the lines fit."""
    headers, rows = [shown(h) for h in headers], [[shown(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    if width is not None:
        room = width - 2 - sum(widths[1:]) - 2 * (len(widths) - 1)
        if widths[0] > room:
            widths[0] = max(_NAME_MIN, room, len(headers[0]))
            rows = [[fit(r[0], widths[0]), *r[1:]] for r in rows]
    left = (left or set()) | {len(headers) - 1}

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return ("  " + "  ".join(padded)).rstrip()

    return [line(headers), *(line(r) for r in rows)]
