"""Try a grid of EarlyStopping settings on every run and recommend one.

Each setting is replayed on each run exactly as :func:`runlens.replay` does, then aggregated across
runs. One pass over a run's values answers every ``patience`` at once (see
:class:`runlens.policies.early_stopping.Trace`), so the cost grows with the number of
``min_delta`` x ``start_from_epoch`` x ``baseline`` combinations, not with the patiences.

The recommended setting saves the most epochs among those whose ``max_regret <= tolerance``. Ties
go, in order, to more time saved, lower mean regret, larger patience (the more cautious setting),
smaller ``abs(min_delta)``, smaller ``start_from_epoch``, no baseline before a baseline, smaller
baseline. None is recommended when no setting stays within the tolerance.

>>> import pandas as pd
>>> frame = pd.DataFrame({"run": ["a"] * 5, "epoch": range(5), "wall_time": [1.0, 2, 3, 4, 5],
...                       "val_loss": pd.array([0.5, 0.4, 0.45, 0.46, 0.3], dtype="Float64")})
>>> result = sweep(frame, patience=[1, 3])
>>> result.table[["patience", "epochs_saved", "max_regret", "recommended"]].to_dict("records")
[{'patience': 1, 'epochs_saved': 2, 'max_regret': 0.10000000000000003, 'recommended': False}, \
{'patience': 3, 'epochs_saved': 0, 'max_regret': 0.0, 'recommended': True}]
>>> result.recommended["patience"]
3
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runlens.arguments import count, finite_number
from runlens.errors import RunlensError
from runlens.policies.early_stopping import EarlyStopping, Trace
from runlens.policies.runs import costs, run_series

__all__ = ["SweepResult", "sweep"]


@dataclass(frozen=True)
class SweepResult:
    """The sweep table (one row per setting) and the recommended setting.

    Attributes:
        table: columns ``patience, min_delta, start_from_epoch, baseline`` (the setting), ``runs``,
            ``epochs_logged``, ``epochs_saved``, ``fraction_saved``, ``time_saved_s``,
            ``runs_stopped``, ``runs_lost`` (regret > 0), ``mean_regret``, ``max_regret`` (over runs
            whose regret is defined), ``frontier`` (no other setting saves at least as many epochs
            while losing at most as many runs, one of them strictly), ``recommended``.
        recommended: keyword arguments for :class:`runlens.EarlyStopping` of the recommended
            setting, or None.
        tolerance: the largest ``max_regret`` a recommended setting may have.
    """

    table: pd.DataFrame
    recommended: dict[str, Any] | None
    tolerance: float


def sweep(
    epochs_frame: pd.DataFrame,
    *,
    patience: int | Iterable[int] = (0, 1, 2, 3, 5, 8, 10, 15, 20, 30),
    min_delta: float | Iterable[float] = (0.0,),
    monitor: str = "val_loss",
    mode: str = "auto",
    baseline: float | Iterable[float | None] | None = None,
    start_from_epoch: int | Iterable[int] = 0,
    restore_best_weights: bool = True,
    semantics: str = "keras3",
    tolerance: float = 0.0,
) -> SweepResult:
    """Replay every combination of the given settings on every run of ``epochs_frame``.

    ``patience``, ``min_delta``, ``start_from_epoch`` and ``baseline`` each take one value or a
    list; the others are fixed. See the module docstring for the recommendation rule.
    """
    patiences = _grid("patience", patience, lambda v: count("patience", v))
    deltas = _grid("min_delta", min_delta, lambda v: finite_number("min_delta", v))
    starts = _grid("start_from_epoch", start_from_epoch, lambda v: count("start_from_epoch", v))
    baselines = _grid("baseline", baseline, lambda v: None if v is None else finite_number("baseline", v))
    tolerance = finite_number("tolerance", tolerance)
    if tolerance < 0:
        raise RunlensError(f"tolerance must be >= 0, got {tolerance!r}")
    series = run_series(epochs_frame, monitor)
    if not series:
        raise RunlensError("the epoch frame has no runs to sweep")
    fixed = {
        "monitor": monitor,
        "mode": mode,
        "restore_best_weights": restore_best_weights,
        "semantics": semantics,
    }
    p = np.array(patiences, dtype=np.int64)
    parts = []
    for delta, start, base in itertools.product(deltas, starts, baselines):
        policy = EarlyStopping(min_delta=delta, start_from_epoch=start, baseline=base, **fixed)
        part = _aggregate(policy, series, p)
        part.insert(1, "min_delta", delta)
        part.insert(2, "start_from_epoch", start)
        part.insert(3, "baseline", pd.array([base] * len(p), dtype="Float64"))
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["frontier"] = _frontier(table["epochs_saved"].to_numpy(), table["runs_lost"].to_numpy())
    best = _recommend(table, tolerance)
    table["recommended"] = table.index == best
    recommended = None
    if best is not None:
        row = table.loc[best]
        base = row["baseline"]
        recommended = {
            **fixed,
            "patience": int(row["patience"]),
            "min_delta": float(row["min_delta"]),
            "start_from_epoch": int(row["start_from_epoch"]),
            "baseline": None if pd.isna(base) else float(base),
        }
    return SweepResult(table=table, recommended=recommended, tolerance=tolerance)


def _grid(option: str, value: Any, check: Any) -> list:
    items = list(value) if isinstance(value, Iterable) and not isinstance(value, str) else [value]
    if not items:
        raise RunlensError(f"{option} needs at least one value")
    return list(dict.fromkeys(check(v) for v in items))


def _aggregate(policy: EarlyStopping, series: list, patiences: np.ndarray) -> pd.DataFrame:
    """One row per patience: the policy replayed on every run, summed up."""
    direction = policy.monitor.direction
    n = len(patiences)
    saved, stopped_runs, lost = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    time_saved = np.zeros(n)
    time_known = np.zeros(n, dtype=bool)
    regrets = np.full((len(series), n), np.nan)
    logged = 0
    for i, s in enumerate(series):
        trace = Trace.build(policy, s.values, s.present)
        stopped = trace.stopped_epochs(patiences)
        restored = trace.restored_epochs(stopped, restore_best_weights=policy.restore_best_weights)
        cost = costs(s, stopped, restored, direction)
        saved += cost["epochs_saved"]
        stopped_runs += stopped >= 0
        known = ~np.isnan(cost["time_saved_s"])
        time_saved += np.where(known, cost["time_saved_s"], 0.0)
        time_known |= known
        regrets[i] = cost["regret"]
        logged += s.epochs_logged
    defined = ~np.isnan(regrets)
    with np.errstate(invalid="ignore"):
        lost = (np.where(defined, regrets, 0.0) > 0).sum(axis=0)
        counts = defined.sum(axis=0)
        mean = np.where(
            counts > 0, np.where(defined, regrets, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan
        )
        worst = np.where(counts > 0, np.where(defined, regrets, -np.inf).max(axis=0), np.nan)
    return pd.DataFrame(
        {
            "patience": patiences,
            "runs": len(series),
            "epochs_logged": logged,
            "epochs_saved": saved,
            "fraction_saved": saved / logged if logged else 0.0,
            "time_saved_s": np.where(time_known, time_saved, np.nan),
            "runs_stopped": stopped_runs,
            "runs_lost": lost,
            "mean_regret": mean,
            "max_regret": worst,
        }
    )


def _frontier(saved: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """True where no other setting saves >= and loses <= with one of them strict."""
    ge = saved[None, :] >= saved[:, None]
    le = lost[None, :] <= lost[:, None]
    strict = (saved[None, :] > saved[:, None]) | (lost[None, :] < lost[:, None])
    return ~(ge & le & strict).any(axis=1)


def _recommend(table: pd.DataFrame, tolerance: float) -> int | None:
    eligible = table[table["max_regret"] <= tolerance]
    if eligible.empty:
        return None
    keys = pd.DataFrame(
        {
            "saved": -eligible["epochs_saved"],
            "time": -eligible["time_saved_s"].fillna(-math.inf),
            "mean": eligible["mean_regret"],
            "patience": -eligible["patience"],
            "delta": eligible["min_delta"].abs(),
            "start": eligible["start_from_epoch"],
            "has_baseline": eligible["baseline"].notna(),
            "baseline": eligible["baseline"].to_numpy(dtype=np.float64, na_value=-math.inf),
        },
        index=eligible.index,
    )
    return int(keys.sort_values(list(keys.columns), kind="stable").index[0])
