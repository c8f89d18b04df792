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
from runlens.name_columns import as_names
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
    check_frame(frame, column=column, option=option)
    epochs = frame["epoch"].to_numpy()
    if len(epochs) and (np.any(epochs < 0) or not np.all(np.mod(epochs, 1) == 0)):
        raise RunlensError("the epoch frame has epochs that are not whole numbers >= 0")
    runs = as_names(frame["run"]).to_numpy()
    values, present = as_epoch_values(frame[column], name=column)
    wall = unix_seconds(frame["wall_time"])  # UTC datetimes (read_epochs) or Unix seconds
    order = np.lexsort((epochs, runs))
    names, starts = np.unique(runs[order], return_index=True)
    bounds = np.append(starts, len(order))
    out = []
    for i, run in enumerate(names):
        rows = order[bounds[i] : bounds[i + 1]]
        ep = epochs[rows].astype(np.int64)
        if len(np.unique(ep)) != len(ep):
            raise RunlensError(
                f"run {run!r} has more than one row for an epoch; pass a frame from runlens.read_epochs()"
            )
        n = int(ep.max()) + 1
        series = RunSeries(
            run=str(run),
            values=np.full(n, np.nan),
            present=np.zeros(n, dtype=bool),
            logged=np.zeros(n, dtype=bool),
            wall_time=np.full(n, np.nan),
        )
        series.values[ep] = values[rows]
        series.present[ep] = present[rows]
        series.logged[ep] = True
        series.wall_time[ep] = wall[rows]
        out.append(series)
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
    series: RunSeries, stopped: np.ndarray, restored: np.ndarray, direction: Direction
) -> dict[str, np.ndarray]:
    """Savings and regret of stopping at ``stopped`` (-1: never) and ending with ``restored``'s weights.

    Vectorised over settings: ``stopped`` and ``restored`` are arrays of epochs (``series`` comes
    from :func:`run_series`, so it has at least one logged epoch).
    """
    stopped = np.asarray(stopped, dtype=np.int64)
    restored = np.asarray(restored, dtype=np.int64)
    logged_epochs = np.flatnonzero(series.logged)
    total = len(logged_epochs)
    stops = stopped >= 0
    after = total - np.searchsorted(logged_epochs, stopped, side="right")
    epochs_saved = np.where(stops, after, 0)
    last_wall = series.wall_time[logged_epochs[-1]]
    stop_wall = series.wall_time[np.maximum(stopped, 0)]
    with np.errstate(invalid="ignore"):
        time_saved = np.where(stops, np.maximum(last_wall - stop_wall, 0.0), 0.0)
    safe = np.maximum(restored, 0)
    has_value = (restored >= 0) & series.present[safe]
    restored_value = np.where(has_value, series.values[safe], np.nan)
    best = series.best(direction)
    regret = np.full(len(restored), np.nan)
    if best is not None:
        with np.errstate(invalid="ignore"):
            gap = restored_value - best[1] if direction == "min" else best[1] - restored_value
            gap = np.where(restored_value == best[1], 0.0, gap)
            gap = np.where(np.isnan(restored_value), np.inf, np.maximum(gap, 0.0))
        regret = np.where(has_value, gap, np.nan)
    return {
        "epochs_saved": epochs_saved,
        "fraction_saved": epochs_saved / total,
        "time_saved_s": time_saved,
        "restored_value": restored_value,
        "restored_present": has_value,
        "regret": regret,
    }
