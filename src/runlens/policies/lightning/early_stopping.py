"""Lightning's ``EarlyStopping`` replayed on logged values, deciding as the callback decides.

Read from ``lightning/pytorch/callbacks/early_stopping.py`` (``EarlyStopping.__init__``,
``_run_early_stopping_check`` and ``_evaluate_stopping_criteria``). Per validation check that logged
the monitor (a check without it is skipped, as ``strict=False`` does), in this order:

1. ``check_finite`` and the value is not finite: stop (``reason="not_finite"``);
2. ``stopping_threshold`` set and the value beats it: stop (``"stopping_threshold"``);
3. ``divergence_threshold`` set and the value is worse than it: stop (``"divergence_threshold"``);
4. ``value - min_delta`` beats the best: it becomes the best, ``wait = 0``;
5. otherwise ``wait += 1``, and stop when ``wait >= patience`` (``"patience"``).

Steps 1-3 change neither the best nor ``wait``. Everything happens in float32 as Lightning's tensors
do: the value is a float32 tensor, Python numbers it meets (``min_delta``, the thresholds) are
rounded to float32 first, ``best`` starts at float32 +/-inf. ``min_delta`` is negated in min mode
and kept as given in max mode: a negative ``min_delta`` makes a slightly worse value count as an
improvement. ``patience`` counts validation checks, not epochs.

A stop is sticky: ``Trainer(min_epochs=...)`` (or ``min_steps``) only delays it, and while it is
delayed the callback keeps checking (best, ``wait`` and the reason go on changing). ``replay``'s
``can_stop_from`` says from which check a stop may take effect; :func:`can_stop_from` works it out
from the checks' epochs and ``min_epochs``.

>>> es = EarlyStopping("val_loss", patience=2)
>>> r = es.replay([0.9, 0.7, None, 0.8, 0.75])
>>> r.stopped_at, r.best_at, r.reason, r.wait
(4, 1, 'patience', (0, 0, 0, 1, 2))
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from runlens.arguments import choice, count, finite_number, flag, number
from runlens.errors import RunlensError
from runlens.options import SWEEP_PATIENCE
from runlens.policies.base import Direction, PolicyBase, PolicyKind
from runlens.policies.monitor import as_epoch_values

__all__ = ["REASONS", "EarlyStopping", "LightningStoppingResult", "can_stop_from"]

Reason = Literal["patience", "not_finite", "stopping_threshold", "divergence_threshold"]
# Lightning's EarlyStoppingReason members, by the names runlens gives them.
REASONS: tuple[str, ...] = ("patience", "not_finite", "stopping_threshold", "divergence_threshold")

_F32 = np.float32


@dataclass(frozen=True)
class LightningStoppingResult:
    """What Lightning's EarlyStopping would have done with one run's checks (0-based indexes).

    Attributes:
        stopped_at: the check after which training stops (None: it never stops).
        signaled_at: the check that first decided to stop; earlier than ``stopped_at`` only when
            ``can_stop_from`` delayed the stop (None: no check decided to stop).
        best_at: the check whose value is the callback's ``best_score`` when training ends (None:
            no value ever improved on +/-inf).
        best_value: that value, as the float32 Lightning held (None with ``best_at``).
        reason: why the last check that decided to stop did so (the callback's final
            ``stopping_reason``): ``"patience"``, ``"not_finite"``, ``"stopping_threshold"``,
            ``"divergence_threshold"``, or None.
        wait: the callback's ``wait_count`` after each check run.
        improved_at: checks at which the best changed.
    """

    stopped_at: int | None
    signaled_at: int | None
    best_at: int | None
    best_value: float | None
    reason: Reason | None
    wait: tuple[int, ...]
    improved_at: tuple[int, ...]


class EarlyStopping(PolicyBase):
    """Replay of ``lightning.pytorch.callbacks.EarlyStopping`` (same arguments and defaults).

    ``verbose``, ``strict``, ``check_on_train_epoch_end`` and ``log_rank_zero_only`` decide nothing
    a replay can see and are left out: a check without the monitor is skipped (``strict=False``;
    with ``strict=True`` Lightning raises there instead).

    Args:
        monitor: the logged name, e.g. ``"val_loss"``.
        min_delta: the change that counts as an improvement (sign kept, see the module docstring).
        patience: checks without improvement before stopping.
        mode: ``"min"`` or ``"max"``.
        check_finite: stop on a NaN or infinite value.
        stopping_threshold: stop as soon as the value beats this.
        divergence_threshold: stop as soon as the value is worse than this.

    >>> EarlyStopping("val_acc", mode="max", stopping_threshold=0.9).replay([0.5, 0.95]).reason
    'stopping_threshold'
    """

    framework: ClassVar[str] = "lightning"
    kind: ClassVar[PolicyKind] = "stopping"
    sweep_grid: ClassVar[dict[str, tuple]] = {"patience": SWEEP_PATIENCE}

    def __init__(
        self,
        monitor: str,
        *,
        min_delta: float = 0.0,
        patience: int = 3,
        mode: Direction = "min",
        check_finite: bool = True,
        stopping_threshold: float | None = None,
        divergence_threshold: float | None = None,
    ) -> None:
        if not isinstance(monitor, str) or not monitor:
            raise RunlensError(f"monitor must be a logged name such as 'val_loss', got {monitor!r}")
        self.monitor = monitor
        self.min_delta = finite_number("min_delta", min_delta)
        self.patience = count("patience", patience)
        self.mode = choice("mode", mode, Direction)  # as Lightning's EarlyStopping, which raises too
        self.check_finite = flag("check_finite", check_finite)
        self.stopping_threshold = number("stopping_threshold", stopping_threshold, none=True)
        self.divergence_threshold = number("divergence_threshold", divergence_threshold, none=True)

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments, in Lightning's order."""
        return {
            "monitor": self.monitor,
            "min_delta": self.min_delta,
            "patience": self.patience,
            "mode": self.mode,
            "check_finite": self.check_finite,
            "stopping_threshold": self.stopping_threshold,
            "divergence_threshold": self.divergence_threshold,
        }

    @property
    def metric(self) -> str:
        """The name ``self.log`` gave the monitored value."""
        return self.monitor

    @property
    def direction(self) -> Direction:
        return self.mode  # type: ignore[return-value]

    def preference(self) -> tuple:
        """Among settings that save as much, the sweep prefers more patience, then a smaller
        ``abs(min_delta)``."""
        return (-self.patience, abs(self.min_delta))

    def replay(self, values: Any, *, can_stop_from: int = 0) -> LightningStoppingResult:
        """Replay on one value per validation check (None/pd.NA: a check without the monitor).

        ``can_stop_from``: the first check after which a stop can end training (0: any check).
        Until then a stop decided by a check is remembered and the checks go on, as under
        ``Trainer(min_epochs=...)``; see :func:`can_stop_from`.

        >>> EarlyStopping("val_loss", patience=1).replay([1.0, 2.0, 0.5, 3.0], can_stop_from=2)
        LightningStoppingResult(stopped_at=2, signaled_at=1, best_at=2, best_value=0.5, reason='patience', wait=(0, 1, 0), improved_at=(0, 2))
        """
        floats, present = as_epoch_values(values, name="values")
        first_stop = count("can_stop_from", can_stop_from)
        with np.errstate(over="ignore"):
            currents = floats.astype(_F32)  # self.log(value): a float32 tensor
        # EarlyStopping.__init__: min_delta *= 1 (max) or -1 (min); best_score = tensor(+/-inf)
        better = np.greater if self.mode == "max" else np.less
        min_delta = _f32(self.min_delta if self.mode == "max" else -self.min_delta)
        best = _f32(-math.inf if self.mode == "max" else math.inf)
        stopping = None if self.stopping_threshold is None else _f32(self.stopping_threshold)
        divergence = None if self.divergence_threshold is None else _f32(self.divergence_threshold)
        wait, best_at, reason, signaled_at, stopped_at = 0, None, None, None, None
        waits: list[int] = []
        improved_at: list[int] = []
        with np.errstate(over="ignore", invalid="ignore"):
            for check, current in enumerate(currents):
                if present[check]:  # _validate_condition_metric: no monitor -> skipped
                    should_stop, why = False, None
                    if self.check_finite and not np.isfinite(current):
                        should_stop, why = True, "not_finite"
                    elif stopping is not None and better(current, stopping):
                        should_stop, why = True, "stopping_threshold"
                    elif divergence is not None and better(-current, -divergence):
                        should_stop, why = True, "divergence_threshold"
                    elif better(current - min_delta, best):
                        best, best_at, wait = current, check, 0
                        improved_at.append(check)
                    else:
                        wait += 1
                        if wait >= self.patience:
                            should_stop, why = True, "patience"
                    if should_stop:
                        reason = why
                        signaled_at = check if signaled_at is None else signaled_at
                waits.append(wait)
                if signaled_at is not None and check >= first_stop:  # trainer.should_stop is sticky
                    stopped_at = check
                    break
        return LightningStoppingResult(
            stopped_at=stopped_at,
            signaled_at=signaled_at,
            best_at=best_at,
            best_value=None if best_at is None else float(best),
            reason=reason,
            wait=tuple(waits),
            improved_at=tuple(improved_at),
        )

    def replay_runs(self, values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`replay` of many runs at once, each from its first check (``can_stop_from`` 0),
        as :func:`runlens.policies.runs.decide_runs` asks: ``values`` and ``present`` are
        ``(runs, checks)`` arrays (past a run's length, ``present`` is False). Gives, per run,
        the check it stops at and its best check, -1 where none (Lightning restores no weights).
        The checks are walked once, numpy over the runs, deciding as :meth:`replay` does (the
        same float32 values and comparisons); tests/test_stopping_in_one_pass.py holds it to
        :meth:`replay` run by run.

        >>> EarlyStopping("val_loss", patience=1).replay_runs(
        ...     np.array([[1.0, 2.0, 0.5], [3.0, 2.0, 1.0]]), np.ones((2, 3), bool))
        (array([ 1, -1]), array([0, 2]))
        """
        runs, checks = values.shape
        with np.errstate(over="ignore"):
            currents = values.astype(_F32)
        better = np.greater if self.mode == "max" else np.less
        min_delta = _f32(self.min_delta if self.mode == "max" else -self.min_delta)
        best = np.full(runs, _f32(-math.inf if self.mode == "max" else math.inf), dtype=_F32)
        wait = np.zeros(runs, dtype=np.int64)
        best_at = np.full(runs, -1, dtype=np.int64)
        stopped = np.full(runs, -1, dtype=np.int64)
        with np.errstate(over="ignore", invalid="ignore"):
            for check in range(checks):
                current = currents[:, check]
                judged = present[:, check] & (stopped < 0)  # checks after a stop never happen
                stop = np.zeros(runs, dtype=bool)
                for hit in self._early_stops(current, better):
                    hit &= judged
                    stop |= hit
                    judged &= ~hit
                improved = judged & better(current - min_delta, best)
                best = np.where(improved, current, best)
                best_at[improved] = check
                wait = np.where(improved, 0, wait + judged)
                stop |= judged & ~improved & (wait >= self.patience)
                stopped[stop] = check
        return stopped, best_at

    def _early_stops(self, current: np.ndarray, better: Any) -> list[np.ndarray]:
        """The checks that stop before any improvement is weighed, in :meth:`replay`'s order: a
        value not finite, past the stopping threshold, past the divergence threshold."""
        found = []
        if self.check_finite:
            found.append(~np.isfinite(current))
        if self.stopping_threshold is not None:
            found.append(better(current, _f32(self.stopping_threshold)))
        if self.divergence_threshold is not None:
            found.append(better(-current, -_f32(self.divergence_threshold)))
        return found


def can_stop_from(epochs: Sequence[float] | Any, min_epochs: int | None) -> int:
    """The first check after which a stop can end training under ``Trainer(min_epochs=...)``.

    ``epochs`` holds the epoch (0-based, ``trainer.current_epoch``) of every validation check in
    order, as the ``epoch`` column of :func:`runlens.read_evals` does. Lightning's fit loop stops
    once ``trainer.should_stop`` is set and ``min_epochs`` epochs have been processed
    (``FitLoop._can_stop_early``): at the end of epoch ``min_epochs - 1`` or, inside a later epoch,
    right after the check. So a stop flagged at or before check ``i`` ends training before check
    ``i + 1`` exactly when that next check lies in epoch ``min_epochs`` or later; the answer is the
    number of checks in earlier epochs, less one (0 when none). ``min_steps`` works alike with
    global steps; runlens leaves it to the caller.

    >>> can_stop_from([0, 1, 2, 3, 4], min_epochs=3)    # one check per epoch
    2
    >>> can_stop_from([1, 3, 5, 7], min_epochs=3)       # check_val_every_n_epoch=2
    0
    >>> can_stop_from([0, 0, 1, 1, 2, 2], min_epochs=2)  # val_check_interval=0.5
    3
    """
    if min_epochs is None:
        return 0
    min_epochs = count("min_epochs", min_epochs)
    epochs = np.asarray(epochs, dtype=np.float64)
    if np.isnan(epochs).any():
        raise RunlensError("epochs must give the epoch of every check (found a missing one)")
    return max(int(np.count_nonzero(epochs < min_epochs)) - 1, 0)


def _f32(x: float) -> np.float32:
    """A Python number as torch rounds it to meet a float32 tensor (overflow -> inf)."""
    with np.errstate(over="ignore"):
        return _F32(x)
