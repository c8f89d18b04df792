"""The long scalar frame -> one row per (run, epoch), named as Keras' ``logs`` keys.

Keras' TensorBoard callback writes ``RUN/train`` and ``RUN/validation`` folders with ``epoch_<metric>``
tags at step = epoch (0-based). Here they become one run ``RUN`` with the columns Keras' ``logs``
dict has at the end of an epoch: ``loss``, ``accuracy``, ``learning_rate`` (from ``train``) and
``val_loss``, ``val_accuracy`` (from ``validation``). A run folder not named ``train`` or
``validation`` keeps its name and its ``epoch_*`` tags become columns as they are.

Metric columns are pandas' nullable ``Float64``: ``<NA>`` marks an epoch for which nothing was logged
(e.g. ``validation_freq=2``), while a logged NaN stays NaN -- ``df["val_loss"].isna()`` is True only
for the former. When a resumed run logged an epoch twice, the value written last wins.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.arrays import FloatingArray

from runlens.errors import RunlensError, RunlensWarning
from runlens.events.logdir import read_scalars
from runlens.events.sources import KERAS_SPLITS
from runlens.name_columns import as_names
from runlens.textsafe import tag_list
from runlens.times import unix_seconds, utc_from_unix_seconds

EPOCH_PREFIX = "epoch_"
_SPLITS = dict(zip(KERAS_SPLITS, ("", "val_")))  # metric prefix of each of Keras' folders


def read_epochs(
    path: str | os.PathLike[str], *, runs: str | Sequence[str] | None = None, **read_options: Any
) -> pd.DataFrame:
    """One row per ``(run, epoch)`` with one column per Keras ``logs`` key.

    Columns: ``run`` (categorical of str, as :func:`runlens.read_scalars`), ``epoch`` (int64,
    0-based as Keras' ``on_epoch_end``), ``wall_time`` (``datetime64[ns, UTC]``: when the epoch's
    last value was written), then the metrics sorted by name (nullable ``Float64``, see the module
    docstring). Rows are sorted by run, then epoch; the problems met while reading are in
    ``df.attrs["problems"]``. ``runs`` selects runs by name or glob, as printed here (``"exp1"``)
    or as folders (``"exp1/train"``), before reading (see
    :func:`runlens.events.sources.run_names`); ``read_options`` (``workers``, ``executor``,
    ``cache``, ``storage_options``) are passed to :func:`runlens.read_scalars`.

    >>> epochs = read_epochs("sample_logs")                        # doctest: +SKIP
    >>> epochs[epochs.run == "overfits"][["epoch", "loss", "val_loss"]]  # doctest: +SKIP
    """
    scalars = read_scalars(path, runs=runs, tags=f"{EPOCH_PREFIX}*", **read_options)
    frame = epochs_from_scalars(scalars)
    if frame.empty:
        raise RunlensError(_not_keras(path, read_scalars(path, runs=runs, **read_options)))
    _warn_runs_without_epochs(path, scalars, frame)
    frame.attrs["problems"] = scalars.attrs.get("problems", [])
    return frame


def _not_keras(path: str | os.PathLike[str], scalars: pd.DataFrame) -> str:
    """What a logdir without ``epoch_*`` scalars holds instead, and what to read it with."""
    found = (
        f"found tags {tag_list(scalars['tag'].astype(str).unique())}" if len(scalars) else "found no scalars"
    )
    return (
        f"{os.fspath(path)}: no per-epoch scalars (epoch_* tags, as Keras' TensorBoard callback writes "
        f"them); {found}. Lightning, HF Trainer and other logs: runlens.read_evals(path) reads them "
        "(one row per evaluation)"
    )


def _warn_runs_without_epochs(
    path: str | os.PathLike[str], scalars: pd.DataFrame, frame: pd.DataFrame
) -> None:
    """A RunlensWarning naming the folders left out for holding no ``epoch_*`` scalar (a folder
    whose name is a run of the frame, Keras' parent folder of hparams, is not left out)."""
    folders = pd.Series(scalars.attrs["runs"], dtype=object)
    parent, _ = split_keras_run(folders)
    left_out = sorted(set(parent) - set(frame["run"]))
    if left_out:
        names = ", ".join(map(repr, left_out[:5])) + (
            f" and {len(left_out) - 5} more" if len(left_out) > 5 else ""
        )
        warnings.warn(
            f"{os.fspath(path)}: run(s) {names} hold no epoch_* scalars and are not in the epoch frame; "
            "runlens.read_evals(path) reads Lightning, HF Trainer and other logs",
            RunlensWarning,
            stacklevel=3,
        )


def epochs_from_scalars(scalars: pd.DataFrame) -> pd.DataFrame:
    """The epoch frame of an already-read long frame (see :func:`read_epochs`)."""
    epoch_rows = scalars[scalars["tag"].astype(str).str.startswith(EPOCH_PREFIX)]
    run_folder = as_names(epoch_rows["run"])
    parent, split = split_keras_run(run_folder)
    metric = split.map(_SPLITS).fillna("") + epoch_rows["tag"].astype(str).str.slice(len(EPOCH_PREFIX))
    long = pd.DataFrame(
        {
            "run": parent.array,  # names as they are (NAME_DTYPE)
            "epoch": epoch_rows["step"].to_numpy(),
            "metric": metric.to_numpy(),
            "wall_time": unix_seconds(epoch_rows["wall_time"]),
            "value": epoch_rows["value"].to_numpy(),
        }
    )
    # Rows are in the order written, so a resumed run's repeated epoch keeps its last value.
    long = long.drop_duplicates(["run", "epoch", "metric"], keep="last")
    keys = long[["run", "epoch"]].drop_duplicates().sort_values(["run", "epoch"], kind="stable")
    index = pd.MultiIndex.from_frame(keys)
    out = keys.reset_index(drop=True)
    out["epoch"] = out["epoch"].astype(np.int64)
    walls = long.groupby(["run", "epoch"])["wall_time"].max().reindex(index).to_numpy()
    out["wall_time"] = utc_from_unix_seconds(walls)
    position = index.get_indexer(pd.MultiIndex.from_frame(long[["run", "epoch"]]))
    for name, column in metric_columns(len(out), position, long["metric"], long["value"]).items():
        out[name] = column
    # Categorical as read_scalars' run: a sweep's epoch frame repeats each name for every epoch.
    out["run"] = pd.Categorical(as_names(out["run"]))  # names as the OS gives them
    return out


def metric_columns(
    rows: int, position: np.ndarray, metric: pd.Series, value: pd.Series
) -> dict[str, FloatingArray]:
    """One nullable ``Float64`` column per metric name, sorted by name: ``value[i]`` lands in row
    ``position[i]`` of column ``metric[i]`` (one value per row and metric); rows that got no value
    are ``<NA>``, a logged NaN stays NaN.

    >>> cols = metric_columns(2, np.array([1]), pd.Series(["loss"]), pd.Series([0.5]))
    >>> cols["loss"].tolist()
    [<NA>, 0.5]
    """
    codes, names = pd.factorize(metric.astype(str).to_numpy())
    values = np.asarray(value, dtype=np.float64)
    columns: dict[str, FloatingArray] = {}
    for code in np.argsort(names.astype(str), kind="stable"):
        chosen = codes == code
        data = np.zeros(rows, dtype=np.float64)
        missing = np.ones(rows, dtype=bool)
        data[position[chosen]] = values[chosen]
        missing[position[chosen]] = False
        columns[str(names[code])] = FloatingArray(data, missing)  # NaN stays NaN; NA: not logged
    return columns


def split_keras_run(run_folder: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``"exp/train"`` -> (``"exp"``, ``"train"``); ``"train"`` -> (``"."``, ``"train"``); other
    folders -> (themselves, ``""``)."""
    if run_folder.empty:
        return run_folder, run_folder
    parts = run_folder.str.rpartition("/")
    head, last = parts[0], parts[2]
    is_split = last.isin(list(_SPLITS))
    parent = run_folder.where(~is_split, head.where(head != "", "."))
    return parent, last.where(is_split, "")
