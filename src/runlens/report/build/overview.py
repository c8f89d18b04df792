"""The report's overview (the sweep-level picture before any run), the runs shown in detail, the
order of the runs table, and each run's damaged files.

Every function here reads the report's records only (no I/O): :func:`build_overview` once the
runs, the sweep and the live comparison are known; :func:`detail_runs` and :func:`sorted_runs`
when a renderer lays the report out.

>>> histogram([3, 4, 4, 9], none=1, max_bins=4)
Histogram(bins=[{'low': 2, 'high': 3, 'runs': 1}, {'low': 4, 'high': 5, 'runs': 2}, \
{'low': 6, 'high': 7, 'runs': 0}, {'low': 8, 'high': 9, 'runs': 1}], none=1)
>>> report = runlens.build_report("sample_logs")                       # doctest: +SKIP
>>> [r.run for r in detail_runs(report, 2)], report.overview.worth_a_look[0]   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.events.sources import run_names
from runlens.name_columns import NAME_DTYPE
from runlens.options import REPORT_DETAIL, REPORT_SMALL_LOGDIR, REPORT_SORTS
from runlens.report.model import (
    REASONS,
    Histogram,
    Overview,
    Report,
    RunReport,
    Spotlight,
    SweepSummary,
    Totals,
)

__all__ = [
    "DETAIL",
    "SMALL_LOGDIR",
    "SORTS",
    "Sort",
    "attach_damage",
    "build_overview",
    "check_detail",
    "check_sort",
    "detail_runs",
    "histogram",
    "runs_frame",
    "sorted_runs",
]

MAX_BINS = 20  # a histogram fits a terminal's height, and a bar chart's bars stay readable
TOP = 3  # runs named per ranked reason (largest regret, most saved); damaged/disagreeing: all
DETAIL = REPORT_DETAIL  # runs shown in detail by default when a logdir has more than SMALL_LOGDIR
# With few runs every run is shown in detail by default: a run's section is about a dozen lines,
# so 8 runs read in a couple of screens (the sample logdir has 5), while at sweep scale (hundreds
# of runs) the sections would bury the overview -- there only the runs worth a look get one.
SMALL_LOGDIR = REPORT_SMALL_LOGDIR
Sort = Literal["run", "saved", "regret", "stop", "best"]
SORTS: tuple[str, ...] = REPORT_SORTS


def histogram(values: Sequence[int], *, none: int = 0, max_bins: int = MAX_BINS) -> Histogram:
    """``values`` counted in at most ``max_bins`` bins of one whole width, starting at a multiple
    of it (empty bins between kept); ``none`` the runs without a value."""
    if not values:
        return Histogram(bins=[], none=none)
    low, high = min(values), max(values)
    width = -(-(high - low + 1) // max_bins)
    start = low - low % width
    counts = [0] * ((high - start) // width + 1)
    for value in values:
        counts[(value - start) // width] += 1
    bins = [
        {"low": start + i * width, "high": start + (i + 1) * width - 1, "runs": n}
        for i, n in enumerate(counts)
    ]
    return Histogram(bins=bins, none=none)


def build_overview(records: list[RunReport], sweep: SweepSummary) -> Overview:
    """The :class:`Overview` of a report's runs (their live comparison and damaged files attached)."""
    stops = [r.stopped_epoch for r in records if r.stopped_epoch is not None]
    frontier = sorted((row for row in sweep.rows if row["frontier"]), key=lambda row: row["epochs_saved"])
    return Overview(
        runs=len(records),
        runs_stopped=len(stops),
        stop_epochs=histogram(stops, none=len(records) - len(stops)),
        epochs_saved=histogram([r.epochs_saved for r in records]),
        frontier=frontier,
        recommended=next((row for row in sweep.rows if row["recommended"]), None),
        current=next((row for row in sweep.rows if row.get("current")), None),
        worth_a_look=worth_a_look(records),
        damaged_files=len({p["path"] for r in records for p in r.damaged}),
    )


def worth_a_look(records: list[RunReport], top: int = TOP) -> list[Spotlight]:
    """The runs worth a look, by reason in :data:`REASONS` order: every run with damaged files
    (most files first) and every run whose own callbacks disagree with the replay (most
    disagreements first), then the ``top`` largest regrets (> 0) and the ``top`` most epochs
    saved (> 0); ties by run name."""
    ranked: dict[str, list[tuple[Any, str, float | int]]] = {reason: [] for reason in REASONS}
    for r in records:
        if r.damaged:
            files = len({p["path"] for p in r.damaged})
            ranked["damaged"].append((-files, r.run, files))
        if r.live is not None and not r.live.agrees:
            ranked["disagrees"].append((-len(r.live.disagreements), r.run, len(r.live.disagreements)))
        if r.regret is not None and r.regret > 0:  # inf (a NaN restored) ranks first
            ranked["regret"].append((-r.regret, r.run, r.regret))
        if r.epochs_saved > 0:
            ranked["saved"].append(((-r.epochs_saved, -(r.time_saved_s or 0.0)), r.run, r.epochs_saved))
    limits = {"damaged": None, "disagrees": None, "regret": top, "saved": top}
    return [
        Spotlight(run=run, reason=reason, value=value)
        for reason in REASONS
        for _, run, value in sorted(ranked[reason])[: limits[reason]]
    ]


def detail_runs(report: Report, n: int | Literal["all"] | None = None) -> list[RunReport]:
    """The runs a report shows in detail: all of them (``n="all"``, or by default when the report
    has at most :data:`SMALL_LOGDIR` runs), else ``n`` (default :data:`DETAIL`): the runs worth a
    look first, in the overview's order, then the others in the report's order up to ``n``.

    >>> detail_runs(runlens.build_report("sample_logs"))                   # doctest: +SKIP
    """
    check_detail(n)
    if n == "all" or (n is None and len(report.runs) <= SMALL_LOGDIR):
        return list(report.runs)
    n = DETAIL if n is None else int(n)
    by_name = {r.run: r for r in report.runs}
    chosen = [s.run for s in report.overview.worth_a_look if s.run in by_name]
    chosen += [r.run for r in report.runs]
    return [by_name[name] for name in dict.fromkeys(chosen)][:n]


def check_detail(n: object) -> None:
    """Raise a RunlensError unless ``n`` is None, ``"all"`` or a whole number >= 0."""
    if n is None or n == "all":
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise RunlensError(f"detail must be a whole number >= 0 or 'all', got {n!r}")


def check_sort(by: object) -> None:
    """Raise a RunlensError unless ``by`` is one of :data:`SORTS`."""
    if by not in SORTS:
        raise RunlensError(f"sort must be one of {', '.join(SORTS)}, got {by!r}")


def sorted_runs(report: Report, by: Sort = "run") -> list[RunReport]:
    """The report's runs in the order of the runs table: by ``run`` name; most epochs ``saved``
    first; largest ``regret`` first (none last); earliest ``stop`` first (never stopped last);
    ``best`` monitored value first (in the monitor's direction; none last). Ties by name."""
    check_sort(by)
    sign = 1.0 if report.settings.direction == "min" else -1.0

    def key(r: RunReport) -> tuple:
        if by == "saved":
            return (-r.epochs_saved, r.run)
        if by == "regret":
            return (r.regret is None, -(r.regret or 0.0), r.run)
        if by == "stop":
            return (r.stopped_epoch is None, r.stopped_epoch or 0, r.run)
        if by == "best":
            return (r.run_best_value is None, sign * (r.run_best_value or 0.0), r.run)
        return (r.run,)

    return sorted(report.runs, key=key)


def attach_damage(
    records: list[RunReport], problems: list[dict[str, Any]], root: str | os.PathLike[str]
) -> None:
    """Add each problem met reading the event files (``attrs["problems"]``) to the run its file
    belongs to: the run folder under ``root``, as the report names it (Keras' ``train`` and
    ``validation`` folders under their run). A file of no run in the report (e.g. nothing of it
    could be read) stays in the report's warnings only -- where every problem is listed anyway."""
    by_name = {r.run: r for r in records}
    for problem in problems:
        folder = _run_folder(str(problem.get("path", "")), os.fspath(root))
        record = None if folder is None else by_name.get(run_names(folder)[-1])
        if record is not None:
            record.damaged.append(dict(problem))


def _run_folder(path: str, root: str) -> str | None:
    """The folder of the file ``path`` relative to ``root`` (``"."``: root itself), None outside."""
    if "://" in root:  # a URL: paths under it start with it
        base = root.rstrip("/")
        return path[len(base) + 1 :].rpartition("/")[0] or "." if path.startswith(base + "/") else None
    relative = os.path.relpath(os.path.dirname(path) or ".", root)
    return None if relative == ".." or relative.startswith(".." + os.sep) else Path(relative).as_posix()


def runs_frame(report: Report) -> pd.DataFrame:
    """One row per run (the report's order), its numbers as columns -- what a notebook filters,
    sorts and plots. Epochs 0-based, as in every runlens frame; nullable dtypes where a value can
    be missing (``<NA>``), a logged NaN stays NaN.

    Columns: ``run``, ``epochs_logged``, ``stopped_epoch`` (NA: never stops), ``best_epoch``,
    ``best_value``, ``restored_epoch``, ``restored_value``, ``run_best_epoch``,
    ``run_best_value``, ``epochs_saved``, ``fraction_saved``, ``wall_time_s``, ``time_saved_s``,
    ``regret``, ``lr_diverges_at``, ``checkpoint_files``, ``checkpoint_bytes_to_free``,
    ``damaged_files``, ``live_agrees`` (NA: no runlens.json), ``worth_a_look`` (the reasons,
    comma-separated; ``""``: none), then one ``hparams.NAME`` column per hyperparameter any run
    recorded (None where a run did not), to group the runs by.

    >>> runlens.build_report("sample_logs").runs_frame().sort_values("epochs_saved").tail(2)  # doctest: +SKIP
    """
    reasons: dict[str, list[str]] = {}
    for s in report.overview.worth_a_look:
        reasons.setdefault(s.run, []).append(s.reason)
    runs = report.runs

    def ints(items: list[int | None]) -> pd.arrays.IntegerArray:
        return pd.array(items, dtype="Int64")

    def floats(items: list[float | None]) -> pd.arrays.FloatingArray:
        missing = np.array([v is None for v in items], dtype=bool)
        return pd.arrays.FloatingArray(
            np.array([np.nan if v is None else v for v in items], dtype=float), missing
        )

    lr = [r.learning_rate for r in runs]
    plans = [r.checkpoints for r in runs]
    frame = pd.DataFrame(
        {
            "run": pd.array([r.run for r in runs], dtype=NAME_DTYPE),
            "epochs_logged": np.array([r.epochs_logged for r in runs], dtype=np.int64),
            "stopped_epoch": ints([r.stopped_epoch for r in runs]),
            "best_epoch": ints([r.best_epoch for r in runs]),
            "best_value": floats([r.best_value for r in runs]),
            "restored_epoch": ints([r.restored_epoch for r in runs]),
            "restored_value": floats([r.restored_value for r in runs]),
            "run_best_epoch": ints([r.run_best_epoch for r in runs]),
            "run_best_value": floats([r.run_best_value for r in runs]),
            "epochs_saved": np.array([r.epochs_saved for r in runs], dtype=np.int64),
            "fraction_saved": np.array([r.fraction_saved for r in runs], dtype=np.float64),
            "wall_time_s": floats([r.wall_time_s for r in runs]),
            "time_saved_s": floats([r.time_saved_s for r in runs]),
            "regret": floats([r.regret for r in runs]),
            "lr_diverges_at": ints([None if x is None else x.diverges_at for x in lr]),
            "checkpoint_files": ints([None if c is None else c.files for c in plans]),
            "checkpoint_bytes_to_free": ints([None if c is None else c.bytes_to_free for c in plans]),
            "damaged_files": np.array([len({p["path"] for p in r.damaged}) for r in runs], dtype=np.int64),
            "live_agrees": pd.array(
                [None if r.live is None else r.live.agrees for r in runs], dtype="boolean"
            ),
            "worth_a_look": pd.Series([",".join(reasons.get(r.run, [])) for r in runs], dtype=object),
        }
    )
    recorded = [{h["name"]: h["value"] for h in r.hparams} for r in runs]
    for name in sorted({name for found in recorded for name in found}):
        values = pd.Series([found.get(name) for found in recorded], dtype=object)
        frame[f"hparams.{name}"] = values.infer_objects()
    return frame


def build_totals(records: list[RunReport], sweep: SweepSummary) -> Totals:
    """The report's sums over its runs, and the sweep's recommended setting's savings."""
    logged = sum(r.epochs_logged for r in records)
    saved = sum(r.epochs_saved for r in records)
    spans = [r.wall_time_s for r in records if r.wall_time_s is not None]
    best = next((row for row in sweep.rows if row["recommended"]), None)
    plans = [r.checkpoints for r in records if r.checkpoints is not None]
    planned = [c for c in plans if c.bytes_to_free is not None]
    return Totals(
        runs=len(records),
        epochs_logged=logged,
        epochs_saved=saved,
        fraction_saved=saved / logged if logged else 0.0,
        wall_time_s=sum(spans) if spans else None,
        time_saved_s=float(sum(r.time_saved_s for r in records if r.time_saved_s is not None)),
        runs_stopped=sum(r.stopped_epoch is not None for r in records),
        runs_lost=sum(r.regret is not None and r.regret > 0 for r in records),
        recommended_epochs_saved=None if best is None else best["epochs_saved"],
        recommended_fraction_saved=None if best is None else best["fraction_saved"],
        recommended_time_saved_s=None if best is None else best["time_saved_s"],
        checkpoint_files=sum(c.files for c in plans) if plans else None,
        checkpoint_bytes=sum(c.bytes_total for c in plans) if plans else None,
        checkpoint_bytes_to_free=sum(c.bytes_to_free for c in planned) if planned else None,
    )
