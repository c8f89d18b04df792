"""Replay a policy on every run of an epoch frame (or an evaluation frame): where it stops, what it
keeps, what it saves.

Any stopping policy (:mod:`runlens.policies.base`) works: the replay asks it for ``metric``,
``direction`` and its ``replay`` result, never for its class. So does any learning-rate policy
given as ``lr_policy`` (through :func:`runlens.policies.learning_rate.replay_lr`, the path the
report uses too).

>>> import pandas as pd, runlens
>>> frame = pd.DataFrame({"run": ["a"] * 4, "epoch": [0, 1, 2, 3],
...                       "wall_time": [10.0, 20.0, 30.0, 40.0],
...                       "val_loss": pd.array([0.5, 0.4, 0.45, 0.3], dtype="Float64")})
>>> row = replay(frame, runlens.EarlyStopping(patience=1, restore_best_weights=True)).iloc[0]
>>> int(row.stopped_epoch), int(row.restored_epoch), int(row.epochs_saved), float(row.regret)
(2, 1, 1, 0.10000000000000003)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from runlens.arguments import LRTiming, choice
from runlens.errors import RunlensError
from runlens.name_columns import NAME_DTYPE
from runlens.policies.base import check_kind
from runlens.policies.learning_rate import LR_COLUMNS, replay_lr
from runlens.policies.learning_rate import lr_column as find_lr_column
from runlens.policies.runs import RunSeries, best_of_runs, costs, decide_runs, is_evals_frame, run_series

__all__ = ["LR_COLUMNS", "eval_table", "replay", "replay_rows"]


def replay(
    epochs_frame: pd.DataFrame,
    policy: Any,
    *,
    lr_policy: Any = None,
    initial_lr: float | None = None,
    logged_lr_timing: LRTiming = "used",
) -> pd.DataFrame:
    """One row per run of ``epochs_frame`` (from :func:`runlens.read_epochs`) replaying ``policy``
    (a stopping policy such as :class:`runlens.EarlyStopping`).

    Columns (epochs 0-based; nullable dtypes where a value can be missing):

    - ``run``, ``epochs_logged``, ``epochs_trained`` (epochs fit would have run under ``policy``);
    - ``stopped_epoch`` (NA: never stops), ``best_epoch``, ``best_value`` (the policy's best when
      it stops), ``restored_epoch``, ``restored_value`` (the model fit would return);
    - ``run_best_epoch``, ``run_best_value``: the best over the whole logged run;
    - ``epochs_saved``, ``fraction_saved``, ``time_saved_s``, ``regret`` (see
      :mod:`runlens.policies.runs`);
    - with ``lr_policy`` (such as :class:`runlens.ReduceLROnPlateau`): ``lr_reduced_at`` (tuple of
      epochs), ``lr_final``, ``lr_diverges_at``: the policy replayed over the epochs ``policy``
      trains, against the run's logged learning rate (column ``learning_rate``, or ``lr`` as
      tf-keras 2.x logged it); metrics from ``lr_diverges_at`` on were logged under another rate
      than the replay would have used, so any decision taken on them is counterfactual. The
      starting rate follows :mod:`runlens.policies.learning_rate`'s rule: ``initial_lr``, else each
      run's first logged rate (a run with neither is an error); ``logged_lr_timing`` says which
      rate the log holds (``"used"`` or ``"after"``, see there).

    An evaluation frame (from :func:`runlens.read_evals`: Lightning, HF Trainer, generic runs) is
    replayed one value per evaluation -- the unit each framework's patience counts -- and the
    table says so: ``framework`` after ``run``; ``evals_logged``, ``evals_trained``,
    ``evals_saved`` instead of the ``epochs_*`` counts; and each event by its evaluation (0-based
    ``stopped_eval``, ``best_eval``, ``restored_eval``, ``run_best_eval``) with that evaluation's
    ``*_step`` and ``*_epoch`` (as logged: fractional for HF, ``<NA>`` where unknown) beside it.
    ``lr_reduced_at``/``lr_diverges_at`` then hold evaluations too; Lightning's
    ``lr-<Optimizer>`` columns count as a logged rate.

    An unknown monitor raises :class:`RunlensError` listing the metrics that exist.

    >>> evals = runlens.read_evals("sample_logs/lightning")                # doctest: +SKIP
    >>> replay(evals, runlens.lightning.EarlyStopping("val_loss"))[["stopped_eval", "stopped_epoch"]]  # doctest: +SKIP
    """
    check_kind("policy", policy, "stopping", "a runlens.EarlyStopping")
    if lr_policy is not None:
        check_kind("lr_policy", lr_policy, "lr", "a runlens.ReduceLROnPlateau")
    choice("logged_lr_timing", logged_lr_timing, LRTiming)
    series = run_series(epochs_frame, policy.metric)
    table = _table(replay_rows(series, policy))
    if lr_policy is not None:
        metric = lr_policy.metric or policy.metric  # torch's scheduler names no metric
        lr_rows = _replay_lr(epochs_frame, series, table, lr_policy, metric, initial_lr, logged_lr_timing)
        table["lr_reduced_at"] = pd.Series([r[0] for r in lr_rows], dtype=object)
        table["lr_final"] = pd.array([r[1] for r in lr_rows], dtype="Float64")
        table["lr_diverges_at"] = pd.array([r[2] for r in lr_rows], dtype="Int64")
    return eval_table(table, series, epochs_frame) if is_evals_frame(epochs_frame) else table


# The replay table's epoch-named columns, as an evaluation frame's table names them.
_EVAL_NAMES = {
    "epochs_logged": "evals_logged",
    "epochs_trained": "evals_trained",
    "epochs_saved": "evals_saved",
}
_EVENTS = ("stopped", "best", "restored", "run_best")


def eval_table(table: pd.DataFrame, series: list[RunSeries], frame: pd.DataFrame) -> pd.DataFrame:
    """The replay ``table`` of an evaluation frame: counts named ``evals_*``, each event as its
    evaluation with the step and epoch it was logged at (see :func:`replay`)."""
    by_run = {s.run: s for s in series}
    columns: dict[str, Any] = {"run": table["run"]}
    columns["framework"] = pd.Series([by_run[r].framework for r in table["run"]], dtype=object)
    epoch_dtype = (
        frame["epoch"].dtype
        if isinstance(frame["epoch"].dtype, pd.api.extensions.ExtensionDtype)
        else "Float64"
    )
    for name in table.columns[1:]:
        event = next((e for e in _EVENTS if name == f"{e}_epoch"), None)
        if event is None:
            columns[_EVAL_NAMES.get(name, name)] = table[name]
            continue
        index = table[name].tolist()
        columns[f"{event}_eval"] = table[name]
        steps, epochs = [], []
        for run, i in zip(table["run"], index):
            s = by_run[run]
            known = i is not pd.NA and i is not None
            steps.append(int(s.steps[i]) if known and s.steps[i] >= 0 else None)
            epochs.append(float(s.epochs[i]) if known and not np.isnan(s.epochs[i]) else None)
        columns[f"{event}_step"] = pd.array(steps, dtype="Int64")
        columns[f"{event}_epoch"] = pd.array(epochs, dtype="Float64").astype(epoch_dtype)
    return pd.DataFrame(columns)


def replay_rows(series: list[RunSeries], policy: Any) -> dict[str, list]:
    """:func:`replay`'s columns before they become its table, as lists of plain Python values
    (None where the table has NA; epoch names, in an evaluation frame's unit), one entry per run
    of ``series`` (:func:`~runlens.policies.runs.run_series` of the policy's metric): each run's
    decisions (:func:`decide_runs`: one batched pass over all runs where the policy has one, else
    its replay run by run), then the costs and bests of all runs at once. The report's records
    take them as they are (no table built and read back cell by cell).

    >>> import runlens
    >>> frame = pd.DataFrame({"run": ["a"] * 3, "epoch": [0, 1, 2], "wall_time": [1.0, 2, 3],
    ...                       "val_loss": pd.array([0.5, 0.4, 0.45], dtype="Float64")})
    >>> rows = replay_rows(run_series(frame, "val_loss"), runlens.EarlyStopping(patience=1))
    >>> rows["stopped_epoch"], rows["best_epoch"], rows["epochs_saved"]
    ([2], [1], [0])
    """
    decisions = decide_runs(policy, series)
    stopped, restored, best = decisions.stopped[:, 0], decisions.restored[:, 0], decisions.best[:, 0]
    cost = {k: v[:, 0] for k, v in costs(series, stopped, restored, policy.direction).items()}
    run_best_epoch, run_best_value = best_of_runs(series, policy.direction)
    # every run's arrays end to end: each run's count and best value without a step per run
    lengths = np.array([len(s.values) for s in series], dtype=np.int64)
    starts = np.cumsum(lengths) - lengths
    values, present, logged = (
        np.concatenate([getattr(s, name) for s in series] or [np.empty(0)])
        for name in ("values", "present", "logged")
    )
    at_best = starts + np.maximum(best, 0)
    has_best = (best >= 0) & present[at_best].astype(bool)
    best_value = [v if ok else None for v, ok in zip(values[at_best].tolist(), has_best.tolist())]
    epochs_logged = np.add.reduceat(logged.astype(np.int64), starts).tolist() if len(series) else []

    def at(indexes: np.ndarray) -> list[int | None]:
        return [None if i < 0 else i for i in indexes.tolist()]

    return {
        "run": [s.run for s in series],
        "epochs_logged": epochs_logged,
        "epochs_trained": decisions.trained[:, 0].tolist(),
        "stopped_epoch": at(stopped),
        "best_epoch": at(best),
        "best_value": best_value,
        "restored_epoch": at(restored),
        "restored_value": [
            v if p else None
            for v, p in zip(cost["restored_value"].tolist(), cost["restored_present"].tolist())
        ],
        "run_best_epoch": at(run_best_epoch),
        "run_best_value": [
            None if e < 0 else v for e, v in zip(run_best_epoch.tolist(), run_best_value.tolist())
        ],
        "epochs_saved": cost["epochs_saved"].tolist(),
        "fraction_saved": cost["fraction_saved"].tolist(),
        "time_saved_s": cost["time_saved_s"].tolist(),
        "regret": [None if np.isnan(r) else r for r in cost["regret"].tolist()],
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


def _table(rows: dict[str, list]) -> pd.DataFrame:
    columns = {}
    for name, dtype in _DTYPES.items():
        items = rows[name]
        if dtype == "Float64":  # built from a mask: a logged NaN must not turn into NA
            missing = np.array([v is None for v in items], dtype=bool)
            floats = np.array([np.nan if v is None else v for v in items], dtype=np.float64)
            columns[name] = pd.arrays.FloatingArray(floats, missing)
        else:
            columns[name] = pd.array(items, dtype=dtype)
    return pd.DataFrame(columns)


def _replay_lr(
    frame: pd.DataFrame,
    series: list[RunSeries],
    table: pd.DataFrame,
    lr_policy: Any,
    metric: str,
    initial_lr: float | None,
    timing: LRTiming,
) -> list[tuple[tuple[int, ...], float, int | None]]:
    lr_column = find_lr_column(frame.columns)
    if lr_column is None and initial_lr is None:
        raise RunlensError(
            "the runs logged no learning rate (no 'learning_rate', 'lr' or Lightning 'lr-*' column); pass initial_lr"
        )
    monitored = {s.run: s for s in run_series(frame, metric, option="lr_policy monitor")}
    logged_lr = {s.run: s for s in run_series(frame, lr_column)} if lr_column else {}
    out = []
    for s, trained in zip(series, table["epochs_trained"].tolist()):
        lr = logged_lr.get(s.run)
        replayed = replay_lr(
            lr_policy,
            monitored[s.run].masked(trained),
            initial_lr=initial_lr,
            logged_lr=None if lr is None else lr.masked(),  # the whole run: its first rate starts
            timing=timing,
        )
        if replayed.result is None:
            raise RunlensError(f"run {s.run!r}: {replayed.note}")
        result = replayed.result
        out.append((tuple(result.reduced_at), result.final_lr, replayed.diverges_at))
    return out
