"""Retention rules: small pure objects that say which checkpoints to keep, and why.

Each rule looks at one *series* -- the valid, settled checkpoints of one run and one kind -- and
returns, per row, the reason it keeps that checkpoint or None (:class:`RetentionRule`). Rules
combine with :class:`KeepAny` ("keep if any rule keeps"), itself a rule, as Orbax' preservation
policies combine; :func:`runlens.plan_prune` takes a list of rules as one ``KeepAny``.

How checkpoints are ranked is an input of its own, a :class:`Ranking` (a metric and its
direction): it gives the plan's ``rank`` column and names the best checkpoint of each series,
which a plan never drops. Rules that need a ranking carry one (``KeepBestK(3, "val_loss")`` ranks
by ``val_loss``), and ``plan_prune`` takes the first of those unless given ``ranking=``.

A rule that cannot judge a row (no value to rank, no epoch in the name) keeps it: nothing is
dropped on a guess (``KeepBestK(..., keep_unranked=False)`` is for callers who know why a value is
missing: during training, an epoch that was not validated).

>>> rules = [KeepBestK(3, "val_loss"), KeepLastN(1), KeepEveryN(10)]
>>> plan = runlens.plan_prune(runlens.read_checkpoints("runs/"), rules=rules)   # doctest: +SKIP
>>> KeepAny(rules).ranking
Ranking(monitor='val_loss', mode='auto')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from runlens.arguments import Mode, count, number
from runlens.errors import RunlensError
from runlens.policies.monitor import Direction, metric_direction

if TYPE_CHECKING:
    from runlens.policies.early_stopping import EarlyStopping

Reasons = pd.Series  # object Series: the reason a row is kept, or None


class RetentionRule(Protocol):
    """What a rule is: ``keep(series, now=...)`` -> a reason (str) or None for every row. A rule
    that ranks says how in a ``ranking`` attribute (a :class:`Ranking`, or None)."""

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons: ...


def _reasons(series: pd.DataFrame, reasons: Any = None) -> Reasons:
    return pd.Series(reasons, index=series.index, dtype=object)


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
class Ranking:
    """Checkpoints ranked by ``monitor``, best first (``mode`` as Keras' ModelCheckpoint: auto
    goes by the name).

    Values come from the logs when joined (full precision), else from the names. A logged NaN
    ranks last; ties go to the earlier epoch (Keras' ``save_best_only`` needs a strict
    improvement). Rows without a value are not ranked.

    >>> Ranking("val_accuracy").direction
    'max'
    """

    monitor: str
    mode: Mode = "auto"
    direction: Direction = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class KeepAny:
    """Keep a checkpoint when any of ``rules`` keeps it, giving every reason (joined by "; ").
    Its ``ranking`` is the first of its rules' rankings.

    >>> KeepAny([KeepLastN(1), KeepEveryN(5)])
    KeepAny(rules=(KeepLastN(n=1), KeepEveryN(n=5)))
    """

    rules: Sequence[RetentionRule]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))

    @property
    def ranking(self) -> Ranking | None:
        return next((r for r in map(ranking_of, self.rules) if r is not None), None)

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        kept: dict[object, list[str]] = {}
        for rule in self.rules:
            for index, text in rule.keep(series, now=now).dropna().items():
                kept.setdefault(index, []).append(text)
        return _reasons(series, ["; ".join(kept[i]) if i in kept else None for i in series.index])


def ranking_of(rule: RetentionRule) -> Ranking | None:
    """The ranking a rule carries (its ``ranking`` attribute), or None."""
    return getattr(rule, "ranking", None)


@dataclass(frozen=True)
class KeepBestK:
    """Keep the ``k`` best checkpoints by ``monitor`` (its :class:`Ranking`, also the rule's
    ``ranking``), and those without a ``monitor`` value unless ``keep_unranked`` is False.

    >>> KeepBestK(2, "val_accuracy").direction
    'max'
    """

    k: int
    monitor: str
    mode: Mode = "auto"
    keep_unranked: bool = True
    ranking: Ranking = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        count("keep-best k", self.k, minimum=1)
        object.__setattr__(self, "ranking", Ranking(self.monitor, self.mode))

    @property
    def direction(self) -> Direction:
        return self.ranking.direction

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        ranks = self.ranking.rank(series)
        reasons = _reasons(series)
        if self.keep_unranked:
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
        count("keep-last n", self.n, minimum=1)

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
        count("keep-every n", self.n, minimum=1)

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
        if self.seconds is not None:
            number("KeepNewerThan seconds", self.seconds, minimum=0)

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
    """Keep the checkpoint of the epoch whose weights EarlyStopping restores
    (``restore_best_weights``): replayed, or known.

    - replayed: ``early_stopping`` (a :class:`runlens.EarlyStopping`) over ``epochs``, the epoch
      frame of the same runs (``runlens.read_epochs``: the replay needs every epoch's value, not
      only those that got a checkpoint); each run its own epoch;
    - known: ``restored``, the 0-based epoch a live EarlyStopping holds (Keras' ``best_epoch``), in
      every series (the bundled callbacks, where the run is the one being trained).

    >>> rule = KeepRestoredEpoch(runlens.EarlyStopping(patience=3, restore_best_weights=True),
    ...                          epochs=runlens.read_epochs("runs/"))       # doctest: +SKIP
    >>> KeepRestoredEpoch(restored=4)
    KeepRestoredEpoch(early_stopping=None, restored=4)
    """

    early_stopping: EarlyStopping | None = None
    epochs: pd.DataFrame | None = field(default=None, repr=False)
    restored: int | None = None

    def __post_init__(self) -> None:
        replayed = self.early_stopping is not None
        if (self.epochs is not None) != replayed or replayed == (self.restored is not None):
            raise RunlensError(
                "KeepRestoredEpoch needs either early_stopping= and epochs= (to replay it) or restored="
            )
        if self.restored is not None:
            object.__setattr__(self, "restored", count("KeepRestoredEpoch restored", self.restored))

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> Reasons:
        reasons = _reasons(series)
        if series.empty:
            return reasons
        restored, why = self._restored(series["run"].iloc[0])
        if restored is None:  # why: nothing to replay on (every row kept), or None (none restored)
            reasons[:] = why
        else:
            reasons[(series["epoch"] == restored).fillna(False).astype(bool)] = why
        return reasons

    def _restored(self, run: str) -> tuple[int | None, str | None]:
        """The epoch restored in ``run`` and the reason to keep its checkpoint."""
        if self.early_stopping is None or self.epochs is None:
            return self.restored, f"EarlyStopping restores epoch {self.restored + 1}"
        logged = self.epochs[self.epochs["run"] == run]
        if logged.empty:
            return None, f"no logs for run {run!r} to replay EarlyStopping on"
        monitor = self.early_stopping.monitor.name
        if monitor not in logged.columns:
            return None, f"run {run!r} logged no {monitor} to replay EarlyStopping on"
        values = logged.set_index("epoch")[monitor].astype("Float64")
        restored = self.early_stopping.replay(
            values.reindex(range(int(logged["epoch"].max()) + 1))
        ).restored_epoch
        return restored, None if restored is None else f"EarlyStopping would restore epoch {restored + 1}"
