"""Retention rules: small pure objects that say which checkpoints to keep, and why.

Each rule looks at one *series* -- the valid, settled checkpoints of one run and one kind -- and
returns, per row, the reason it keeps that checkpoint or None. :func:`runlens.plan_prune` keeps a
checkpoint when any rule keeps it (as Orbax' preservation policies combine). A rule that cannot
judge a row (no value to rank, no epoch in the name) keeps it: nothing is dropped on a guess.

>>> rules = [KeepBestK(3, "val_loss"), KeepLastN(1), KeepEveryN(10)]
>>> plan = runlens.plan_prune(runlens.read_checkpoints("runs/"), rules=rules)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.policies.monitor import Direction, metric_direction

Reasons = pd.Series  # object Series: the reason a row is kept, or None


class RetentionRule(Protocol):
    """What a rule is: ``keep(series, now=...)`` -> a reason (str) or None for every row."""

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons: ...


def _reasons(series: pd.DataFrame, reasons: Any = None) -> Reasons:
    return pd.Series(reasons, index=series.index, dtype=object)


def _count(option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise RunlensError(f"{option} must be a whole number >= 1, got {value!r}")
    return int(value)


def checkpoint_direction(monitor: str, mode: str) -> Direction:
    """``"min"``/``"max"`` for ranking checkpoints by ``monitor``: ``mode`` when given; on auto,
    Keras' ModelCheckpoint rule, and for the HF Trainer's ``eval_*`` metrics that Keras does not
    know, the Trainer's own default (``greater_is_better = not name.endswith("loss")``,
    transformers/training_args.py).

    >>> checkpoint_direction("val_loss", "auto"), checkpoint_direction("eval_f1", "auto")
    ('min', 'max')
    """
    try:
        return metric_direction(monitor, mode, callback="ModelCheckpoint")
    except RunlensError:
        if mode != "auto" or not isinstance(monitor, str) or not monitor.startswith("eval_"):
            raise
    return "min" if monitor.endswith("loss") else "max"


@dataclass(frozen=True)
class KeepBestK:
    """Keep the ``k`` best checkpoints by ``monitor`` (``mode`` as Keras: auto goes by the name).

    Values come from the logs when joined (full precision), else from the names. A logged NaN ranks
    last; ties go to the earlier epoch (Keras' ``save_best_only`` needs a strict improvement).

    >>> KeepBestK(2, "val_accuracy").direction
    'max'
    """

    k: int
    monitor: str
    mode: str = "auto"
    direction: Direction = field(init=False)

    def __post_init__(self) -> None:
        _count("keep-best k", self.k)
        object.__setattr__(self, "direction", checkpoint_direction(self.monitor, self.mode))

    def rank(self, series: pd.DataFrame) -> pd.Series:
        """1-based rank of each row by ``monitor`` (``<NA>`` for rows without a value)."""
        ranks = pd.Series(pd.NA, index=series.index, dtype="Int64")
        if self.monitor not in series.columns:
            return ranks
        values = series[self.monitor].astype("Float64")
        has = values.notna()
        floats = values[has].to_numpy(dtype=float, na_value=np.nan)
        signed = floats if self.direction == "min" else -floats
        epochs = series.loc[has, "epoch"].astype("Float64").to_numpy(dtype=float, na_value=np.inf)
        order = np.lexsort((epochs, np.nan_to_num(signed, nan=np.inf), np.isnan(signed)))
        ranks.loc[values.index[has][order]] = np.arange(1, len(order) + 1)
        return ranks

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        ranks = self.rank(series)
        reasons = _reasons(series)
        reasons[ranks.isna()] = f"no {self.monitor} value to rank it by"
        best = ranks.notna() & (ranks <= self.k)
        reasons[best] = [f"#{r} by {self.monitor} (best {self.k})" for r in ranks[best]]
        return reasons


@dataclass(frozen=True)
class KeepLastN:
    """Keep the ``n`` latest checkpoints (by epoch, then global step, batch, modification time).

    >>> KeepLastN(2)
    KeepLastN(n=2)
    """

    n: int

    def __post_init__(self) -> None:
        _count("keep-last n", self.n)

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        reasons = _reasons(series)
        unknown = series["epoch"].isna()
        reasons[unknown] = "epoch unknown (keep-last cannot place it)"
        keys = [c for c in ("epoch", "step", "batch", "mtime") if c in series.columns]
        latest = series[~unknown].sort_values(keys).index[-self.n :]
        reasons[latest] = f"one of the last {self.n}"
        return reasons


@dataclass(frozen=True)
class KeepEveryN:
    """Keep the checkpoints of every ``n``-th epoch (epochs n, 2n, ... counted from 1, as printed).

    >>> KeepEveryN(5)
    KeepEveryN(n=5)
    """

    n: int

    def __post_init__(self) -> None:
        _count("keep-every n", self.n)

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        reasons = _reasons(series)
        epoch = series["epoch"]
        reasons[epoch.isna()] = "epoch unknown (keep-every cannot place it)"
        every = epoch.notna() & ((epoch.fillna(0) + 1) % self.n == 0)
        reasons[every] = f"every {self.n}th epoch"
        return reasons


@dataclass(frozen=True)
class KeepNewerThan:
    """Keep checkpoints modified less than ``seconds`` before now, or at/after ``since`` (naive: UTC).

    >>> KeepNewerThan(seconds=3600)
    KeepNewerThan(seconds=3600, since=None)
    """

    seconds: float | None = None
    since: pd.Timestamp | str | None = None

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.since is None):
            raise RunlensError("KeepNewerThan needs exactly one of seconds= or since=")

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        if self.seconds is not None:
            cutoff, text = now - pd.Timedelta(seconds=self.seconds), f"newer than {self.seconds:g}s"
        else:
            cutoff = pd.Timestamp(self.since)
            cutoff = cutoff.tz_localize("UTC") if cutoff.tz is None else cutoff
            text = f"modified since {self.since}"
        return _reasons(series).where(~(series["mtime"] >= cutoff), text)


@dataclass(frozen=True)
class KeepRestoredEpoch:
    """Keep the checkpoint of the epoch a replayed EarlyStopping would restore.

    ``epochs`` is the epoch frame of the same runs (``runlens.read_epochs``): the replay needs every
    epoch's value, not only those that got a checkpoint.

    >>> rule = KeepRestoredEpoch(runlens.EarlyStopping(patience=3, restore_best_weights=True),
    ...                          epochs=runlens.read_epochs("runs/"))       # doctest: +SKIP
    """

    early_stopping: Any
    epochs: pd.DataFrame = field(repr=False)

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        reasons = _reasons(series)
        if series.empty:
            return reasons
        run = series["run"].iloc[0]
        logged = self.epochs[self.epochs["run"] == run]
        if logged.empty:
            reasons[:] = f"no logs for run {run!r} to replay EarlyStopping on"
            return reasons
        monitor = self.early_stopping.monitor.name
        values = logged.set_index("epoch")[monitor] if monitor in logged.columns else None
        if values is None:
            reasons[:] = f"run {run!r} logged no {monitor} to replay EarlyStopping on"
            return reasons
        values = values.astype("Float64").reindex(range(int(logged["epoch"].max()) + 1))
        restored = self.early_stopping.replay(values).restored_epoch
        if restored is not None:
            at = (series["epoch"] == restored).fillna(False)
            reasons[at] = f"EarlyStopping would restore epoch {restored + 1}"
        return reasons
