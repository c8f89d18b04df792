"""Replay a policy on every run of an epoch frame: where it stops, what it keeps, what it saves.

>>> import pandas as pd, runlens
>>> frame = pd.DataFrame({"run": ["a"] * 4, "epoch": [0, 1, 2, 3],
...                       "wall_time": [10.0, 20.0, 30.0, 40.0],
...                       "val_loss": pd.array([0.5, 0.4, 0.45, 0.3], dtype="Float64")})
>>> row = replay(frame, runlens.EarlyStopping(patience=1, restore_best_weights=True)).iloc[0]
>>> int(row.stopped_epoch), int(row.restored_epoch), int(row.epochs_saved), float(row.regret)
(2, 1, 1, 0.10000000000000003)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.name_columns import NAME_DTYPE
from runlens.policies.early_stopping import EarlyStopping, Trace
from runlens.policies.plateau import ReduceLROnPlateau
from runlens.policies.runs import RunSeries, costs, run_series

__all__ = ["LR_COLUMNS", "replay"]

# Where Keras logs the learning rate: Keras 3 ("learning_rate") and tf-keras 2.x ("lr").
LR_COLUMNS = ("learning_rate", "lr")


def replay(
    epochs_frame: pd.DataFrame,
    policy: EarlyStopping,
    *,
    lr_policy: ReduceLROnPlateau | None = None,
    initial_lr: float | None = None,
    logged_lr_timing: str = "used",
) -> pd.DataFrame:
    """One row per run of ``epochs_frame`` (from :func:`runlens.read_epochs`) replaying ``policy``.

    Columns (epochs 0-based; nullable dtypes where a value can be missing):

    - ``run``, ``epochs_logged``, ``epochs_trained`` (epochs fit would have run under ``policy``);
    - ``stopped_epoch`` (NA: never stops), ``best_epoch``, ``best_value`` (the policy's best when
      it stops), ``restored_epoch``, ``restored_value`` (the model fit would return);
    - ``run_best_epoch``, ``run_best_value``: the best over the whole logged run;
    - ``epochs_saved``, ``fraction_saved``, ``time_saved_s``, ``regret`` (see
      :mod:`runlens.policies.runs`);
    - with ``lr_policy``: ``lr_reduced_at`` (tuple of epochs), ``lr_final``, ``lr_diverges_at``:
      ReduceLROnPlateau replayed over the epochs the policy trains, against the run's logged
      learning rate (column ``learning_rate``, or ``lr`` as tf-keras 2.x logged it); metrics from
      ``lr_diverges_at`` on were logged under another rate than the replay would have used, so any
      decision taken on them is counterfactual. ``initial_lr`` defaults to each run's first logged
      rate; ``logged_lr_timing`` is explained in :mod:`runlens.policies.plateau`.

    An unknown monitor raises :class:`RunlensError` listing the metrics that exist.
    """
    if not isinstance(policy, EarlyStopping):
        raise RunlensError(f"policy must be a runlens.EarlyStopping, got {type(policy).__name__}")
    if lr_policy is not None and not isinstance(lr_policy, ReduceLROnPlateau):
        raise RunlensError(f"lr_policy must be a runlens.ReduceLROnPlateau, got {type(lr_policy).__name__}")
    series = run_series(epochs_frame, policy.monitor.name)
    rows = [_replay_run(s, policy) for s in series]
    table = _table(rows)
    if lr_policy is not None:
        lr_rows = _replay_lr(epochs_frame, series, table, lr_policy, initial_lr, logged_lr_timing)
        table["lr_reduced_at"] = pd.Series([r[0] for r in lr_rows], dtype=object)
        table["lr_final"] = pd.array([r[1] for r in lr_rows], dtype="Float64")
        table["lr_diverges_at"] = pd.array([r[2] for r in lr_rows], dtype="Int64")
    return table


def _replay_run(series: RunSeries, policy: EarlyStopping) -> dict:
    result = Trace.build(policy, series.values, series.present).result(
        policy.patience, restore_best_weights=policy.restore_best_weights
    )
    stopped = -1 if result.stopped_epoch is None else result.stopped_epoch
    restored = -1 if result.restored_epoch is None else result.restored_epoch
    cost = costs(series, np.array([stopped]), np.array([restored]), policy.monitor.direction)
    run_best = series.best(policy.monitor.direction)
    return {
        "run": series.run,
        "epochs_logged": series.epochs_logged,
        "epochs_trained": result.epochs_trained,
        "stopped_epoch": result.stopped_epoch,
        "best_epoch": result.best_epoch,
        "best_value": result.best_value,
        "restored_epoch": result.restored_epoch,
        "restored_value": float(cost["restored_value"][0]) if cost["restored_present"][0] else None,
        "run_best_epoch": None if run_best is None else run_best[0],
        "run_best_value": None if run_best is None else run_best[1],
        "epochs_saved": int(cost["epochs_saved"][0]),
        "fraction_saved": float(cost["fraction_saved"][0]),
        "time_saved_s": float(cost["time_saved_s"][0]),
        "regret": None if np.isnan(cost["regret"][0]) else float(cost["regret"][0]),
    }


_DTYPES = {
    "run": NAME_DTYPE,  # names as the OS gives them (runlens.textsafe)
    "epochs_logged": "int64",
    "epochs_trained": "int64",
    "stopped_epoch": "Int64",
    "best_epoch": "Int64",
    "best_value": "Float64",
    "restored_epoch": "Int64",
    "restored_value": "Float64",
    "run_best_epoch": "Int64",
    "run_best_value": "Float64",
    "epochs_saved": "int64",
    "fraction_saved": "float64",
    "time_saved_s": "float64",
    "regret": "Float64",
}


def _table(rows: list[dict]) -> pd.DataFrame:
    columns = {}
    for name, dtype in _DTYPES.items():
        items = [r[name] for r in rows]
        if dtype == "Float64":  # built from a mask: a logged NaN must not turn into NA
            missing = np.array([v is None for v in items], dtype=bool)
            columns[name] = _masked(
                np.array([np.nan if v is None else v for v in items], dtype=np.float64), ~missing
            )
        else:
            columns[name] = pd.array(items, dtype=dtype)
    return pd.DataFrame(columns)


def _replay_lr(
    frame: pd.DataFrame,
    series: list[RunSeries],
    table: pd.DataFrame,
    lr_policy: ReduceLROnPlateau,
    initial_lr: float | None,
    timing: str,
) -> list[tuple[tuple[int, ...], float, int | None]]:
    lr_column = next((c for c in LR_COLUMNS if c in frame.columns), None)
    if lr_column is None and initial_lr is None:
        raise RunlensError(
            "the runs logged no learning rate (no 'learning_rate' or 'lr' column); pass initial_lr"
        )
    monitored = {s.run: s for s in run_series(frame, lr_policy.monitor.name, option="lr_policy monitor")}
    logged_lr = {s.run: s for s in run_series(frame, lr_column)} if lr_column else {}
    out = []
    for s, trained in zip(series, table["epochs_trained"].tolist()):
        m = monitored[s.run]
        values = _masked(m.values[:trained], m.present[:trained])
        lr = logged_lr.get(s.run)
        logged = None if lr is None else _masked(lr.values[:trained], lr.present[:trained])
        start = initial_lr
        if start is None:
            known = np.flatnonzero(lr.present) if lr is not None else []
            if not len(known):
                raise RunlensError(f"run {s.run!r} logged no learning rate; pass initial_lr")
            start = float(lr.values[known[0]])
        result = lr_policy.replay(values, initial_lr=start, logged_lr=logged, logged_lr_timing=timing)
        out.append((result.reduced_at, result.final_lr, result.diverges_at))
    return out


def _masked(values: np.ndarray, present: np.ndarray) -> pd.arrays.FloatingArray:
    return pd.arrays.FloatingArray(values.astype(np.float64), ~present)
