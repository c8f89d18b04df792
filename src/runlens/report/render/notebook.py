"""A report in a Jupyter notebook (``Report._repr_html_``): the overview and the runs table, light
enough for a cell's output -- no plots, no per-run sections, at most :data:`ROWS` runs in the
table (the runs worth a look first; ``report.runs_frame()`` has them all, as a DataFrame).

The words are the text report's (:mod:`~runlens.report.render.describe_overview`); every piece
of text goes through :func:`~runlens.textsafe.html_text` (:func:`~runlens.textsafe.shown`, then
:func:`html.escape`), as in the HTML report, so a run name cannot inject markup into the notebook.

>>> runlens.build_report("sample_logs")          # in a notebook cell: the overview  # doctest: +SKIP
"""

from __future__ import annotations

from runlens.report.build.overview import detail_runs, sorted_runs
from runlens.report.model import Report
from runlens.report.render import describe, describe_overview
from runlens.report.render.words import Lines
from runlens.textsafe import html_text as _text

ROWS = 50  # runs in the notebook's table; a cell's output stays small at sweep scale


def render_notebook(report: Report) -> str:
    """The overview and the runs table as an HTML fragment (no document, no script, no style)."""
    o = report.overview
    stops, saved = describe_overview.distribution_titles(report)
    runs = table_rows(report)
    more = len(report.runs) - len(runs)
    note = (
        f"{len(runs)} of {len(report.runs)} runs: the runs worth a look first, then by name; "
        "report.runs_frame() has every run"
        if more
        else f"{len(runs)} run(s)"
    )
    parts = [
        f"<h3>runlens report: {_text(report.source)}</h3>",
        _pairs(describe.header_lines(report)[1:3] + describe_overview.overview_lines(report)),
        '<div style="display: flex; gap: 2em; flex-wrap: wrap">',
        _table(
            [stops, "runs"],
            [[a, str(n)] for a, n in describe_overview.histogram_rows(o.stop_epochs, epochs=True)],
        ),
        _table([saved, "runs"], [[a, str(n)] for a, n in describe_overview.histogram_rows(o.epochs_saved)]),
        "</div>",
        "<h4>Runs worth a look</h4>",
        _pairs(describe_overview.worth_a_look_lines(report)),
        f"<h4>Runs ({_text(note)})</h4>",
        _table(describe_overview.compact_headers(report), [describe_overview.compact_cells(r) for r in runs]),
    ]
    legend = describe_overview.flags_legend(runs)
    if legend:
        parts.append(f"<p>flags: {_text(legend)}</p>")
    return "\n".join(parts)


def table_rows(report: Report) -> list:
    """The runs of the notebook's table: all of them up to :data:`ROWS`, else the runs worth a
    look first and the others by name up to :data:`ROWS`."""
    return sorted_runs(report, "run") if len(report.runs) <= ROWS else detail_runs(report, ROWS)


def _pairs(lines: Lines) -> str:
    rows = "".join(f"<tr><th>{_text(label)}</th><td>{_text(text)}</td></tr>" for label, text in lines)
    return f'<table style="text-align: left">{rows}</table>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_text(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
