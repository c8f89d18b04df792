"""Evaluations of frameworks that log at global steps (Lightning, HF Trainer, generic logs).

Given which rows of a run mark an evaluation, each distinct step holding such a row is one
evaluation (``eval`` counts them from 0 within the run, in step order). Its ``epoch`` is the value of
the framework's epoch tag logged at that same step (NaN when none was); its ``wall_time`` the latest
wall time among the evaluation's own rows.

Every other tag is attached by **window**: an evaluation at step ``s`` takes, per tag, the value
logged last in ``(previous evaluation's step, s]``. So a value logged at the evaluation's step
(Lightning's ``train_loss_epoch``), or since the previous evaluation (the learning rate Lightning's
LearningRateMonitor logs at the start of an epoch, HF's latest training ``loss``), lands in the
evaluation it led to; a tag not logged in that window is ``<NA>`` (never carried over from an older
window, never taken from a later step), and values logged after the last evaluation are not in the
frame. A value logged twice at one step (a resumed run) counts as written last.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from runlens.epochs import metric_columns
from runlens.name_columns import as_names
from runlens.times import unix_seconds, utc_from_unix_seconds

__all__ = ["step_evals"]


def step_evals(
    long: pd.DataFrame,
    is_eval: np.ndarray,
    *,
    epoch_tag: str,
    rename: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    """One row per evaluation of the runs in ``long`` (a :func:`runlens.read_scalars` frame, rows
    in the order written); ``is_eval`` marks the rows that make an evaluation; tags are renamed
    with ``rename`` (None: kept).

    Columns: ``run``, ``eval``, ``step``, ``epoch`` (float64, NaN: not logged), ``wall_time``,
    then one nullable ``Float64`` column per tag other than ``epoch_tag``.
    """
    rows = pd.DataFrame(
        {
            "run": as_names(long["run"]).to_numpy(),
            "tag": long["tag"].astype(str).to_numpy(),
            "step": long["step"].to_numpy(dtype=np.int64),
            "wall_time": unix_seconds(long["wall_time"]),
            "value": long["value"].to_numpy(dtype=np.float64),
            "is_eval": np.asarray(is_eval, dtype=bool),
        }
    )
    rows = rows.drop_duplicates(["run", "tag", "step"], keep="last")
    evals = rows[rows["is_eval"]].groupby(["run", "step"], sort=True)["wall_time"].max().reset_index()
    evals.insert(1, "eval", evals.groupby("run").cumcount().astype(np.int64))
    epochs = rows.loc[rows["tag"] == epoch_tag, ["run", "step", "value"]].rename(columns={"value": "epoch"})
    evals = evals.merge(epochs, on=["run", "step"], how="left")
    evals = evals[["run", "eval", "step", "epoch", "wall_time"]]
    evals["wall_time"] = utc_from_unix_seconds(evals["wall_time"].to_numpy())
    metrics = rows[rows["tag"] != epoch_tag].sort_values("step", kind="stable")
    windows = pd.merge_asof(
        metrics,
        evals[["run", "step", "eval"]]
        .rename(columns={"step": "eval_step"})
        .sort_values("eval_step", kind="stable"),
        left_on="step",
        right_on="eval_step",
        by="run",
        direction="forward",  # the first evaluation at or after the value's step
    ).dropna(subset=["eval"])
    windows = windows.drop_duplicates(["run", "eval", "tag"], keep="last")  # sorted by step: latest
    index = pd.MultiIndex.from_frame(evals[["run", "eval"]])
    position = index.get_indexer(
        pd.MultiIndex.from_arrays([windows["run"], windows["eval"].astype(np.int64)])
    )
    tags = windows["tag"]
    if rename is not None:
        tags = tags.map({tag: rename(tag) for tag in tags.unique()})
    for name, column in metric_columns(len(evals), position, tags, windows["value"]).items():
        evals[name] = column
    return evals
