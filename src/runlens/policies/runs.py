"""Per-run series out of an epoch frame (or an evaluation frame), and what stopping a run at some
epoch (evaluation) saves and costs.

A frame from :func:`runlens.read_evals` (it has an ``eval`` column) is indexed by ``eval``: one
value per evaluation, the unit each framework's patience counts (a Keras epoch, a Lightning
validation check, an HF evaluation); each :class:`RunSeries` then also carries the ``step`` and
``epoch`` of every evaluation, so results can name them. Below, "epoch" means that unit.

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
_EVAL_KEYS = ("run", "framework", "eval", "step", "epoch", "wall_time")


def is_evals_frame(frame: pd.DataFrame) -> bool:
    """True for a frame from :func:`runlens.read_evals` (indexed by ``eval``), False for an epoch
    frame from :func:`runlens.read_epochs`."""
    return isinstance(frame, pd.DataFrame) and "eval" in frame.columns


@dataclass(frozen=True)
class RunSeries:
    """One run's monitored values, indexed by epoch (0 .. last logged epoch), or by evaluation
    for an evaluation frame (then ``steps``/``epochs`` give each evaluation's step and epoch, -1 /
    NaN where unknown, and ``framework`` the framework that wrote the run)."""

    run: str
    values: np.ndarray  # float64, NaN where no value
    present: np.ndarray  # bool: the monitor was logged that epoch
    logged: np.ndarray  # bool: the run has a row for that epoch
    wall_time: np.ndarray  # float64, NaN where no row
    steps: np.ndarray | None = None  # int64 per evaluation (evaluation frames only)
    epochs: np.ndarray | None = None  # float64 per evaluation, NaN: unknown (evaluation frames only)
    framework: str | None = None

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
    """Raise a RunlensError unless ``frame`` is an epoch (or evaluation) frame holding ``column``."""
    if not isinstance(frame, pd.DataFrame):
        raise RunlensError(
            "expected an epoch frame from runlens.read_epochs() or an evaluation frame from "
            f"runlens.read_evals(), got {type(frame).__name__}"
        )
    keys = _EVAL_KEYS if is_evals_frame(frame) else _KEYS
    missing = [key for key in keys if key not in frame.columns]
    if missing:
        source = "runlens.read_evals()" if is_evals_frame(frame) else "runlens.read_epochs()"
        raise RunlensError(f"the frame lacks column(s) {', '.join(missing)}; pass a frame from {source}")
    if column not in frame.columns:
        metrics = [str(c) for c in frame.columns if c not in keys]
        listed = ", ".join(metrics) if metrics else "none"
        raise RunlensError(f"{option} {column!r} is not a logged metric; metrics in these runs: {listed}")


def run_series(frame: pd.DataFrame, column: str, *, option: str = "monitor") -> list[RunSeries]:
    """Split an epoch frame into one :class:`RunSeries` of ``column`` per run, sorted by run name
    (an evaluation frame: indexed by ``eval``)."""
    return runs_series(frame, [column], option=option)[column]


def runs_series(
    frame: pd.DataFrame, columns: list[str], *, option: str = "monitor"
) -> dict[str, list[RunSeries]]:
    """:func:`run_series` of several columns, the rows sorted once.

    Vectorised across runs: one sort of the rows, every run's arrays slices of one buffer per
    field (a sweep's 2,000 runs cost a few array operations, no Python work per row)."""
    for column in columns:
        check_frame(frame, column=column, option=option)
    evals = is_evals_frame(frame)
    index, source = ("eval", "runlens.read_evals()") if evals else ("epoch", "runlens.read_epochs()")
    epochs = frame[index].to_numpy()
    if len(epochs) and (np.any(epochs < 0) or not np.all(np.mod(epochs, 1) == 0)):
        raise RunlensError(f"the frame has {index} values that are not whole numbers >= 0")
    if not len(epochs):
        return {column: [] for column in columns}
    codes, labels = name_codes(frame["run"])
    if np.any(codes < 0):
        raise RunlensError(f"the frame has rows without a run name; pass a frame from {source}")
    epoch = epochs.astype(np.int64)
    order = np.lexsort((epoch, codes))
    run, epoch = codes[order], epoch[order]
    repeated = np.flatnonzero((run[1:] == run[:-1]) & (epoch[1:] == epoch[:-1]))
    if len(repeated):
        raise RunlensError(
            f"run {labels[run[repeated[0]]]!r} has more than one row for an {index}; pass a frame from {source}"
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
    positions = _eval_positions(frame, order, at, size, starts) if evals else None
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
                **({} if positions is None else positions(k, o, n)),
            )
            for k, (name, o, n) in enumerate(zip(names, offsets.tolist(), lengths.tolist()))
        ]
    return out


def _eval_positions(frame: pd.DataFrame, order: np.ndarray, at: np.ndarray, size: int, starts: np.ndarray):
    """For an evaluation frame: a function giving run ``k``'s step, epoch and framework per
    evaluation (-1 / NaN where a run logged no row for an evaluation)."""
    steps = np.full(size, -1, dtype=np.int64)
    steps[at] = frame["step"].to_numpy()[order]
    epochs = np.full(size, np.nan)
    epochs[at] = frame["epoch"].to_numpy(dtype=np.float64, na_value=np.nan)[order]
    frameworks = frame["framework"].astype(str).to_numpy()[order[starts]]
    return lambda k, o, n: {
        "steps": steps[o : o + n],
        "epochs": epochs[o : o + n],
        "framework": frameworks[k],
    }


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


def decide_runs(policy: Any, series: list[RunSeries], traced: list | None = None) -> Decisions:
    """:func:`decide` for every run, as ``(runs, settings)`` arrays (-1 where none).

    A policy with ``trace_runs`` (:mod:`runlens.policies.base`: Keras' EarlyStopping) decides all
    runs in one batched pass, every value of its ``traced`` setting (``traced``, default the
    policy's own) at once; one with ``replay_runs`` (Lightning's, HF's) all runs in one
    pass for its own setting; any other is replayed run by run. Without ``trace_runs``,
    ``traced`` must be None.

    >>> import runlens
    >>> frame = pd.DataFrame({"run": ["a"] * 4 + ["b"] * 2, "epoch": [0, 1, 2, 3, 0, 1],
    ...                       "wall_time": [1.0, 2, 3, 4, 1, 2],
    ...                       "val_loss": pd.array([3.0, 2, 4, 5, 1, 0.5], dtype="Float64")})
    >>> d = decide_runs(runlens.EarlyStopping(), run_series(frame, "val_loss"), [0, 2])
    >>> d.stopped.tolist(), d.trained.tolist()
    ([[2, 3], [-1, -1]], [[3, 4], [2, 2]])
    """
    lengths = np.array([len(s.values) for s in series], dtype=np.int64)
    setting = getattr(policy, "traced", None)
    if setting is None or not callable(getattr(policy, "trace_runs", None)):
        if traced is not None:
            raise ValueError(f"{type(policy).__name__} cannot answer several settings in one pass")
        if callable(getattr(policy, "replay_runs", None)):  # one setting, all runs in one pass
            stopped, best = (np.full(len(series), -1, dtype=np.int64) for _ in range(2))
            for rows, values, present in _padded(series, lengths):
                stopped[rows], best[rows] = policy.replay_runs(values, present)
            trained = np.where(stopped >= 0, stopped + 1, lengths)
            restored = trained - 1  # as decide() for a result without restored_at: the last trained
            return Decisions(*(a.reshape(len(series), 1) for a in (stopped, restored, best, trained)))
        found = [decide(policy, s) for s in series]
        columns = [[getattr(d, k) for d in found] for k in ("stopped", "restored", "best", "trained")]
        return Decisions(*(np.array(c, dtype=np.int64).reshape(len(series), 1) for c in columns))
    traced = [policy.settings()[setting]] if traced is None else traced
    stopped, restored, best = (np.full((len(series), len(traced)), -1, dtype=np.int64) for _ in range(3))
    for rows, values, present in _padded(series, lengths):
        traces = policy.trace_runs(values, present, lengths[rows])
        stopped[rows], restored[rows] = traces.decisions(traced)
        best[rows] = traces.best_epochs(stopped[rows])
    trained = np.where(stopped >= 0, stopped + 1, lengths[:, None])
    return Decisions(stopped, restored, best, trained)


@dataclass(frozen=True)
class Decisions:
    """:class:`Decision` of many runs (rows) under many settings (columns), -1 where none."""

    stopped: np.ndarray
    restored: np.ndarray
    best: np.ndarray
    trained: np.ndarray


def _padded(series: list[RunSeries], lengths: np.ndarray):
    """The runs' values and presence as ``(runs, epochs)`` arrays padded with ``present=False``,
    yielded as (row indexes, values, present) per group of runs whose lengths lie in one
    ``(2**(k-1), 2**k]``: padding never doubles a group's size, whatever the runs' lengths."""
    groups = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    for group in np.unique(groups).tolist():
        rows = np.flatnonzero(groups == group)
        sizes = lengths[rows]
        width = int(sizes.max())
        row = np.repeat(np.arange(len(rows)), sizes)
        column = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        values = np.full((len(rows), width), np.nan)
        present = np.zeros((len(rows), width), dtype=bool)
        chosen = rows.tolist()
        values[row, column] = np.concatenate([series[i].values for i in chosen])
        present[row, column] = np.concatenate([series[i].present for i in chosen])
        yield rows, np.where(present, values, np.nan), present


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
