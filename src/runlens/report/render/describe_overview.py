"""The overview and the compact runs table in words, shared by the text, Markdown and HTML reports.

The overview (:class:`~runlens.report.model.Overview`) comes before any run in every format: the
totals, the recommended setting and the frontier in sentences, the two distributions as rows of
(bin, runs), the runs worth a look by reason. The runs table has one short row per run, with flags
(:data:`FLAGS`) for what its detailed section would say is wrong.

>>> bin_label({"low": 3, "high": 5, "runs": 2}, epochs=True), bin_label({"low": 4, "high": 4, "runs": 1})
('4-6', '4')
"""

from __future__ import annotations

import math

from runlens.report.model import Histogram, Report, RunReport, Spotlight
from runlens.report.render.describe_sweep import (
    grid_keys,
    setting_text,
    sweep_lines,
    totals_lines,
    varied_keys,
)
from runlens.report.render.words import Lines, epoch, number, policy_name, units

# The flags of the runs table: the letter, and what it says (the legend under the table).
FLAGS = {
    "D": "damaged event files",
    "W": "its runlens.json disagrees with the replay",
    "L": "the LR replay departs from the logged rate",
    "N": "a note (e.g. the monitor never logged)",
}
REASON_TITLES = {
    "damaged": "damaged files",
    "disagrees": "live vs replay",
    "regret": "largest regret",
    "saved": "most saved",
}
_SHOWN = 10  # runs named per reason before "and N more"


def overview_lines(report: Report) -> Lines:
    """The totals, the recommended setting, the frontier and the damaged files, in sentences."""
    lines = totals_lines(report) + sweep_lines(report)
    o = report.overview
    if o.damaged_files:
        runs = sum(1 for s in o.worth_a_look if s.reason == "damaged")
        lines.append(
            (
                "damaged files",
                f"{o.damaged_files} file(s) in {runs} run(s) could not be read whole: every intact record "
                "was kept (the runs are flagged D, the problems listed in their sections and under warnings)",
            )
        )
    return lines


def bin_label(item: dict[str, int], *, epochs: bool = False) -> str:
    """A histogram bin as people read it: ``4-6`` (1-based when it counts epochs), ``4``."""
    low, high = (item["low"] + 1, item["high"] + 1) if epochs else (item["low"], item["high"])
    return str(low) if low == high else f"{low}-{high}"


def histogram_rows(
    histogram: Histogram, *, epochs: bool = False, none: str = "never"
) -> list[tuple[str, int]]:
    """(label, runs) per bin, then ``none`` for the runs without a value (when there are some).
    With fewer runs than bins (a small logdir) the empty bins are left out: a few runs spread over
    20 bins would be mostly empty lines."""
    runs = sum(b["runs"] for b in histogram.bins)
    sparse = runs < len(histogram.bins)
    rows = [(bin_label(b, epochs=epochs), b["runs"]) for b in histogram.bins if b["runs"] or not sparse]
    return rows + ([(none, histogram.none)] if histogram.none else [])


def distribution_titles(report: Report) -> tuple[str, str]:
    """The titles of the stop-epoch and epochs-saved distributions."""
    setting = setting_text(report.settings.early_stopping, grid_keys(report), varied=varied_keys(report))
    name = policy_name(report.settings.early_stopping)
    fw = report.settings.framework
    return (f"{name} ({setting}) stops after {units(fw, 1)}", f"{units(fw)} saved per run")


def spotlight_text(spotlight: Spotlight, framework: str) -> str:
    """A run worth a look with what it is about: ``run (2 files)``, ``run (regret 0.013)``."""
    v = spotlight.value
    what = {
        "damaged": f"{v} file(s)",
        "disagrees": f"{v} difference(s)",
        "regret": f"regret {number(float(v))}",
        "saved": f"{v} {units(framework, v)} saved",
    }[spotlight.reason]
    return f"{spotlight.run} ({what})"


def worth_a_look_lines(report: Report) -> Lines:
    """One line per reason that has runs: the runs, ranked, at most :data:`_SHOWN` named."""
    lines = []
    for reason, title in REASON_TITLES.items():
        found = [s for s in report.overview.worth_a_look if s.reason == reason]
        if not found:
            continue
        text = ", ".join(spotlight_text(s, report.settings.framework) for s in found[:_SHOWN])
        if len(found) > _SHOWN:
            text += f" and {len(found) - _SHOWN} more"
        lines.append((title, text))
    return lines or [("runs worth a look", "none: no damaged file, disagreement, regret or saving")]


def reasons_of(report: Report, run: str) -> list[str]:
    """Why ``run`` is worth a look, as the overview titles say it (empty: it is not)."""
    return [REASON_TITLES[s.reason] for s in report.overview.worth_a_look if s.run == run]


def flags(record: RunReport) -> str:
    """The :data:`FLAGS` letters of one run (empty when nothing is wrong)."""
    lr = record.learning_rate
    found = {
        "D": bool(record.damaged),
        "W": record.live is not None and not record.live.agrees,
        "L": lr is not None and lr.diverges_at is not None,
        "N": bool(record.notes),
    }
    return "".join(letter for letter, on in found.items() if on)


def compact_headers(report: Report) -> list[str]:
    """Columns of the compact runs table (one short row per run)."""
    return [
        "run",
        "epochs",
        "stops",
        "best",
        f"best {report.settings.monitor}",
        "restores",
        "saved",
        "regret",
        "flags",
    ]


def short(value: float | None) -> str:
    """A value to 3 significant digits, for the compact table (its section has 6).

    >>> short(0.00751524), short(None), short(float("inf"))
    ('0.00752', 'n/a', 'inf')
    """
    return number(value) if value is None or math.isnan(value) else f"{value:.3g}"


def compact_cells(record: RunReport) -> list[str]:
    """One row of the compact runs table, in :func:`compact_headers` order."""
    return [
        record.run,
        str(record.epochs_logged),
        "never" if record.stopped_epoch is None else epoch(record.stopped_epoch),
        epoch(record.run_best_epoch),
        short(record.run_best_value),
        epoch(record.restored_epoch),
        str(record.epochs_saved),
        short(record.regret),
        flags(record),
    ]


def flags_legend(records: list[RunReport]) -> str:
    """What the flags used in ``records`` mean (empty when none is)."""
    used = {letter for r in records for letter in flags(r)}
    return "; ".join(f"{letter} = {text}" for letter, text in FLAGS.items() if letter in used)
