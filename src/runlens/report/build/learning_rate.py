"""The report's learning-rate part: what each run logged, and a plateau replay where one is wanted.

A run gets an LR replay when the user asked for one (``build_report(reduce_lr=...)``, the CLI's
``--reduce-lr``/``--lr-*``: those settings on every run) or when the run is known to have used
ReduceLROnPlateau (its ``runlens.json`` config: the run's own settings). Other runs only get their
logged rate summarised. The replay covers the epochs the stopping policy trains and goes through
:func:`runlens.policies.learning_rate.replay_lr`, the path :func:`runlens.replay` and the live
comparison take (same starting-rate rule).

>>> lr, curve = learning_rate(None, monitored, logged, column="learning_rate", epochs_trained=9,
...                           initial_lr=None, timing="used", settings_from=None)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from runlens.policies.learning_rate import LRTiming, logged_changes_at, replay_lr
from runlens.policies.runs import RunSeries
from runlens.report.model import LearningRate


def learning_rate(
    policy: Any,
    monitored: RunSeries | None,
    logged: RunSeries | None,
    *,
    column: str | None,
    epochs_trained: int,
    initial_lr: float | None,
    timing: LRTiming,
    settings_from: str | None,
) -> tuple[LearningRate, list[float]]:
    """The :class:`LearningRate` of one run and the replayed rate of each trained epoch (empty
    without a replay). ``policy`` None: no replay; ``monitored`` is the run's series of the
    policy's metric (None: not logged), ``logged`` its series of the rate ``column`` (None when
    there is none)."""
    has_log = logged is not None and bool(logged.present.any())
    summary = LearningRate(column=column if has_log else None)
    if has_log:
        summary.logged_changes_at = logged_changes_at(logged.values, logged.present, timing)
        rates = logged.values[logged.present]
        summary.logged_first, summary.logged_final = float(rates[0]), float(rates[-1])
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
