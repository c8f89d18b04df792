"""The report's per-run records: :func:`runlens.replay`'s row of each run, its curves and its
learning rate (:mod:`runlens.report.build.learning_rate`).

>>> records = run_reports(frame, runlens.EarlyStopping(patience=3), lr_policy=lambda run: (None, None),
...                       initial_lr=None, timing="used")                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from runlens.policies.learning_rate import LRTiming
from runlens.policies.learning_rate import lr_column as find_lr_column
from runlens.policies.replay import replay_rows
from runlens.policies.runs import RunSeries, run_series, runs_series
from runlens.report.build.learning_rate import learning_rate, logged_rates
from runlens.report.model import LearningRate, RunReport

# run -> (the learning-rate policy to replay on it or None, where its settings come from)
LRPolicyOf = Callable[[str], tuple[Any, "str | None"]]


def run_reports(
    frame: pd.DataFrame,
    policy: Any,
    *,
    lr_policy: LRPolicyOf,
    initial_lr: float | None,
    timing: LRTiming,
) -> list[RunReport]:
    """One :class:`RunReport` per run of ``frame``, ``policy`` (a stopping policy) replayed."""
    monitor = policy.metric
    base = monitor.removeprefix("val_")
    lr_column = find_lr_column(frame.columns)
    plotted = [c for c in dict.fromkeys([monitor, base, f"val_{base}", lr_column]) if c in frame.columns]
    # The monitor first: a frame without it is refused as replay refuses it.
    by_column = runs_series(frame, list(dict.fromkeys([monitor, *plotted])))
    rows = replay_rows(by_column[monitor], policy)  # runlens.replay's rows, by epoch (evaluation)
    series = {column: {s.run: s for s in runs} for column, runs in by_column.items()}
    curves = {column: _curves(found.values()) for column, found in series.items()}
    spans, monitor_logged = _spans_and_counts(series[monitor].values())
    logged = logged_rates(list(series.get(lr_column, {}).values()), lr_column, timing)

    def of(column: str | None, run: str) -> RunSeries | None:
        if column is None:
            return None
        if column not in series:
            if column not in frame.columns:
                return None
            series[column] = {s.run: s for s in run_series(frame, column)}
        return series[column][run]

    records = []
    for row in (dict(zip(rows, values)) for values in zip(*rows.values())):
        run = row["run"]
        monitored = of(monitor, run)
        record = RunReport(
            run=run,
            epochs_logged=row["epochs_logged"],
            last_epoch=len(monitored.logged) - 1,
            monitor_logged=monitor_logged[run],
            run_best_epoch=row["run_best_epoch"],
            run_best_value=row["run_best_value"],
            epochs_trained=row["epochs_trained"],
            stopped_epoch=row["stopped_epoch"],
            best_epoch=row["best_epoch"],
            best_value=row["best_value"],
            restored_epoch=row["restored_epoch"],
            restored_value=row["restored_value"],
            epochs_saved=row["epochs_saved"],
            fraction_saved=row["fraction_saved"],
            wall_time_s=spans[run],
            time_saved_s=python(row["time_saved_s"], nan_is_none=True),
            regret=row["regret"],
            curves={c: curves[c][run] for c in plotted if run in curves[c]},
        )
        replayed_policy, settings_from = lr_policy(run)
        record.learning_rate, replayed = learning_rate(
            replayed_policy,
            None if replayed_policy is None else of(replayed_policy.metric or monitor, run),
            of(lr_column, run),
            logged.get(run) or LearningRate(column=None),
            epochs_trained=record.epochs_trained,
            initial_lr=initial_lr,
            timing=timing,
            settings_from=settings_from,
        )
        if replayed:
            record.curves["learning_rate_replayed"] = replayed
        if monitored.steps is not None:  # an evaluation frame: where each evaluation was logged
            record.framework = str(monitored.framework)
            record.steps = [int(v) if v >= 0 else None for v in monitored.steps.tolist()]
            record.epochs = [None if v != v else float(v) for v in monitored.epochs.tolist()]
        if not record.monitor_logged:
            name = type(policy).__name__
            record.notes.append(f"no {monitor} logged: {name} never sees a value, so it never stops")
        records.append(record)
    return records


def _spans_and_counts(series: Iterable[RunSeries]) -> tuple[dict[str, float | None], dict[str, int]]:
    """Each run's wall-clock span (last minus first known wall time of its logged epochs; None:
    none known) and how many of its epochs logged the value, in one pass over all runs.

    >>> s = RunSeries("a", np.array([1.0, np.nan]), np.array([True, False]), np.array([True, True]),
    ...               np.array([10.0, 12.5]))
    >>> _spans_and_counts([s])
    ({'a': 2.5}, {'a': 1})
    """
    found = list(series)
    if not found:
        return {}, {}
    lengths = np.array([len(s.values) for s in found], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths  # every run has an epoch (run_series)
    walls = np.where(
        np.concatenate([s.logged for s in found]), np.concatenate([s.wall_time for s in found]), np.nan
    )
    with np.errstate(invalid="ignore"):  # a run without a known time: NaN - NaN
        spans = np.fmax.reduceat(walls, starts) - np.fmin.reduceat(walls, starts)  # NaN skipped
    counts = np.add.reduceat(np.concatenate([s.present for s in found]).astype(np.int64), starts)
    runs = [s.run for s in found]
    return (
        dict(zip(runs, [None if v != v else v for v in spans.tolist()])),
        dict(zip(runs, counts.tolist())),
    )


def _curves(series: Iterable[RunSeries]) -> dict[str, list[float | None]]:
    """Each run's values per epoch (None where not logged), converted in one pass over all runs."""
    found = list(series)
    if not found:
        return {}
    flat = np.concatenate([s.values for s in found]).tolist()
    for i in np.flatnonzero(~np.concatenate([s.present for s in found])).tolist():
        flat[i] = None
    out, at = {}, 0
    for s in found:
        out[s.run] = flat[at : at + len(s.values)]
        at += len(s.values)
    return out


def python(value: Any, *, nan_is_none: bool = False) -> Any:
    """A cell of a pandas table as plain Python: NA -> None, numpy scalars -> int/float/bool.

    ``nan_is_none`` for float64 columns, where NaN is pandas' "no value" (in ``Float64`` columns a
    NaN is a logged NaN and stays one).
    """
    if value is pd.NA or value is None:
        return None
    if isinstance(value, tuple):
        return list(value)
    value = value.item() if hasattr(value, "item") else value
    if nan_is_none and isinstance(value, float) and math.isnan(value):
        return None
    return value
