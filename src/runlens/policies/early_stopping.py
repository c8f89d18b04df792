"""EarlyStopping replayed on logged values, deciding exactly as Keras' callback decides.

:meth:`EarlyStopping.replay` is the reference: a loop that reads like Keras'
``EarlyStopping.on_epoch_end`` (``keras/src/callbacks/early_stopping.py``). Per epoch with a value
(and ``epoch >= start_from_epoch``): ``wait += 1``; if the value improves on the best (see
:mod:`runlens.policies.monitor`), it becomes the best and ``wait`` drops to 0 when it also beats
``baseline`` (if one is set); otherwise training stops when ``wait >= patience`` and ``epoch > 0``.
Epochs without a value change nothing.

Nothing in that loop depends on ``patience`` except the stop itself, so one pass over the values (a
:class:`Trace`, from :meth:`EarlyStopping.trace`) answers every patience at once: it stops at the
first non-improving epoch whose ``wait`` reaches the patience. :meth:`EarlyStopping.trace_runs`
takes that pass for many runs at once (:mod:`runlens.policies.traces`): :func:`runlens.sweep` and
:func:`runlens.replay` (hence the report) decide every run that way; tests/test_early_stopping_trace.py
and tests/test_early_stopping_traces.py hold both to the reference loop.

>>> es = EarlyStopping(monitor="val_loss", patience=2)
>>> r = es.replay([0.9, 0.7, 0.8, None, 0.75, 0.6])
>>> r.stopped_epoch, r.best_epoch, r.best_value, r.epochs_trained
(4, 1, 0.7, 5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from runlens.arguments import Semantics, count
from runlens.errors import RunlensError
from runlens.options import SWEEP_PATIENCE
from runlens.policies.base import PolicyKind
from runlens.policies.monitor import Monitor, MonitoredPolicy, as_epoch_values
from runlens.policies.traces import Traces

__all__ = ["EarlyStopping", "EarlyStoppingResult", "Trace", "Traces"]


@dataclass(frozen=True)
class EarlyStoppingResult:
    """What EarlyStopping would have done with one run's values (epochs are 0-based).

    Attributes:
        stopped_epoch: epoch at whose end training stops; None when it never stops.
        best_epoch: epoch of the best value so far when training ends (None: no value was ever
            the best, e.g. no monitored epoch, or keras2 with only NaNs).
        best_value: the value at ``best_epoch`` (None with it).
        restored_epoch: epoch whose weights the model holds when ``fit`` returns: the best epoch
            with ``restore_best_weights`` (Keras 3 and tf-keras >= 2.16 restore whenever a best was
            recorded, stop or no stop; keras2 falls back to the first monitored epoch when nothing
            ever improved), else the last trained epoch. None when there are no epochs.
        restored_value: the value logged at ``restored_epoch`` (None when none was logged there).
        epochs_trained: number of epochs fit runs (``stopped_epoch + 1``, or all of them).
        wait: Keras' ``wait`` counter after each trained epoch.
        improved_at: epochs at which the best changed.
    """

    stopped_epoch: int | None
    best_epoch: int | None
    best_value: float | None
    restored_epoch: int | None
    restored_value: float | None
    epochs_trained: int
    wait: tuple[int, ...]
    improved_at: tuple[int, ...]

    @property
    def stopped_at(self) -> int | None:
        """The policy protocol's name for ``stopped_epoch`` (one value per epoch: the same number)."""
        return self.stopped_epoch

    @property
    def best_at(self) -> int | None:
        """The policy protocol's name for ``best_epoch``."""
        return self.best_epoch

    @property
    def restored_at(self) -> int | None:
        """The policy protocol's name for ``restored_epoch``."""
        return self.restored_epoch


class EarlyStopping(MonitoredPolicy):
    """Replay of ``keras.callbacks.EarlyStopping`` (same arguments and defaults, keyword-only).

    Args:
        monitor: the logged metric, e.g. ``"val_loss"``.
        min_delta: smallest change that counts as an improvement (its sign is ignored, as Keras does).
        patience: epochs without improvement before stopping (0 and 1 behave the same, as in Keras).
        mode: ``"auto"``, ``"min"`` or ``"max"``; see :func:`runlens.policies.monitor.metric_direction`.
        baseline: training stops unless the monitored value beats this (None: no baseline).
        restore_best_weights: whether the model gets the best epoch's weights back at the end.
        start_from_epoch: epochs before this one are not monitored at all.
        semantics: ``"keras3"`` (Keras 3.x), ``"keras2"`` (tf-keras 2.x) or ``"keras2-numpy1"``
            (tf-keras on NumPy 1.x: decides as keras2). runlens' own setting, not Keras'.

    >>> EarlyStopping(monitor="val_accuracy", patience=1).replay([0.5, 0.6, 0.6]).stopped_epoch
    2
    """

    kind: ClassVar[PolicyKind] = "stopping"
    traced: ClassVar[str] = "patience"  # trace() answers every patience in one pass
    sweep_grid: ClassVar[dict[str, tuple]] = {"patience": SWEEP_PATIENCE}

    def __init__(
        self,
        *,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        semantics: Semantics = "keras3",
    ) -> None:
        self.monitor = Monitor.create(
            monitor, mode=mode, min_delta=min_delta, semantics=semantics, callback="EarlyStopping"
        )
        self.patience = count("patience", patience)
        self.start_from_epoch = count("start_from_epoch", start_from_epoch)
        if baseline is not None and (
            isinstance(baseline, bool) or not isinstance(baseline, (int, float)) or math.isnan(baseline)
        ):
            raise RunlensError(f"baseline must be a number or None, got {baseline!r}")
        self.baseline = None if baseline is None else float(baseline)
        if not isinstance(restore_best_weights, (bool, np.bool_)):
            raise RunlensError(f"restore_best_weights must be True or False, got {restore_best_weights!r}")
        self.restore_best_weights = bool(restore_best_weights)
        self.mode = mode

    def settings(self) -> dict[str, Any]:
        """The constructor's arguments, in Keras' order."""
        m = self.monitor
        return {
            "monitor": m.name,
            "min_delta": m.min_delta,
            "patience": self.patience,
            "mode": self.mode,
            "baseline": self.baseline,
            "restore_best_weights": self.restore_best_weights,
            "start_from_epoch": self.start_from_epoch,
            "semantics": m.semantics,
        }

    def preference(self) -> tuple:
        """Among settings that save as much, the sweep recommends the smallest: the larger
        patience, then the smaller ``abs(min_delta)``, the earlier ``start_from_epoch``, no
        baseline, the smaller baseline."""
        has_baseline = self.baseline is not None
        return (
            -self.patience,
            abs(self.monitor.min_delta),
            self.start_from_epoch,
            has_baseline,
            self.baseline if has_baseline else 0.0,
        )

    def replay(self, values: Any) -> EarlyStoppingResult:
        """Replay on per-epoch values (None/pd.NA: no value that epoch, NaN: a logged NaN; a pandas
        Series marks the missing ones with ``isna()``, see :func:`~runlens.policies.monitor.as_epoch_values`).

        The reference loop, as Keras' ``on_epoch_end``; comparisons are prepared once per series
        (:meth:`Monitor.lhs`/:meth:`Monitor.threshold`, exact in the comparison's precision).

        >>> EarlyStopping(patience=1, restore_best_weights=True).replay([3, 2, 4]).restored_epoch
        1
        """
        floats, present = as_epoch_values(values)
        m = self.monitor
        lhs, thresholds = m.lhs(floats).tolist(), m.threshold(floats).tolist()
        baseline = None if self.baseline is None else float(m.threshold(self.baseline))
        best = m.initial_threshold
        wait, best_epoch, weights_epoch, stopped = 0, None, None, None
        waits: list[int] = []
        improved: list[int] = []
        for epoch, logged in enumerate(present.tolist()):
            if logged and epoch >= self.start_from_epoch:  # else: Keras returns at once
                if weights_epoch is None:
                    weights_epoch = epoch  # restore_best_weights keeps the first monitored weights
                wait += 1
                if m.better(lhs[epoch], best):
                    best, best_epoch, weights_epoch = thresholds[epoch], epoch, epoch
                    improved.append(epoch)
                    if baseline is None or m.better(lhs[epoch], baseline):
                        wait = 0
                elif wait >= self.patience and epoch > 0:
                    stopped = epoch  # model.stop_training = True
            waits.append(wait)
            if stopped is not None:
                break
        trained = len(waits)
        last = trained - 1 if trained else None
        restored = last
        if self.restore_best_weights and weights_epoch is not None:
            restored = weights_epoch  # Keras 3 / tf-keras >= 2.16: at train end, stop or no stop
        return EarlyStoppingResult(
            stopped_epoch=stopped,
            best_epoch=best_epoch,
            best_value=_value(floats, present, best_epoch),
            restored_epoch=restored,
            restored_value=_value(floats, present, restored),
            epochs_trained=trained,
            wait=tuple(waits),
            improved_at=tuple(improved),
        )

    def trace(self, values: Any) -> Trace:
        """One pass over the values that answers every patience (the fast path; see :class:`Trace`).

        >>> EarlyStopping(patience=1).trace([3, 2, 4, 5]).decisions([0, 1, 2])[0].tolist()
        [2, 2, 3]
        """
        floats, present = as_epoch_values(values)
        return Trace(Traces.build(self, floats, present))

    def trace_runs(self, values: np.ndarray, present: np.ndarray, lengths: np.ndarray) -> Traces:
        """The pass of :meth:`trace` over many runs at once: rows of ``(runs, epochs)`` arrays,
        padded with ``present=False`` past each run's ``lengths`` (see :class:`Traces`).

        >>> t = EarlyStopping(patience=1).trace_runs(np.array([[3.0, 2, 4, 5]]), np.ones((1, 4), bool), [4])
        >>> t.decisions([0, 1, 2])[0].tolist()
        [[2, 2, 3]]
        """
        return Traces.build(self, values, present, lengths)


def _value(values: np.ndarray, present: np.ndarray, epoch: int | None) -> float | None:
    if epoch is None or epoch < 0 or not present[epoch]:
        return None
    return float(values[epoch])


def _run_field(name: str) -> property:
    """A :class:`Trace` attribute: the one run's row of the :class:`Traces` array ``name``."""
    return property(lambda trace: getattr(trace.runs, name)[0], doc=f"``Traces.{name}`` of the run.")


@dataclass(frozen=True)
class Trace:
    """Per-epoch state of one EarlyStopping pass over all values, as if it never stopped: one
    run's :class:`~runlens.policies.traces.Traces` (the pass is computed there, for any number of
    runs), as epoch-indexed arrays.

    ``best_epoch_at``/``weights_epoch_at`` hold -1 while unset. :meth:`decisions` answers many
    patiences at once; :meth:`result` gives the full result of one (equal to
    :meth:`EarlyStopping.replay` with that patience).

    >>> EarlyStopping(patience=1).trace([3, 2, 4, 5]).wait.tolist()
    [0, 0, 1, 2]
    """

    runs: Traces

    values = _run_field("values")
    present = _run_field("present")
    improved = _run_field("improved")
    wait = _run_field("wait")
    best_epoch_at = _run_field("best_epoch_at")
    weights_epoch_at = _run_field("weights_epoch_at")

    def decisions(self, patience: Any) -> tuple[np.ndarray, np.ndarray]:
        """(stop epoch, restored epoch) for each patience; -1 where there is none."""
        stopped, restored = self.runs.decisions(patience)
        return stopped[0], restored[0]

    def result(self, patience: int) -> EarlyStoppingResult:
        """The whole result for one patience, from the trace."""
        stopped_arr = self.runs.stopped_epochs([patience])
        stopped = int(stopped_arr[0, 0])
        restored = int(self.runs.restored_epochs(stopped_arr)[0, 0])
        best = int(self.runs.best_epochs(stopped_arr)[0, 0])
        trained = stopped + 1 if stopped >= 0 else len(self.values)
        return EarlyStoppingResult(
            stopped_epoch=stopped if stopped >= 0 else None,
            best_epoch=best if best >= 0 else None,
            best_value=_value(self.values, self.present, best),
            restored_epoch=restored if restored >= 0 else None,
            restored_value=_value(self.values, self.present, restored),
            epochs_trained=trained,
            wait=tuple(self.wait[:trained].tolist()),
            improved_at=tuple(np.flatnonzero(self.improved[:trained]).tolist()),
        )
