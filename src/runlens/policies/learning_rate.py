"""The one learning-rate replay path: a plateau policy replayed beside the rate a run logged.

:func:`runlens.replay` (``lr_policy=``), the report's learning-rate lines and its comparison with
what a run's own callback decided (``runlens.json``) all call :func:`replay_lr`, so they start from
the same rate and find the same departures.

**The starting rate** -- one rule everywhere: the ``initial_lr`` given; else the run's first logged
rate (the ``learning_rate`` column, or ``lr`` as tf-keras 2.x logs it); else there is no replay, and
the result's ``note`` says why (:func:`runlens.replay` raises it as a :class:`RunlensError`, the
report shows it on the run). A logged rate is float32 (TensorBoard, Keras' optimizer), exactly
what Keras itself starts from; torch keeps float64 rates, so pass the configured rate as
``initial_lr`` for bit-exact torch schedules.

**Which rate a log holds** (``timing``) depends on the callback order and cannot be told from the
log: ``"used"`` (TensorBoard before ReduceLROnPlateau, Keras' usual order: the rate used during the
epoch) or ``"after"`` (ReduceLROnPlateau first: the rate after the epoch's decision).

>>> import runlens
>>> r = replay_lr(runlens.ReduceLROnPlateau(patience=1), [1.0, 1.0, 1.0], logged_lr=[0.1, 0.1, 0.01])
>>> r.initial_lr, r.result.reduced_at, r.diverges_at
(0.1, (1, 2), None)
>>> replay_lr(runlens.ReduceLROnPlateau(), [1.0]).note
'no learning rate logged (learning_rate or lr); pass initial_lr to replay ReduceLROnPlateau'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from runlens.arguments import LRTiming, choice, finite_number
from runlens.policies.base import LRResult, check_kind
from runlens.policies.monitor import as_epoch_values

__all__ = [
    "LR_COLUMNS",
    "LRReplay",
    "diverges_at",
    "logged_changes_at",
    "logged_changes_of_runs",
    "lr_column",
    "replay_lr",
]

# Where Keras logs the learning rate: Keras 3 ("learning_rate") and tf-keras 2.x ("lr"); HF
# Trainer's "learning_rate" too (read_evals undoes its train/ prefix).
LR_COLUMNS: tuple[str, ...] = ("learning_rate", "lr")
# Lightning's LearningRateMonitor logs "lr-<Optimizer>" ("lr-Adam"; "lr-Adam/pg1" for a second group).
LIGHTNING_LR_PREFIX = "lr-"


def lr_column(columns: Any) -> str | None:
    """The column holding a run's logged rate: ``learning_rate`` or ``lr``, else Lightning's first
    ``lr-<Optimizer>`` column (its first parameter group), else None.

    >>> lr_column(["val_loss", "lr-Adam", "epoch"]), lr_column(["loss"])
    ('lr-Adam', None)
    """
    names = [str(c) for c in columns]
    found = next((c for c in LR_COLUMNS if c in names), None)
    if found is None:
        found = next((c for c in sorted(names) if c.startswith(LIGHTNING_LR_PREFIX)), None)
    return found


NO_RATE = "no learning rate logged (learning_rate or lr); pass initial_lr to replay ReduceLROnPlateau"


@dataclass(frozen=True)
class LRReplay:
    """One run's learning-rate replay.

    Attributes:
        result: the policy's result (``learning_rates``, ``reduced_at``, ``final_lr``, ...); None
            when there was no rate to start from (``note`` says so).
        initial_lr: the rate the replay started from (float32-rounded when a Keras log gave it).
        diverges_at: the first index trained with a rate other than the logged one (compared in
            float32, as logs hold rates); values from there on were produced under a rate the
            replay would not have used. None: the schedules agree (or no rate was logged).
        note: why there is no replay, else None.
    """

    result: LRResult | None
    initial_lr: float | None
    diverges_at: int | None = None
    note: str | None = None


def check_initial_lr(initial_lr: Any) -> float | None:
    """``initial_lr`` as a float (None stays None), or a RunlensError naming it."""
    if initial_lr is None:
        return None
    return finite_number("initial_lr", initial_lr, minimum=0)


def starting_rate(initial_lr: float | None, logged: np.ndarray, present: np.ndarray) -> float | None:
    """The rule: ``initial_lr`` if given, else the first logged rate, else None."""
    if initial_lr is not None:
        return check_initial_lr(initial_lr)
    known = np.flatnonzero(present)
    return float(logged[known[0]]) if len(known) else None


def replay_lr(
    policy: Any,
    values: Any,
    *,
    initial_lr: float | None = None,
    logged_lr: Any = None,
    timing: LRTiming = "used",
) -> LRReplay:
    """Replay the learning-rate ``policy`` on ``values`` (per evaluation, None/NA: not logged),
    starting by the rule above, and compare it with ``logged_lr`` (per evaluation, or None)."""
    check_kind("lr_policy", policy, "lr", "a runlens.ReduceLROnPlateau")
    choice("lr_timing", timing, LRTiming)
    logged, present = (np.zeros(0), np.zeros(0, dtype=bool))
    if logged_lr is not None:
        logged, present = as_epoch_values(logged_lr, name="logged_lr")
    start = starting_rate(initial_lr, logged, present)
    if start is None:
        return LRReplay(result=None, initial_lr=None, note=NO_RATE)
    result = policy.replay(values, initial_lr=start)
    departs = None
    if present.any():
        departs = diverges_at(result.learning_rates, result.final_lr, logged, present, timing)
    return LRReplay(result=result, initial_lr=start, diverges_at=departs)


def diverges_at(
    rates: Any, final_lr: float, logged: np.ndarray, present: np.ndarray, timing: str
) -> int | None:
    """First index trained with a rate other than the logged schedule says (None: none).

    ``rates[i]`` is the replayed rate while value ``i`` was produced; with ``timing="used"``
    ``logged[i]`` is that rate, with ``"after"`` it is the rate of ``i + 1``. Both sides are
    compared in float32 (a logged rate is a float32).
    """
    n = len(rates)
    if len(logged) < n:
        present = np.append(present, np.zeros(n - len(logged), dtype=bool))
        logged = np.append(logged, np.full(n - len(logged), math.nan))
    shift = 0 if timing == "used" else 1
    expected = np.array([*list(rates)[shift:]] + [final_lr] * shift, dtype=np.float64)
    with np.errstate(over="ignore"):
        logged32 = logged[:n].astype(np.float32)
        expected32 = expected.astype(np.float32)
    differs = present[:n] & ~(logged32 == expected32)
    first = np.flatnonzero(differs)
    if not len(first) or first[0] + shift >= n:
        return None
    return int(first[0] + shift)


def logged_changes_at(values: np.ndarray, present: np.ndarray, timing: str) -> list[int]:
    """Indexes after whose value the logged rate changed.

    ``timing="used"``: the value logged for an epoch is the rate used during it, so a change first
    seen at epoch e happened at the end of e - 1. ``"after"``: the value is the rate after the
    epoch's decision, so the change happened at the end of e itself.

    >>> logged_changes_at(np.array([0.1, 0.1, 0.05, 0.05]), np.array([True] * 4), "used")
    [1]
    """
    epochs = np.flatnonzero(present)
    rates = values[epochs]
    changed = np.flatnonzero(rates[1:] != rates[:-1]) + 1
    shift = 1 if timing == "used" else 0
    return [int(epochs[i]) - shift for i in changed]


def logged_changes_of_runs(
    values: np.ndarray, present: np.ndarray, lengths: np.ndarray, timing: str
) -> list[list[int]]:
    """:func:`logged_changes_at` of many runs in one pass: ``values`` and ``present`` hold every
    run's, one run after the other, ``lengths`` long each (a change is a logged rate that differs
    from the same run's previous logged one; tested against :func:`logged_changes_at` run by run).

    >>> rates = np.array([0.1, 0.05, 1.0, 1.0, 0.5])
    >>> logged_changes_of_runs(rates, np.full(5, True), np.array([2, 3]), "after")
    [[1], [2]]
    """
    offsets = np.cumsum(lengths) - lengths
    at = np.flatnonzero(present)
    run = np.repeat(np.arange(len(lengths)), lengths)[at]
    rates = values[at]
    changed = np.flatnonzero((run[1:] == run[:-1]) & (rates[1:] != rates[:-1])) + 1
    shift = 1 if timing == "used" else 0
    epochs = (at[changed] - offsets[run[changed]] - shift).tolist()
    cut = np.searchsorted(run[changed], np.arange(len(lengths) + 1)).tolist()
    return [epochs[cut[k] : cut[k + 1]] for k in range(len(lengths))]
