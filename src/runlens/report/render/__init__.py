"""Render a :class:`~runlens.report.model.Report` in one of the report formats.

>>> text = render_report(runlens.build_report("sample_logs"), "markdown")   # doctest: +SKIP
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Literal

from runlens.errors import RunlensError
from runlens.options import REPORT_FORMATS as FORMATS
from runlens.report.build.overview import Sort, check_detail, check_sort
from runlens.report.model import Report


def render_report(
    report: Report,
    format: str = "text",
    *,
    detail: int | Literal["all"] | None = None,
    sort: Sort = "run",
    width: int | None = None,
    figure_workers: Executor | None = None,
) -> str:
    """The report as ``"text"`` (for a terminal), ``"markdown"``, ``"json"`` (0-based epochs, keys in
    docs/report.md) or ``"html"`` (one self-contained file with plots).

    ``detail``: the runs text, Markdown and HTML show in detail (``"all"``, a number: the runs worth a
    look first, see :func:`~runlens.report.build.overview.detail_runs`; default all of a small
    logdir, else a handful); ``sort``: the runs table's order (``run``, ``saved``, ``regret``,
    ``stop``, ``best``); ``width``: the text's (default the terminal's). JSON holds every run
    whole, in the report's order. ``figure_workers``: HTML only, the worker processes to draw its
    figures with (:func:`~runlens.report.render.figures.figure_workers`, started before the report
    was built; default: started as the page is written).

    Names from disk are shown escaped in text, Markdown and HTML (:mod:`runlens.textsafe`) and
    kept as they are in JSON (where ``json.dumps`` escapes them: the document is ASCII)."""
    if format not in FORMATS:
        raise RunlensError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    check_sort(sort)  # a bad sort or detail is an error in every format
    check_detail(detail)
    if format == "text":
        from runlens.report.render.text import render_text

        def render(part: Report) -> str:
            return render_text(part, detail=detail, sort=sort, width=width)
    elif format == "markdown":
        from runlens.report.render.markdown import render_markdown

        def render(part: Report) -> str:
            return render_markdown(part, detail=detail, sort=sort)
    elif format == "json":
        from runlens.report.render.json_format import render_json as render
    else:
        from runlens.report.render.html import render_html

        def render(part: Report) -> str:
            return render_html(part, detail=detail, sort=sort, workers=figure_workers)

    # Names from disk: text, Markdown and HTML show them escaped, every line through
    # runlens.textsafe.text_lines; JSON keeps them as data, and json.dumps escapes every character
    # that is not printable ASCII (a byte that is not UTF-8 is the lone surrogate \udcXX).
    if not report.parts or format in ("json", "html"):  # JSON nests the parts, HTML lays them out
        return render(report)
    # One report per framework, one after the other (each with its own policy, sweep and totals).
    return "\n".join(render(part) for part in (report, *report.parts))
