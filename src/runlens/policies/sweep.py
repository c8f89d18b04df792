"""Try a grid of stopping-policy settings on every run and recommend one.

``sweep(frame, policy, tolerance=..., **grid)``: ``policy`` is the setting to start from (default
``runlens.EarlyStopping(restore_best_weights=True)``) and each grid keyword names one of its
settings with one value or a list of values to try; every combination is replayed on each run
exactly as :func:`runlens.replay` does, then aggregated across runs. Without ``policy`` the grid
adds to the default one (``patience=(0, 1, 2, 3, 5, 8, 10, 15, 20, 30)``); with a policy and no
grid, the policy's own default grid is tried. Only the policy's protocol is used
(:mod:`runlens.policies.base`): a policy whose ``trace`` answers every value of one setting in one
pass (Keras' EarlyStopping: every ``patience``) makes the sweep cost grow with the other settings'
combinations only; any other policy is replayed setting by setting.

On an evaluation frame (:func:`runlens.read_evals`) every run is replayed one value per evaluation
and the table counts ``evals_logged``/``evals_saved`` instead of ``epochs_*``; pass that
framework's policy (``runlens.lightning.EarlyStopping("val_loss")``,
``runlens.transformers.EarlyStoppingCallback()``): its ``sweep_grid`` is the default grid.

The recommended setting saves the most epochs among those whose ``max_regret <= tolerance``. Ties
go, in order, to more time saved, lower mean regret, then the policy's ``preference()`` (Keras'
EarlyStopping: larger patience -- the more cautious setting --, smaller ``abs(min_delta)``, smaller
``start_from_epoch``, no baseline before a baseline, smaller baseline), then the earlier row. None is
recommended when no setting stays within the tolerance.

>>> import pandas as pd
>>> frame = pd.DataFrame({"run": ["a"] * 5, "epoch": range(5), "wall_time": [1.0, 2, 3, 4, 5],
...                       "val_loss": pd.array([0.5, 0.4, 0.45, 0.46, 0.3], dtype="Float64")})
>>> result = sweep(frame, patience=[1, 3])
>>> result.table[["patience", "epochs_saved", "max_regret", "recommended"]].to_dict("records")
[{'patience': 1, 'epochs_saved': 2, 'max_regret': 0.10000000000000003, 'recommended': False}, \
{'patience': 3, 'epochs_saved': 0, 'max_regret': 0.0, 'recommended': True}]
>>> result.recommended["patience"], "semantics" in result.recommended
(3, False)
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runlens.arguments import finite_number
from runlens.errors import RunlensError
from runlens.policies.base import check_kind
from runlens.policies.runs import RunSeries, costs, decide_runs, is_evals_frame, run_series

__all__ = ["SweepResult", "sweep"]

_UNCHANGED = object()


@dataclass(frozen=True)
class SweepResult:
    """The sweep table (one row per setting) and the recommended setting.

    Attributes:
        table: one column per setting of the policy (``monitor``, ``min_delta``, ``patience``, ...
            for Keras' EarlyStopping), then ``runs``, ``epochs_logged``, ``epochs_saved``,
            ``fraction_saved``, ``time_saved_s``, ``runs_stopped``, ``runs_lost`` (regret > 0),
            ``mean_regret``, ``max_regret`` (over runs whose regret is defined), ``frontier`` (no
            other setting saves at least as many epochs while losing at most as many runs, one of
            them strictly), ``recommended``.
        recommended: the recommended setting as the keyword arguments of the framework's own class
            (``keras.callbacks.EarlyStopping(**recommended)``,
            ``runlens.keras.callbacks(run, early_stopping=recommended)``), or None.
        recommended_policy: the recommended runlens policy (it also carries runlens' own settings,
            such as ``semantics``), or None.
        tolerance: the largest ``max_regret`` a recommended setting may have.
    """

    table: pd.DataFrame
    recommended: dict[str, Any] | None
    recommended_policy: Any
    tolerance: float


def sweep(
    epochs_frame: pd.DataFrame,
    policy: Any = None,
    *,
    tolerance: float = 0.0,
    **grid: Any,
) -> SweepResult:
    """Replay every combination of the ``grid`` (settings of ``policy``, each one value or a list)
    on every run of ``epochs_frame``; see the module docstring.

    >>> sweep(frame, runlens.EarlyStopping(monitor="val_accuracy"), patience=[2, 5],
    ...       min_delta=[0, 0.01]).recommended_policy                          # doctest: +SKIP
    """
    if policy is None:
        if is_evals_frame(epochs_frame) and set(epochs_frame["framework"].astype(str)) - {"keras"}:
            raise RunlensError(
                "sweep an evaluation frame with its framework's policy, e.g. "
                "runlens.sweep(evals, runlens.lightning.EarlyStopping('val_loss'), patience=[1, 3, 5])"
            )
        from runlens.policies.early_stopping import EarlyStopping

        policy = EarlyStopping(restore_best_weights=True)
        grid = {**policy.sweep_grid, **grid}
    check_kind("policy", policy, "stopping", "a runlens.EarlyStopping")
    grid = grid or dict(getattr(policy, "sweep_grid", {}))
    if not grid:
        raise RunlensError(f"give the {type(policy).__name__} settings to try, e.g. patience=[1, 2, 3]")
    settings = policy.settings()
    unknown = [name for name in grid if name not in settings]
    if unknown:
        raise RunlensError(
            f"{type(policy).__name__} has no setting {', '.join(map(repr, unknown))}; "
            f"its settings: {', '.join(settings)}"
        )
    axes = {name: _values(name, value) for name, value in grid.items()}
    tolerance = finite_number("tolerance", tolerance)
    if tolerance < 0:
        raise RunlensError(f"tolerance must be >= 0, got {tolerance!r}")
    groups = _groups(policy, axes)
    policies = [p for _, members in groups for p in members]
    watched = {(p.metric, p.direction) for p in policies}
    if len(watched) > 1:
        raise RunlensError("every setting of a sweep must watch the same metric in the same direction")
    series = run_series(epochs_frame, policies[0].metric)
    if not series:
        raise RunlensError("the epoch frame has no runs to sweep")
    parts = [
        _aggregate(series, *_decisions(traced, members, series), policies[0].direction)
        for traced, members in groups
    ]
    table = pd.concat([_settings_table(policies), pd.concat(parts, ignore_index=True)], axis=1)
    table["frontier"] = _frontier(table["epochs_saved"].to_numpy(), table["runs_lost"].to_numpy())
    best = _recommend(table, policies, tolerance)
    table["recommended"] = table.index == best
    if is_evals_frame(epochs_frame):  # counted in evaluations (see runlens.replay)
        table = table.rename(columns={"epochs_logged": "evals_logged", "epochs_saved": "evals_saved"})
    chosen = None if best is None else policies[best]
    return SweepResult(
        table=table,
        recommended=None if chosen is None else chosen.keyword_arguments(),
        recommended_policy=chosen,
        tolerance=tolerance,
    )


def _values(option: str, value: Any) -> list:
    """One value or a list of them, without repeats."""
    items = list(value) if isinstance(value, Iterable) and not isinstance(value, (str, bytes)) else [value]
    if not items:
        raise RunlensError(f"{option} needs at least one value")
    return list(dict.fromkeys(items))


def _groups(policy: Any, axes: dict[str, list]) -> list[tuple[str | None, list]]:
    """The policies to replay, in table order, grouped: (traced setting or None, policies).

    The setting a policy's ``trace`` answers at once (``traced``) varies fastest, the others in the
    grid's order; with a ``trace`` one call per run answers a whole group, otherwise every group
    holds one policy. The constructor checks every value.
    """
    traced = getattr(policy, "traced", None)
    inner = axes.get(traced, [_UNCHANGED])
    outer = [name for name in axes if name != traced]
    fast = traced in axes and callable(getattr(policy, "trace_runs", None))
    groups = []
    for combination in itertools.product(*(axes[name] for name in outer)):
        base = policy.replace(**dict(zip(outer, combination)))
        members = [base if v is _UNCHANGED else base.replace(**{traced: v}) for v in inner]
        groups += [(traced, members)] if fast else [(None, [p]) for p in members]
    return groups


def _decisions(traced: str | None, members: list, series: list[RunSeries]) -> tuple[np.ndarray, np.ndarray]:
    """(stopped, restored) epochs, shape (runs, settings), -1 where none: a traced group in one
    batched pass over all runs, any other setting replayed run by run (:func:`decide_runs`)."""
    if traced is not None:
        found = decide_runs(members[0], series, [p.settings()[traced] for p in members])
        return found.stopped, found.restored
    parts = [decide_runs(p, series) for p in members]
    return np.hstack([d.stopped for d in parts]), np.hstack([d.restored for d in parts])


def _aggregate(series: list, stopped: np.ndarray, restored: np.ndarray, direction: str) -> pd.DataFrame:
    """One row per setting (column of ``stopped``): the runs' savings and regrets summed up."""
    cost = costs(series, stopped, restored, direction)  # type: ignore[arg-type]
    saved = cost["epochs_saved"].sum(axis=0)
    stopped_runs = (stopped >= 0).sum(axis=0)
    known = ~np.isnan(cost["time_saved_s"])
    time_saved = np.where(known, cost["time_saved_s"], 0.0).sum(axis=0)
    time_known = known.any(axis=0)
    regrets = cost["regret"]
    logged = sum(s.epochs_logged for s in series)
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


def _settings_table(policies: list) -> pd.DataFrame:
    """One column per setting, typed: whole numbers int64, numbers float64, numbers that may be
    None (the constructor's default is None) nullable Float64, anything else as it is."""
    rows = [p.settings() for p in policies]
    defaults = inspect.signature(type(policies[0])).parameters
    columns = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        numbers = all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values)
        nullable = name in defaults and defaults[name].default is None
        if numbers and (nullable or None in values):
            columns[name] = pd.array(values, dtype="Float64")
        elif numbers and all(isinstance(v, int) for v in values):
            columns[name] = np.array(values, dtype=np.int64)
        elif numbers:
            columns[name] = np.array(values, dtype=np.float64)
        else:
            columns[name] = pd.Series(
                values, dtype=bool if all(isinstance(v, bool) for v in values) else object
            )
    return pd.DataFrame(columns)


def _frontier(saved: np.ndarray, lost: np.ndarray) -> np.ndarray:
    """True where no other setting saves >= and loses <= with one of them strict."""
    ge = saved[None, :] >= saved[:, None]
    le = lost[None, :] <= lost[:, None]
    strict = (saved[None, :] > saved[:, None]) | (lost[None, :] < lost[:, None])
    return ~(ge & le & strict).any(axis=1)


def _recommend(table: pd.DataFrame, policies: list, tolerance: float) -> int | None:
    eligible = np.flatnonzero((table["max_regret"] <= tolerance).to_numpy())
    if not len(eligible):
        return None
    saved = table["epochs_saved"].to_numpy()
    time = table["time_saved_s"].fillna(-math.inf).to_numpy()
    mean = table["mean_regret"].to_numpy()

    def key(i: int) -> tuple:
        preference = policies[i].preference() if callable(getattr(policies[i], "preference", None)) else ()
        return (-saved[i], -time[i], mean[i], preference, i)

    return int(min(eligible, key=key))
