"""The HTML report: one self-contained file, no script, no external resource, readable at any
sweep size and on any screen from 900 px wide.

The page opens with the sweep as a whole -- the key numbers, every run's monitored curve in one
figure with each stop marked, how stops and savings are distributed, the saved-vs-lost frontier
and the recommended setting, the totals, the runs worth a look -- then one table row per run with
a sparkline of its curve (:mod:`~runlens.report.render.sparklines`), and full sections, with
plots, only for the detailed runs (``detail``): 2,000 runs make a page of a few MB, not 112.

Figures are PNGs at twice the CSS pixel density (:mod:`~runlens.report.render.plots`) shown at the
width of the page; wide tables scroll inside their own box, so nothing runs off the page; a
viewport meta tag makes phones and narrow windows lay the page out at their own width.

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

from runlens.report.model import WARNING, Report, RunReport
from runlens.report.render import describe
from runlens.report.render.describe_sweep import setting_text, varied_keys
from runlens.report.render.plots import Picture, run_plots
from runlens.report.render.sparklines import sparkline
from runlens.report.render.sweep_plots import distribution_plot, frontier_plot, overlay_plot
from runlens.report.render.words import duration, percent
from runlens.textsafe import shown, text_lines

DETAIL = 5  # runs shown in full (text and plots) when the caller does not say
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_STYLE = """
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; line-height: 1.4; color: #222; margin: 0 auto;
  padding: 1em 1.5em 3em; max-width: 1160px; }
h1 { font-size: 1.6em; overflow-wrap: anywhere; }
h2 { margin-top: 1.8em; border-bottom: 2px solid #ddd; padding-bottom: 0.2em; }
h3 { overflow-wrap: anywhere; }
.wide { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
td { overflow-wrap: anywhere; }
th { background: #f3f3f3; }
table.pairs { width: 100%; }
table.pairs th { width: 11em; background: none; overflow-wrap: anywhere; }
table.runs, table.sweep { font-size: 0.9em; font-variant-numeric: tabular-nums; }
table.runs th, table.runs td { padding: 2px 5px; }
table.runs td, table.sweep td { white-space: nowrap; }
table.runs td:first-child, table.runs td:nth-child(8), table.runs td:nth-child(9),
table.runs td:nth-child(n+11), table.sweep td:last-child { white-space: normal; }
table.runs td:nth-child(n+8), table.sweep td:last-child { overflow-wrap: normal; }
table.runs td:nth-child(n+3):nth-child(-n+10), table.sweep td:not(:last-child) { text-align: right; }
table.runs td:first-child { min-width: 7em; max-width: 22em; }
table.runs td:nth-child(2) { padding: 1px 3px; }
@media (max-width: 1000px) {
  body { padding: 0.8em 1em 2em; }
  table.runs { font-size: 0.8em; }
  svg.spark { width: 84px; height: 14px; }
}
tr.recommended td { font-weight: bold; background: #eefbe9; }
tr.warning th, tr.warning td { background: #fde2e2; color: #a00; font-weight: bold; }
figure { margin: 1em 0 1.5em; }
figure img { display: block; width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: 0.92em; }
.note { font-style: italic; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(12em, 1fr)); gap: 0.6em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 0.8em; overflow-wrap: anywhere; }
.card b { display: block; font-size: 1.35em; }
.card small { color: #555; }
section.run { border-top: 2px solid #ddd; margin-top: 1.5em; }
svg.spark { display: block; }
.spark polyline { fill: none; stroke-width: 3; stroke-linejoin: round; }
.spark .t { stroke: #1f77b4; } .spark .s { stroke: #bbb; } .spark circle { fill: #2ca02c; }
.spark line { stroke: #d62728; stroke-width: 2; }
"""


def render_html(report: Report, *, detail: int | None = DETAIL) -> str:
    """The whole report as one HTML document; ``detail`` runs get a full section with plots
    (None: every run)."""
    s = report.settings
    title = f"runlens report: {report.source}"
    detailed = _detailed(report, detail)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{_text(title)}</title><style>",
        *_STYLE.strip().split("\n"),
        "</style></head><body>",
        f"<h1>{_text(title)}</h1>",
        _cards(report),
        _pairs(describe.header_lines(report)),
        f'<p class="note">{_text(describe.EPOCHS_NOTE)}</p>',
        "<h2>Overview</h2>",
        _figure(
            overlay_plot(report.runs, s),
            f"{s.monitor} of every run, one line each, and where the policy stops it",
            "Solid: the epochs the policy trains; red dot: where it stops; dotted grey: the epochs it "
            "saves. The y axis leaves out the most extreme values (diverged runs) when there are many runs.",
        ),
        _figure(
            distribution_plot(report.runs),
            "how many runs stop at each epoch, and how many epochs each run saves",
        ),
        f"<h2>Sweep: {_text(describe.sweep_title(report))}</h2>",
        _pairs(describe.sweep_lines(report)),
        _figure(
            frontier_plot(report.sweep, describe.grid_keys(report)),
            "epochs saved vs runs lost and vs max regret, one point per setting",
            "Labels name the setting at each point (p3: patience 3); the table below lists every setting.",
        ),
        _table(
            describe.sweep_headers(report),
            describe.sweep_cells(report),
            css="sweep",
            marked=[bool(r["recommended"]) for r in report.sweep.rows],
        ),
        "<h2>Totals</h2>",
        _pairs(describe.totals_lines(report)),
        *_runs_table(report, detailed),
        *_run_sections(report, detailed),
    ]
    if report.warnings:
        out += ["<h2>Warnings</h2><ul>", *(f"<li>{_text(w)}</li>" for w in report.warnings), "</ul>"]
    out.append("</body></html>")
    return text_lines(out)


def _detailed(report: Report, detail: int | None) -> list[int]:
    """Positions (in ``report.runs``) of the runs shown in full."""
    if detail is None:
        return list(range(len(report.runs)))
    return list(range(min(detail, len(report.runs))))


def _cards(report: Report) -> str:
    """The numbers a reader looks for first, one box each."""
    t = report.totals
    keys, varied = describe.grid_keys(report), varied_keys(report)
    setting = setting_text(report.settings.early_stopping, keys, varied=varied)
    cards = [
        (f"{t.runs} runs", f"{t.epochs_logged} epochs logged, {duration(t.wall_time_s)}"),
        (
            f"{t.epochs_saved} epochs saved ({percent(t.fraction_saved)})",
            f"by {setting}: {duration(t.time_saved_s)}; {t.runs_stopped} run(s) stopped early",
        ),
        (f"{t.runs_lost} run(s) lose", "regret > 0: the weights kept are worse than the run's best"),
    ]
    best = next((r for r in report.sweep.rows if r["recommended"]), None)
    if best is None:
        cards.append(("no recommendation", "every setting loses more than the tolerance on some run"))
    else:
        cards.append(
            (
                f"recommended: {setting_text(best, keys, varied=varied)}",
                f"saves {best['epochs_saved']} epochs ({percent(best['fraction_saved'])}), "
                f"{best['runs_lost']} run(s) lose",
            )
        )
    boxes = "".join(
        f'<div class="card"><b>{_text(big)}</b><small>{_text(small)}</small></div>' for big, small in cards
    )
    return f'<div class="cards">{boxes}</div>'


def _runs_table(report: Report, detailed: list[int]) -> list[str]:
    """One row per run: its name (a link to its section when it has one), a sparkline, its numbers."""
    s = report.settings
    longest = max((r.last_epoch + 1 for r in report.runs), default=1)
    anchors = set(detailed)
    headers = describe.run_headers(s)
    head = "".join(f"<th>{_text(h)}</th>" for h in [headers[0], s.monitor, *headers[1:]])
    rows = []
    for i, record in enumerate(report.runs):
        cells = [_text(c) for c in describe.run_cells(record)]
        if i in anchors:
            cells[0] = f'<a href="#run-{i}">{cells[0]}</a>'
        cells.insert(1, _spark(record, s.monitor, longest))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    shown_in_full = "every run" if len(detailed) == len(report.runs) else f"{len(detailed)} of them"
    return [
        f"<h2>Runs ({len(report.runs)})</h2>",
        f'<p class="note">{_text(s.monitor)} per epoch: blue while trained, grey after the stop '
        f"(saved), red tick at the stop, green dot at the run's best. Shown in full below: "
        f"{_text(shown_in_full)}.</p>",
        f'<div class="wide"><table class="runs"><thead><tr>{head}</tr></thead>',
        f"<tbody>{''.join(rows)}</tbody></table></div>",
    ]


def _spark(record: RunReport, monitor: str, longest: int) -> str:
    stop = "never stops" if record.stopped_epoch is None else f"stops after epoch {record.stopped_epoch + 1}"
    return sparkline(
        record.curves.get(monitor, []),
        stop=record.stopped_epoch,
        best=record.run_best_epoch,
        longest=longest,
        label=_text(f"{monitor} of run {record.run}, {stop}"),
    )


def _run_sections(report: Report, detailed: list[int]) -> list[str]:
    if not detailed:
        return []
    s = report.settings
    records = [report.runs[i] for i in detailed]
    out = ["<h2>Runs in full</h2>"]
    for i, record, image in zip(detailed, records, run_plots(records, s)):
        out += [
            f'<section class="run" id="run-{i}"><h3>{_text(record.run)}</h3>',
            _pairs(describe.run_lines(record, s)),
            _figure(image, f"{s.monitor}, train vs validation and learning rate of run {record.run}"),
            "</section>",
        ]
    return out


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


def _table(headers: list[str], rows: list[list[str]], *, css: str, marked: list[bool]) -> str:
    """A table in a box that scrolls sideways when the page is narrower; ``marked`` rows bold."""
    head = "".join(f"<th>{_text(h)}</th>" for h in headers)
    body = []
    for row, mark in zip(rows, marked):
        cells = "".join(f"<td>{_text(c)}</td>" for c in row)
        body.append(f'<tr class="recommended">{cells}</tr>' if mark else f"<tr>{cells}</tr>")
    return (
        f'<div class="wide"><table class="{css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _figure(image: Picture, alt: str, caption: str = "") -> str:
    """An embedded PNG as wide as the page's content (the PNG has twice the pixels of its CSS
    size, so it stays sharp enlarged to the widest page); its size, for the layout before it loads."""
    tag = (
        f'<img alt="{_text(alt)}" width="{image.width}" height="{image.height}" '
        f'src="data:image/png;base64,{image.png}">'
    )
    text = f"<figcaption>{_text(caption)}</figcaption>" if caption else ""
    return f"<figure>{tag}{text}</figure>"
