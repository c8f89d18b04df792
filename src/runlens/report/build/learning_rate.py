"""The report's learning-rate part: what each run logged, and a plateau replay where one is wanted.

A run gets an LR replay when the user asked for one (``build_report(reduce_lr=...)``, the CLI's
``--reduce-lr``/``--lr-*``: those settings on every run) or when the run is known to have used
ReduceLROnPlateau (its ``runlens.json`` config: the run's own settings). Other runs only get their
logged rate summarised. The replay covers the epochs the stopping policy trains and goes through
:func:`runlens.policies.learning_rate.replay_lr`, the path :func:`runlens.replay` and the live
comparison take (same starting-rate rule).

>>> logged = logged_rates(series_of_the_rate_column, "learning_rate", "used")       # doctest: +SKIP
>>> lr, curve = learning_rate(None, monitored, logged_series, logged["run1"], epochs_trained=9,
...                           initial_lr=None, timing="used", settings_from=None)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from runlens.policies.learning_rate import LRTiming, logged_changes_of_runs, replay_lr
from runlens.policies.runs import RunSeries
from runlens.report.model import LearningRate


def logged_rates(found: Sequence[RunSeries], column: str | None, timing: LRTiming) -> dict[str, LearningRate]:
    """Each run's logged rate summarised (:class:`LearningRate`'s ``column``, ``logged_first``,
    ``logged_changes_at``, ``logged_final``; ``column`` None for a run that logged none), for all
    runs of the rate column's series at once
    (:func:`~runlens.policies.learning_rate.logged_changes_of_runs`).

    >>> rate = np.array([0.1, 0.1, 0.05, 0.05])
    >>> s = RunSeries("a", rate, np.full(4, True), np.full(4, True), np.zeros(4))
    >>> logged_rates([s], "learning_rate", "used")["a"].logged_changes_at
    [1]
    """
    if not found:
        return {}
    lengths = np.array([len(s.values) for s in found], dtype=np.int64)
    values, present = np.concatenate([s.values for s in found]), np.concatenate([s.present for s in found])
    changes = logged_changes_of_runs(values, present, lengths, timing)
    at = np.flatnonzero(present)  # every logged rate, run by run
    run = np.repeat(np.arange(len(found)), lengths)[at]
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]]) if len(at) else at
    summaries = {}
    for start, end in zip(starts.tolist(), np.r_[starts[1:], len(at)].tolist()):
        k = int(run[start])
        summaries[found[k].run] = LearningRate(
            column=column,
            logged_first=float(values[at[start]]),
            logged_changes_at=changes[k],
            logged_final=float(values[at[end - 1]]),
        )
    if len(summaries) < len(found):  # runs that logged no rate: in the series' order
        summaries = {s.run: summaries.get(s.run) or LearningRate(column=None) for s in found}
    return summaries


def learning_rate(
    policy: Any,
    monitored: RunSeries | None,
    logged: RunSeries | None,
    summary: LearningRate,
    *,
    epochs_trained: int,
    initial_lr: float | None,
    timing: LRTiming,
    settings_from: str | None,
) -> tuple[LearningRate, list[float]]:
    """The :class:`LearningRate` of one run and the replayed rate of each trained epoch (empty
    without a replay). ``policy`` None: no replay; ``monitored`` is the run's series of the
    policy's metric (None: not logged), ``logged`` its series of the rate (None when there is
    none), ``summary`` what it logged (:func:`logged_rates`), completed here and returned."""
    has_log = summary.column is not None
    if policy is None:
        return summary, []
    summary.policy, summary.settings_from = policy.described(), settings_from
    if monitored is None:
        summary.note = f"no {policy.metric} logged: {type(policy).__name__} cannot be replayed"
        return summary, []
    replayed = replay_lr(
        policy,
        monitored.masked(epochs_trained),
        initial_lr=initial_lr,
        logged_lr=logged.masked() if has_log else None,
        timing=timing,
    )
    if replayed.result is None:
        summary.note = replayed.note
        return summary, []
    result = replayed.result
    summary.initial = replayed.initial_lr
    summary.replayed_reduced_at = list(result.reduced_at)
    summary.replayed_final = result.final_lr
    summary.epochs_replayed = len(result.learning_rates)
    summary.diverges_at = replayed.diverges_at
    return summary, list(result.learning_rates)
