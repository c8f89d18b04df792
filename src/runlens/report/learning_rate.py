"""The report's learning-rate part: ReduceLROnPlateau replayed per run beside the logged rate.

The replay starts from the run's first logged rate (or ``initial_lr``) and covers the epochs the
EarlyStopping replay trains, as :func:`runlens.replay` does with ``lr_policy``; here each run gets
its own answer (a run that logged no rate gets a note instead of failing the whole report) and
the per-epoch replayed rates the plots need.

>>> import numpy as np
>>> logged_changes_at(np.array([0.1, 0.1, 0.05, 0.05]), np.array([True] * 4), "used")
[1]
"""

from __future__ import annotations

import numpy as np

from runlens.policies.plateau import ReduceLROnPlateau
from runlens.policies.runs import RunSeries
from runlens.report.model import LearningRate


def logged_changes_at(values: np.ndarray, present: np.ndarray, timing: str) -> list[int]:
    """Epochs at whose end the logged rate changed.

    ``timing="used"``: the value logged for an epoch is the rate used during it, so a change first
    seen at epoch e happened at the end of e - 1. ``"after"``: the value is the rate after the
    epoch's decision, so the change happened at the end of e itself.
    """
    epochs = np.flatnonzero(present)
    rates = values[epochs]
    changed = np.flatnonzero(rates[1:] != rates[:-1]) + 1
    shift = 1 if timing == "used" else 0
    return [int(epochs[i]) - shift for i in changed]


def replay_learning_rate(
    policy: ReduceLROnPlateau,
    monitored: RunSeries,
    logged: RunSeries | None,
    *,
    column: str | None,
    epochs_trained: int,
    initial_lr: float | None,
    timing: str,
) -> tuple[LearningRate, list[float]]:
    """The :class:`LearningRate` summary of one run and the replayed rate of each trained epoch.

    ``logged`` is the run's series of the learning-rate ``column`` (both None when the frame has
    no rate column).
    """
    has_log = logged is not None and bool(logged.present.any())
    summary = LearningRate(column=column if has_log else None)
    if has_log:
        summary.logged_changes_at = logged_changes_at(logged.values, logged.present, timing)
        rates = logged.values[logged.present]
        summary.logged_first, summary.logged_final = float(rates[0]), float(rates[-1])
    start = initial_lr
    if start is None:
        if not has_log:
            summary.note = (
                "no learning rate logged (learning_rate or lr); pass initial_lr to replay ReduceLROnPlateau"
            )
            return summary, []
        start = summary.logged_first
    values = _masked(monitored.values[:epochs_trained], monitored.present[:epochs_trained])
    logged_lr = None
    if has_log:
        logged_lr = _masked(logged.values[:epochs_trained], logged.present[:epochs_trained])
    result = policy.replay(values, initial_lr=start, logged_lr=logged_lr, logged_lr_timing=timing)
    summary.initial = start
    summary.replayed_reduced_at = list(result.reduced_at)
    summary.replayed_final = result.final_lr
    summary.epochs_replayed = len(result.learning_rates)
    summary.diverges_at = result.diverges_at
    return summary, list(result.learning_rates)


def _masked(values: np.ndarray, present: np.ndarray) -> list[float | None]:
    return [float(v) if p else None for v, p in zip(values.tolist(), present.tolist())]
