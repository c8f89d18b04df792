"""Give each checkpoint the full-precision metrics its run logged when it was saved.

Names hold rounded values (``{val_loss:.2f}``); the logs hold what was logged. A Keras checkpoint
takes its epoch's row of the epoch frame (``runlens.read_epochs``), joined on ``(run, epoch)``. A
Lightning checkpoint takes the validation check logged right before it was saved: Lightning logs
a check at step ``global_step - 1`` and saves after it with the new ``global_step`` (the ``step``
in its name), so it joins the evaluation frame (``runlens.read_evals``) on ``(run, step - 1)``.
A logged value replaces the name's, and a name's value stays where the logs have none.

>>> table = join_epoch_metrics(table, runlens.read_epochs("runs/"))   # doctest: +SKIP
>>> table = join_logged(table, runlens.read_evals("lightning_logs/"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from runlens.checkpoints.names import KERAS_KINDS

_LOG_FOLDERS = ("train", "validation")  # Keras' TensorBoard callback writes RUN/train, RUN/validation
_LOG_KEYS = ("run", "epoch", "wall_time", "framework", "eval", "step")
_EVENTS = "tfevents"  # in every event file's name (Lightning's TensorBoardLogger writes RUN/events...)


def join_logged(table: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """``table`` joined with an epoch frame (Keras checkpoints) or an evaluation frame from
    :func:`runlens.read_evals` (its Keras runs for Keras checkpoints, its Lightning runs for
    Lightning checkpoints)."""
    if "framework" not in logs.columns:
        return join_epoch_metrics(table, logs)
    table = join_epoch_metrics(table, logs[logs["framework"] == "keras"])
    return join_step_metrics(table, logs[logs["framework"] == "lightning"])


def join_epoch_metrics(table: pd.DataFrame, epochs: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every metric column of ``epochs`` filled in at each Keras row's ``(run, epoch)``.

    Runs match by name; when neither side's names match but each has exactly one run, those two
    are paired (checkpoints in ``ckpt/`` with logs in ``logs/``). ``metrics_from`` becomes
    ``"logs"`` on rows whose epoch the logs hold.

    Example:
        >>> joined = join_epoch_metrics(runlens.read_checkpoints("ckpt/"),
        ...                             runlens.read_epochs("logs/"))          # doctest: +SKIP
    """
    rows = table["kind"].isin(KERAS_KINDS).to_numpy(dtype=bool)
    return _join(table, epochs, rows=rows, key="epoch", shift=0)


def join_step_metrics(table: pd.DataFrame, evals: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the metrics of the Lightning evaluation logged at each Lightning row's
    ``step - 1`` (see the module docstring); runs paired as in :func:`join_epoch_metrics`."""
    if "step" not in table.columns:
        return table
    rows = (table["kind"] == "lightning").to_numpy(dtype=bool)
    return _join(table, evals, rows=rows, key="step", shift=-1)


def _join(table: pd.DataFrame, logs: pd.DataFrame, *, rows: np.ndarray, key: str, shift: int) -> pd.DataFrame:
    table = table.reset_index(drop=True)
    metrics = [c for c in logs.columns if c not in _LOG_KEYS]
    logs = logs[["run", key, *metrics]].copy()
    ckpt_runs, log_runs = set(table.loc[rows, "run"].dropna()), set(logs["run"])
    if not ckpt_runs & log_runs and len(ckpt_runs) == 1 and len(log_runs) == 1:
        logs["run"] = next(iter(ckpt_runs))
    logs[key] = logs[key].astype("Int64")
    logs["run"] = logs["run"].astype(table["run"].dtype)  # the same key type (names: NAME_DTYPE)
    logs = logs.drop_duplicates(["run", key], keep="last")  # a resumed run logs some steps twice
    logs["_found"] = True
    left = table.loc[rows, ["run", key]].copy()
    left[key] = left[key].astype("Int64") + shift
    merged = left.merge(logs, on=["run", key], how="left")
    merged.index = left.index
    found = pd.Series(False, index=table.index)
    found[left.index] = merged["_found"].fillna(False).astype(bool)
    for metric in metrics:
        logged = merged[metric].astype("Float64").reindex(table.index)  # NaN stays NaN, others <NA>
        if metric in table.columns:
            table[metric] = logged.fillna(table[metric].astype("Float64"))
        else:
            table[metric] = logged
    table["metrics_from"] = table["metrics_from"].where(~found, "logs").astype("str")
    return table


def layout_logdir(root: Path, paths: Iterable[str]) -> Path | None:
    """The logdir of the bundled layout (``RUN/checkpoints`` beside ``RUN/train``), if there is one.

    >>> layout_logdir(Path("runs"), ["runs/exp1/checkpoints/e_01.keras"])   # doctest: +SKIP
    PosixPath('runs')
    """

    def has_logs(folder: Path) -> bool:
        return any((folder / name).is_dir() for name in _LOG_FOLDERS)

    return _logdir(root, paths, has_logs)


def lightning_logdir(root: Path, paths: Iterable[str]) -> Path | None:
    """The logdir of Lightning's layout (``version_N/checkpoints`` beside ``version_N``'s event
    files), if there is one.

    >>> lightning_logdir(Path("lightning_logs"), ["lightning_logs/version_0/checkpoints/last.ckpt"])  # doctest: +SKIP
    PosixPath('lightning_logs')
    """

    def has_logs(folder: Path) -> bool:
        try:
            return any(_EVENTS in name for name in os.listdir(folder))
        except OSError:
            return False

    return _logdir(root, paths, has_logs)


def _logdir(root: Path, paths: Iterable[str], has_logs) -> Path | None:
    if root.name == "checkpoints" and has_logs(root.parent):
        return root.parent
    for path in paths:
        folder = Path(path).parent
        if folder != root and folder.name == "checkpoints" and has_logs(folder.parent):
            return root
    return None
