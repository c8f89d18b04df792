"""The HTML report: one self-contained file, plots embedded as base64 PNG, no external resources.

Run names, metric names, notes and paths come from files anyone can write: every piece of text
goes through :func:`_text` -- :func:`~runlens.textsafe.shown` (control and bidi characters made
visible as ``\\x1b``, ``\\u202e``: none can reorder or hide what follows) then
:func:`html.escape` (quotes included) --, run sections are anchored by their position (never by
their name), and a Content-Security-Policy allows no script and no resource but the embedded
images and the inline style.

>>> open("report.html", "w").write(render_html(runlens.build_report("sample_logs")))  # doctest: +SKIP
"""

from __future__ import annotations

from html import escape

from runlens.report.model import WARNING, Report
from runlens.report.render import describe
from runlens.report.render.plots import run_plots, sweep_plot
from runlens.textsafe import shown, text_lines

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
table.pairs th { width: 11em; background: none; }
tr.recommended td { font-weight: bold; background: #eefbe9; }
section.run { border-top: 2px solid #ddd; margin-top: 1.5em; }
img { max-width: 100%; }
.note { color: #555; font-style: italic; }
tr.warning th, tr.warning td { background: #fde2e2; color: #a00; font-weight: bold; }
"""


def render_html(report: Report) -> str:
    """The whole report as one HTML document."""
    s = report.settings
    title = f"runlens report: {report.source}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{_text(title)}</title><style>",
        *_STYLE.strip().split("\n"),
        "</style></head><body>",
        f"<h1>{_text(title)}</h1>",
        _pairs(describe.header_lines(report)),
        f'<p class="note">{_text(describe.EPOCHS_NOTE)}</p>',
        "<h2>Runs</h2>",
        _table(describe.run_headers(s), [describe.run_cells(r) for r in report.runs], links=True),
    ]
    images = run_plots(report.runs, s)
    for i, (record, image) in enumerate(zip(report.runs, images)):
        out += [
            f'<section class="run" id="run-{i}"><h3>{_text(record.run)}</h3>',
            _pairs(describe.run_lines(record, s)),
            _image(image, f"{s.monitor}, train vs validation and learning rate of run {record.run}"),
            "</section>",
        ]
    out += [
        f"<h2>Sweep: {_text(describe.sweep_title(report))}</h2>",
        _table(
            describe.sweep_headers(report),
            describe.sweep_cells(report),
            marked=[bool(r["recommended"]) for r in report.sweep.rows],
        ),
        _pairs(describe.sweep_lines(report)),
        _image(
            sweep_plot(report.sweep, describe.grid_keys(report)),
            "epochs saved vs runs lost and vs max regret, one point per setting",
        ),
        "<h2>Totals</h2>",
        _pairs(describe.totals_lines(report)),
    ]
    if report.warnings:
        out += ["<h2>Warnings</h2><ul>", *(f"<li>{_text(w)}</li>" for w in report.warnings), "</ul>"]
    out.append("</body></html>")
    return text_lines(out)


def _text(text: str) -> str:
    """Text from anywhere, safe as HTML element content or a quoted attribute value."""
    return escape(shown(text))


def _pairs(lines: describe.Lines) -> str:
    warn = ' class="warning"'  # disagreement lines of runs trained with runlens.keras
    rows = "".join(
        f"<tr{warn if label == WARNING else ''}><th>{_text(label)}</th><td>{_text(text)}</td></tr>"
        for label, text in lines
    )
    return f'<table class="pairs">{rows}</table>'


def _table(
    headers: list[str], rows: list[list[str]], *, links: bool = False, marked: list[bool] | None = None
) -> str:
    """A table; ``links`` makes each first cell a link to its run's section, ``marked`` rows bold."""
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cells = [_text(c) for c in row]
        if links:
            cells[0] = f'<a href="#run-{i}">{cells[0]}</a>'
        css = ' class="recommended"' if marked and marked[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(png_base64: str, alt: str) -> str:
    return f'<img alt="{_text(alt)}" src="data:image/png;base64,{png_base64}">'
