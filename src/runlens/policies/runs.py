"""Per-run series out of an epoch frame, and what stopping a run at some epoch saves and costs.

Shared by :func:`runlens.replay` and :func:`runlens.sweep`, which therefore count savings and regret
the same way:

- ``epochs_saved``: logged epochs after the stop; ``fraction_saved`` = that / epochs logged;
- ``time_saved_s``: wall time of the run's last logged epoch minus that of the stop epoch (the
  wall_time of an epoch row is when its values were written, i.e. the epoch's end);
- ``regret``: how much worse the value at the restored epoch is than the best value of the whole
  logged run, in the monitor's direction; 0 when nothing is lost, +inf when the restored value is a
  NaN, NA when the restored epoch logged no value or the run has no non-NaN value at all.

>>> import pandas as pd
>>> frame = pd.DataFrame({"run": ["a"] * 3, "epoch": [0, 1, 2], "wall_time": [10.0, 20.0, 30.0],
...                       "val_loss": pd.array([0.5, 0.4, 0.45], dtype="Float64")})
>>> [s.run for s in run_series(frame, "val_loss")]
['a']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.name_columns import name_codes
from runlens.policies.monitor import Direction, as_epoch_values
from runlens.times import unix_seconds

_KEYS = ("run", "epoch", "wall_time")


@dataclass(frozen=True)
class RunSeries:
    """One run's monitored values, indexed by epoch (0 .. last logged epoch)."""

    run: str
    values: np.ndarray  # float64, NaN where no value
    present: np.ndarray  # bool: the monitor was logged that epoch
    logged: np.ndarray  # bool: the run has a row for that epoch
    wall_time: np.ndarray  # float64, NaN where no row

    @property
    def epochs_logged(self) -> int:
        return int(self.logged.sum())

    def masked(self, n: int | None = None) -> pd.arrays.FloatingArray:
        """The first ``n`` values (all by default) as a policy's ``replay`` takes them: NA where
        nothing was logged, NaN where a NaN was."""
        return pd.arrays.FloatingArray(self.values[:n].copy(), ~self.present[:n])

    def best(self, direction: Direction) -> tuple[int, float] | None:
        """(epoch, value) of the best non-NaN value over the whole run (first on ties), or None."""
        usable = np.flatnonzero(self.present & ~np.isnan(self.values))
        if not len(usable):
            return None
        pick = np.argmin if direction == "min" else np.argmax
        epoch = int(usable[pick(self.values[usable])])
        return epoch, float(self.values[epoch])


def check_frame(frame: pd.DataFrame, *, column: str, option: str = "monitor") -> None:
    """Raise a RunlensError unless ``frame`` is an epoch frame holding ``column``."""
    if not isinstance(frame, pd.DataFrame):
        raise RunlensError(f"expected an epoch frame from runlens.read_epochs(), got {type(frame).__name__}")
    missing = [key for key in _KEYS if key not in frame.columns]
    if missing:
        raise RunlensError(
            f"the epoch frame lacks column(s) {', '.join(missing)}; pass a frame from runlens.read_epochs()"
        )
    if column not in frame.columns:
        metrics = [str(c) for c in frame.columns if c not in _KEYS]
        listed = ", ".join(metrics) if metrics else "none"
        raise RunlensError(f"{option} {column!r} is not a logged metric; metrics in these runs: {listed}")


def run_series(frame: pd.DataFrame, column: str, *, option: str = "monitor") -> list[RunSeries]:
    """Split an epoch frame into one :class:`RunSeries` of ``column`` per run, sorted by run name."""
    return runs_series(frame, [column], option=option)[column]


def runs_series(
    frame: pd.DataFrame, columns: list[str], *, option: str = "monitor"
) -> dict[str, list[RunSeries]]:
    """:func:`run_series` of several columns, the rows sorted once.

    Vectorised across runs: one sort of the rows, every run's arrays slices of one buffer per
    field (a sweep's 2,000 runs cost a few array operations, no Python work per row)."""
    for column in columns:
        check_frame(frame, column=column, option=option)
    epochs = frame["epoch"].to_numpy()
    if len(epochs) and (np.any(epochs < 0) or not np.all(np.mod(epochs, 1) == 0)):
        raise RunlensError("the epoch frame has epochs that are not whole numbers >= 0")
    if not len(epochs):
        return {column: [] for column in columns}
    codes, labels = name_codes(frame["run"])
    if np.any(codes < 0):
        raise RunlensError(
            "the epoch frame has rows without a run name; pass a frame from runlens.read_epochs()"
        )
    epoch = epochs.astype(np.int64)
    order = np.lexsort((epoch, codes))
    run, epoch = codes[order], epoch[order]
    repeated = np.flatnonzero((run[1:] == run[:-1]) & (epoch[1:] == epoch[:-1]))
    if len(repeated):
        raise RunlensError(
            f"run {labels[run[repeated[0]]]!r} has more than one row for an epoch; "
            "pass a frame from runlens.read_epochs()"
        )
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])
    ends = np.r_[starts[1:], len(run)]
    lengths = epoch[ends - 1] + 1  # epochs 0 .. the last logged one
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    at = np.repeat(offsets, ends - starts) + epoch
    size = int(lengths.sum())
    logged = np.zeros(size, dtype=bool)
    logged[at] = True
    wall_time = np.full(size, np.nan)
    wall_time[at] = unix_seconds(frame["wall_time"])[order]  # UTC datetimes (read_epochs) or Unix seconds
    names = [labels[i] for i in run[starts].tolist()]
    out = {}
    for column in columns:
        values, present = as_epoch_values(frame[column], name=column)
        flat_values, flat_present = np.full(size, np.nan), np.zeros(size, dtype=bool)
        flat_values[at], flat_present[at] = values[order], present[order]
        out[column] = [
            RunSeries(
                run=name,
                values=flat_values[o : o + n],
                present=flat_present[o : o + n],
                logged=logged[o : o + n],
                wall_time=wall_time[o : o + n],
            )
            for name, o, n in zip(names, offsets.tolist(), lengths.tolist())
        ]
    return out


@dataclass(frozen=True)
class Decision:
    """What a stopping policy did with one run: indexes into its epochs, -1 where none."""

    stopped: int
    restored: int
    best: int
    trained: int


def decide(policy: Any, series: RunSeries) -> Decision:
    """Replay the stopping ``policy`` on ``series`` through the protocol
    (:mod:`runlens.policies.base`): ``stopped_at``, ``best_at`` and, where the framework restores
    weights, ``restored_at`` (otherwise the model ends with the last trained epoch's weights)."""
    result = policy.replay(series.masked())
    n = len(series.values)
    stopped = result.stopped_at
    trained = n if stopped is None else stopped + 1
    last = trained - 1
    restored = getattr(result, "restored_at", last)
    return Decision(
        stopped=-1 if stopped is None else int(stopped),
        restored=-1 if restored is None else int(restored),
        best=-1 if result.best_at is None else int(result.best_at),
        trained=trained,
    )


def costs(
    series: list[RunSeries], stopped: np.ndarray, restored: np.ndarray, direction: Direction
) -> dict[str, np.ndarray]:
    """Savings and regret of stopping run ``i`` at ``stopped[i, j]`` (-1: never) and ending with
    ``restored[i, j]``'s weights, for every run and setting ``j`` at once.

    Vectorised over runs and settings: ``stopped`` and ``restored`` are (runs, settings) arrays
    of epochs; each result is one too (``series`` come from :func:`run_series`, so each has at
    least one logged epoch and its last epoch is logged).
    """
    stopped = np.asarray(stopped, dtype=np.int64).reshape(len(series), -1)
    restored = np.asarray(restored, dtype=np.int64).reshape(len(series), -1)
    flat = _Flat(series)
    offset = flat.offsets[:, None]
    total = flat.total[:, None]
    stops = stopped >= 0
    at_stop = offset + np.clip(stopped, 0, flat.lengths[:, None] - 1)
    upto = flat.cumulative_logged[at_stop] - flat.logged_before[:, None]  # logged epochs <= stop
    epochs_saved = np.where(stops, total - upto, 0)
    last_wall = flat.wall_time[flat.offsets + flat.lengths - 1][:, None]
    with np.errstate(invalid="ignore"):
        time_saved = np.where(stops, np.maximum(last_wall - flat.wall_time[at_stop], 0.0), 0.0)
    at_restored = offset + np.clip(restored, 0, flat.lengths[:, None] - 1)
    has_value = (restored >= 0) & flat.present[at_restored]
    restored_value = np.where(has_value, flat.values[at_restored], np.nan)
    _, best = flat.best(direction)
    best = best[:, None]
    with np.errstate(invalid="ignore"):
        gap = restored_value - best if direction == "min" else best - restored_value
        gap = np.where(restored_value == best, 0.0, gap)
        gap = np.where(np.isnan(restored_value), np.inf, np.maximum(gap, 0.0))
    regret = np.where(has_value & ~np.isnan(best), gap, np.nan)
    return {
        "epochs_saved": epochs_saved,
        "fraction_saved": epochs_saved / total,
        "time_saved_s": time_saved,
        "restored_value": restored_value,
        "restored_present": has_value,
        "regret": regret,
    }


def best_of_runs(series: list[RunSeries], direction: Direction) -> tuple[np.ndarray, np.ndarray]:
    """(epoch, value) of each run's best non-NaN value (first on ties, as :meth:`RunSeries.best`);
    epoch -1 and value NaN for a run without one."""
    return _Flat(series).best(direction)


class _Flat:
    """Runs' series laid end to end, for work across runs without a Python loop per run."""

    def __init__(self, series: list[RunSeries]) -> None:
        self.lengths = np.array([len(s.values) for s in series], dtype=np.int64)
        self.offsets = np.r_[0, np.cumsum(self.lengths)[:-1]].astype(np.int64)
        self.values = np.concatenate([s.values for s in series]) if series else np.empty(0)
        self.present = np.concatenate([s.present for s in series]) if series else np.empty(0, bool)
        logged = np.concatenate([s.logged for s in series]) if series else np.empty(0, bool)
        self.wall_time = np.concatenate([s.wall_time for s in series]) if series else np.empty(0)
        self.cumulative_logged = np.cumsum(logged)
        self.logged_before = self.cumulative_logged[self.offsets] - logged[self.offsets]
        self.total = self.cumulative_logged[self.offsets + self.lengths - 1] - self.logged_before

    def best(self, direction: Direction) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.lengths)
        epochs, values = np.full(n, -1, dtype=np.int64), np.full(n, np.nan)
        if not n:
            return epochs, values
        usable = self.present & ~np.isnan(self.values)
        worst = np.inf if direction == "min" else -np.inf
        masked = np.where(usable, self.values, worst)
        reduce = np.minimum if direction == "min" else np.maximum
        extreme = reduce.reduceat(masked, self.offsets)
        run = np.repeat(np.arange(n), self.lengths)
        hits = np.flatnonzero(usable & (masked == extreme[run]))
        found, first = np.unique(run[hits], return_index=True)
        epochs[found] = hits[first] - self.offsets[found]
        values[found] = self.values[hits[first]]
        return epochs, values
