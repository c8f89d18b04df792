"""The HTML report: one self-contained file, no script, no external resource, readable at any
sweep size and on any screen from 900 px wide.

The page opens with the sweep as a whole -- the key numbers, every run's monitored curve in one
figure with each stop marked, how stops and savings are distributed, the saved-vs-lost frontier
and the recommended setting, the totals, the runs worth a look -- then one table row per run with
a sparkline of its curve (:mod:`~runlens.report.render.sparklines`), and full sections, with
plots, only for the runs shown in detail (``detail``, chosen as for the text report by
:func:`~runlens.report.build.overview.detail_runs`): 2,000 runs make a page of a few MB, not 112.

The sweep-level figures are PNGs at twice the CSS pixel density
(:mod:`~runlens.report.render.plots`), the run plots inline SVG
(:mod:`~runlens.report.render.run_plots`), both as wide as the page; wide tables scroll inside
their own box, so nothing runs off the page; a viewport meta tag makes phones and narrow windows
lay the page out at their own width.

Run names, metric names, notes and paths come from files anyone can write: every piece of text
goes through :func:`~runlens.textsafe.html_text` -- :func:`~runlens.textsafe.shown` (control and
bidi characters made visible as ``\\x1b``, ``\\u202e``: none can reorder or hide what follows)
then :func:`html.escape` (quotes included) --, run sections are anchored by their position
(never by their name), and a Content-Security-Policy allows no script and no resource but the
embedded images and the inline style.

>>> open("report.html", "w").write(render_html(runlens.build_report("sample_logs")))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from typing import Literal

from runlens.report.build.overview import Sort, detail_runs, sorted_runs
from runlens.report.model import WARNING, LearningRate, Report, RunReport
from runlens.report.render import describe, describe_overview
from runlens.report.render.describe_sweep import setting_text, varied_keys
from runlens.report.render.figures import Figures
from runlens.report.render.run_plots import draws_learning_rate, run_svg
from runlens.report.render.sparklines import sparkline
from runlens.report.render.svg_axes import STYLE as PLOT_STYLE
from runlens.report.render.words import duration, number, percent
from runlens.textsafe import html_text as _text
from runlens.textsafe import text_lines

Slot = Callable[[], str]  # a figure's markup, made when the page asks for it
Line = str | Slot
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
table.runs td, table.sweep td { overflow-wrap: normal; white-space: nowrap; }
table.runs td:first-child, table.sweep td:last-child { white-space: normal; }
table.runs td:nth-child(n+3):nth-child(-n+9), table.sweep td:not(:last-child) { text-align: right; }
table.runs td:first-child { overflow-wrap: anywhere; min-width: 7em; max-width: 22em; }
table.runs td:nth-child(2) { padding: 1px 3px; }
@media (max-width: 1000px) {
  body { padding: 0.8em 1em 2em; }
  table.runs, table.sweep { font-size: 0.8em; }
  table.sweep th, table.sweep td { padding: 2px 4px; }
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
section.run { border-top: 1px solid #e4e4e4; margin-top: 1.5em; }
svg.spark { display: block; }
.spark polyline { fill: none; stroke-width: 3; stroke-linejoin: round; }
.spark .t { stroke: #1f77b4; } .spark .s { stroke: #bbb; } .spark circle { fill: #2ca02c; }
.spark line { stroke: #d62728; stroke-width: 2; }
"""


def render_html(
    report: Report,
    *,
    detail: int | Literal["all"] | None = None,
    sort: Sort = "run",
    workers: Executor | None = None,
) -> str:
    """The whole report as one HTML document, laid out as the text report (overview, sweep, runs
    table, the runs shown in detail, warnings) with figures, then each other framework's part
    (:attr:`Report.parts`) the same way; ``detail`` and ``sort`` as
    :func:`~runlens.report.build.overview.detail_runs` and
    :func:`~runlens.report.build.overview.sorted_runs` take them; ``workers``: the processes to draw
    the figures with (:class:`~runlens.report.render.figures.Figures`' default: started now)."""
    title = f"runlens report: {report.source}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{_text(title)}</title><style>",
        *_STYLE.strip().split("\n"),
        *PLOT_STYLE.strip().split("\n"),
        "</style></head><body>",
    ]
    parts = (report, *report.parts)
    with Figures(parts, workers=workers) as figures:  # drawn in workers from now on
        page: list[Line] = []
        for i, part in enumerate(parts):
            page += _part(part, detail, sort, index=i, figures=figures)
        # the text is laid out; each figure's slot now waits for its picture
        out += [line() if callable(line) else line for line in page]
    out.append("</body></html>")
    return text_lines(out)


def _part(
    report: Report, detail: int | Literal["all"] | None, sort: Sort, *, index: int, figures: Figures
) -> list[Line]:
    """One framework's report (``index`` 0: the report itself, then its parts): its heading,
    cards, overview, sweep, runs and warnings."""
    s = report.settings
    heading, anchor = (f" ({s.framework} runs)", f"part{index}-run-") if index else ("", "run-")
    ordered = sorted_runs(report, sort)
    detailed = {r.run for r in detail_runs(report, detail)}
    anchors = {r.run: f"{anchor}{i}" for i, r in enumerate(report.runs) if r.run in detailed}
    out = [
        f"<h1>{_text(f'runlens report: {report.source}{heading}')}</h1>",
        _cards(report),
        _pairs(describe.header_lines(report)),
        f'<p class="note">{_text(describe.numbering_note(report))}</p>',
        "<h2>Overview</h2>",
        _figure(
            figures,
            (index, "overlay"),
            f"{s.monitor} of every run, one line each, and where the policy stops it",
            "Solid: the epochs the policy trains; red dot: where it stops; dotted grey: the epochs it "
            "saves. With many runs the y axis leaves out the most extreme values (diverged runs).",
        ),
        _figure(
            figures,
            (index, "distribution"),
            "how many runs stop at each epoch, and how many epochs each run saves",
        ),
        _pairs(describe_overview.overview_lines(report)),
        _figure(
            figures,
            (index, "frontier"),
            "epochs saved vs runs lost and vs max regret, one point per setting",
            _frontier_caption(report),
        ),
        "<h3>Runs worth a look</h3>",
        _worth_a_look(report, anchors),
        f"<h2>Sweep: {_text(describe.sweep_title(report))}</h2>",
        _table(
            describe.sweep_headers(report),
            describe.sweep_cells(report),
            css="sweep",
            marked=[bool(r["recommended"]) for r in report.sweep.rows],
        ),
        *_runs_table(report, ordered, sort, anchors),
        *_run_sections(report, [r for r in ordered if r.run in detailed], anchors),
    ]
    if report.warnings:
        out += ["<h2>Warnings</h2><ul>", *(f"<li>{_text(w)}</li>" for w in report.warnings), "</ul>"]
    return out


def _frontier_caption(report: Report) -> str:
    """How the frontier's labels read, with an example from the grid (``p3: patience=3``)."""
    keys = describe.grid_keys(report)
    example = ""
    if report.sweep.rows and keys:
        value = describe.sweep_cells(report)[0][0]
        example = f" ({keys[0][0]}{value}: {keys[0]}={value})"
    return (
        f"Labels name the settings at each point by their initials{example}; the sweep table lists "
        "every setting, also those whose label found no free place."
    )


def _cards(report: Report) -> str:
    """The numbers a reader looks for first, one box each."""
    t, o = report.totals, report.overview
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
    best = o.recommended
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
    if o.damaged_files:
        cards.append((f"{o.damaged_files} damaged file(s)", "every intact record was read"))
    boxes = "".join(
        f'<div class="card"><b>{_text(big)}</b><small>{_text(small)}</small></div>' for big, small in cards
    )
    return f'<div class="cards">{boxes}</div>'


def _worth_a_look(report: Report, anchors: dict[str, str]) -> str:
    """The overview's runs worth a look by reason, each a link to its section where it has one."""
    rows = []
    for reason, title in describe_overview.REASON_TITLES.items():
        found = [s for s in report.overview.worth_a_look if s.reason == reason]
        if found:
            items = ", ".join(
                _link(describe_overview.spotlight_text(s, report.settings.framework), anchors.get(s.run))
                for s in found
            )
            rows.append(f"<tr><th>{_text(title)}</th><td>{items}</td></tr>")
    if not rows:
        return _pairs(describe_overview.worth_a_look_lines(report))  # says there is none
    return f'<table class="pairs">{"".join(rows)}</table>'


def _runs_table(report: Report, ordered: list[RunReport], sort: str, anchors: dict[str, str]) -> list[str]:
    """One row per run: its name (a link to its section when it has one), a sparkline, its numbers."""
    s = report.settings
    longest = max((r.last_epoch + 1 for r in report.runs), default=1)
    headers = describe_overview.compact_headers(report)
    head = "".join(f"<th>{_text(h)}</th>" for h in [headers[0], s.monitor, *headers[1:]])
    rows = []
    for record in ordered:
        cells = [_text(c) for c in describe_overview.compact_cells(record)]
        cells[0] = _link(record.run, anchors.get(record.run))
        cells.insert(1, _spark(record, s.monitor, longest))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    in_full = "every run" if len(anchors) == len(ordered) else f"{len(anchors)} of them (linked)"
    legend = describe_overview.flags_legend(ordered)
    notes = [
        f"Sorted by {sort}. Shown in full below: {in_full}.",
        f"{s.monitor} per epoch: blue while trained, grey after the stop (saved), red tick at the stop, "
        "green dot at the run's best.",
        *([f"Flags: {legend}."] if legend else []),
    ]
    return [
        f"<h2>Runs ({len(ordered)})</h2>",
        *(f'<p class="note">{_text(note)}</p>' for note in notes),
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


def _run_sections(report: Report, records: list[RunReport], anchors: dict[str, str]) -> list[Line]:
    if not records:
        return []
    s = report.settings
    out: list[Line] = ["<h2>Runs in full</h2>"]
    for record in records:
        lines = describe.run_lines(record, s)
        reasons = describe_overview.reasons_of(report, record.run)
        if reasons:
            lines = [("worth a look", ", ".join(reasons)), *lines]
        with_lr = draws_learning_rate(record)
        what = "train vs validation and learning rate" if with_lr else "train vs validation"
        caption = "" if with_lr else f"<figcaption>{_text(_lr_caption(record.learning_rate))}</figcaption>"
        plot = run_svg(record, s, label=f"{s.monitor}, {what} of run {record.run}")
        out += [
            f'<section class="run" id="{anchors[record.run]}"><h3>{_text(record.run)}</h3>',
            _pairs(lines),
            f"<figure>{plot}{caption}</figure>",
            "</section>",
        ]
    return out


def _lr_caption(lr: LearningRate | None) -> str:
    """What a run's plot without a learning-rate panel (:func:`draws_learning_rate`) says of it."""
    if lr is None or lr.column is None:
        return "No learning rate logged."
    return f"Learning rate constant throughout: {lr.column} {number(lr.logged_first)} (not plotted)."


def _link(text: str, anchor: str | None) -> str:
    """``text`` escaped, a link to ``#anchor`` when there is one (anchors are ``run-N``: no name)."""
    return f'<a href="#{anchor}">{_text(text)}</a>' if anchor else _text(text)


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


def _figure(figures: Figures, key: tuple[int, str], alt: str, caption: str = "") -> Slot:
    """The slot of figure ``key`` (:meth:`Figures.get`'s arguments): an embedded PNG as wide as the
    page's content (the PNG has twice the pixels of its CSS size, so it stays sharp enlarged to the
    widest page) and its size, for the layout before it loads. Filled once the whole page's text is
    laid out, so that text is written while the workers draw."""

    def tag() -> str:
        image = figures.get(*key)
        img = (
            f'<img alt="{_text(alt)}" width="{image.width}" height="{image.height}" '
            f'src="data:image/png;base64,{image.png}">'
        )
        text = f"<figcaption>{_text(caption)}</figcaption>" if caption else ""
        return f"<figure>{img}{text}</figure>"

    return tag
