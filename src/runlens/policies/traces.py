"""Keras' EarlyStopping over many runs at once: the per-epoch state of every run in one pass.

:meth:`runlens.EarlyStopping.replay` is the reference, a loop that reads like Keras'
``EarlyStopping.on_epoch_end`` (``keras/src/callbacks/early_stopping.py``). :class:`Traces` takes
the same steps for many runs together: the runs are the rows of a ``(runs, epochs)`` array, padded
with ``present=False`` (an epoch without a value changes nothing, so padding is inert), and one loop
walks the epochs with numpy over the runs. The comparisons are the reference's own primitives,
:meth:`Monitor.lhs`, :meth:`Monitor.threshold` and :meth:`Monitor.better` (element-wise on arrays),
so both paths decide in the same precision for every semantics.

Nothing in that loop depends on ``patience`` except the stop itself, so one pass answers every
patience: a run stops at the first non-improving monitored epoch (after epoch 0) whose ``wait``
reaches it. :func:`runlens.sweep` and :func:`runlens.replay` (hence the report) decide every run
this way; tests/test_early_stopping_traces.py holds it to the reference loop.

>>> from runlens import EarlyStopping
>>> values = np.array([[3.0, 2.0, 4.0, 5.0], [1.0, 0.5, np.nan, np.nan]])
>>> present = np.array([[True] * 4, [True, True, False, False]])
>>> traces = Traces.build(EarlyStopping(), values, present, [4, 2])
>>> stopped, restored = traces.decisions([0, 1, 2])
>>> stopped.tolist(), restored.tolist(), traces.best_epochs(stopped).tolist()
([[2, 2, 3], [-1, -1, -1]], [[2, 2, 3], [1, 1, 1]], [[1, 1, 1], [1, 1, 1]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from runlens.policies.early_stopping import EarlyStopping

__all__ = ["Traces"]


@dataclass(frozen=True)
class Traces:
    """Per-epoch state of EarlyStopping passes over many runs, as if none of them ever stopped.

    Every array but ``lengths`` is ``(runs, epochs)``; row ``i`` holds run ``i``'s first
    ``lengths[i]`` epochs, then padding. ``best_epoch_at``/``weights_epoch_at`` hold -1 while unset;
    ``candidate_wait_max`` is the largest ``wait`` of a stop candidate (a monitored, non-improving
    epoch after epoch 0) up to each epoch, -1 before the first.
    """

    values: np.ndarray
    present: np.ndarray
    lengths: np.ndarray
    improved: np.ndarray
    wait: np.ndarray
    best_epoch_at: np.ndarray
    weights_epoch_at: np.ndarray
    candidate_wait_max: np.ndarray
    restore_best_weights: bool

    @classmethod
    def build(cls, policy: EarlyStopping, values: Any, present: Any, lengths: Any = None) -> Traces:
        """The pass of ``policy`` over each row of ``values`` (float64, NaN: a logged NaN) where
        ``present`` (bool: a value was logged that epoch); ``lengths``: each run's epochs (default:
        the full width)."""
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        present = np.atleast_2d(np.asarray(present, dtype=bool))
        runs, n = values.shape
        lengths = np.full(runs, n, dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
        monitor = policy.monitor
        lhs, thresholds = monitor.lhs(values), monitor.threshold(values)
        if policy.baseline is None:
            resets = np.ones((runs, n), dtype=bool)
        else:
            resets = np.asarray(monitor.better(lhs, float(monitor.threshold(policy.baseline))))
        epochs = np.arange(n)
        monitored = present & (epochs >= policy.start_from_epoch)  # else: Keras returns at once
        improved = np.zeros((runs, n), dtype=bool)
        wait_at = np.zeros((runs, n), dtype=np.int64)
        best_at = np.full((runs, n), -1, dtype=np.int64)
        weights_at = np.full((runs, n), -1, dtype=np.int64)
        start = monitor.initial_threshold  # None (keras3): the first monitored value always improves
        threshold = np.full(runs, np.nan if start is None else start)
        has_best = np.full(runs, start is not None)
        wait = np.zeros(runs, dtype=np.int64)
        best_epoch = np.full(runs, -1, dtype=np.int64)
        weights_epoch = np.full(runs, -1, dtype=np.int64)
        for epoch in range(n):
            seen = monitored[:, epoch]
            weights_epoch[seen & (weights_epoch < 0)] = epoch  # the first monitored weights in any case
            wait += seen
            better = seen & (~has_best | monitor.better(lhs[:, epoch], threshold))
            threshold = np.where(better, thresholds[:, epoch], threshold)
            has_best |= better
            best_epoch[better] = epoch
            weights_epoch[better] = epoch
            wait[better & resets[:, epoch]] = 0  # a best that misses the baseline keeps counting
            improved[:, epoch] = better
            wait_at[:, epoch], best_at[:, epoch], weights_at[:, epoch] = wait, best_epoch, weights_epoch
        candidates = monitored & ~improved & (epochs > 0)
        return cls(
            values=values,
            present=present,
            lengths=lengths,
            improved=improved,
            wait=wait_at,
            best_epoch_at=best_at,
            weights_epoch_at=weights_at,
            candidate_wait_max=np.maximum.accumulate(np.where(candidates, wait_at, -1), axis=1)
            if n
            else wait_at,
            restore_best_weights=policy.restore_best_weights,
        )

    def stopped_epochs(self, patience: Any) -> np.ndarray:
        """Stop epoch of each run (rows) for each patience (columns), -1: never. It is the first
        candidate whose ``wait`` reaches the patience, i.e. the first epoch where
        ``candidate_wait_max`` does (that running maximum only grows at candidates)."""
        patience = np.atleast_1d(np.asarray(patience, dtype=np.int64))
        n = self.values.shape[1]
        stopped = np.empty((len(self.lengths), len(patience)), dtype=np.int64)
        for j, p in enumerate(patience.tolist()):
            stopped[:, j] = (self.candidate_wait_max < p).sum(axis=1)
        stopped[stopped >= n] = -1
        return stopped

    def _at(self, state: np.ndarray, epochs: np.ndarray) -> np.ndarray:
        """``state[run, epochs[run, j]]`` (epochs >= 0) for every run and column."""
        if not state.shape[1]:
            return np.full(epochs.shape, -1, dtype=np.int64)
        return np.take_along_axis(state, np.maximum(epochs, 0), axis=1)

    def restored_epochs(self, stopped: np.ndarray) -> np.ndarray:
        """Epoch whose weights each run's model holds at the end, per stop epoch (-1: no epochs):
        the last trained epoch, or with ``restore_best_weights`` the best epoch's weights (Keras 3
        and tf-keras >= 2.16 restore at train end, stop or no stop)."""
        last = np.where(stopped >= 0, stopped, self.lengths[:, None] - 1)
        if not self.restore_best_weights:
            return last
        kept = self._at(self.weights_epoch_at, last)
        return np.where((kept >= 0) & (last >= 0), kept, last)

    def best_epochs(self, stopped: np.ndarray) -> np.ndarray:
        """The best epoch when training ends, per stop epoch (-1: none was ever the best)."""
        last = np.where(stopped >= 0, stopped, self.lengths[:, None] - 1)
        best = self._at(self.best_epoch_at, last)
        return np.where(last >= 0, best, -1)

    def decisions(self, patience: Any) -> tuple[np.ndarray, np.ndarray]:
        """(stop epoch, restored epoch) of each run (rows) for each patience (columns); -1: none."""
        stopped = self.stopped_epochs(patience)
        return stopped, self.restored_epochs(stopped)
