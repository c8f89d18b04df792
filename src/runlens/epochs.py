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
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.arrays import FloatingArray

from runlens.events.logdir import read_scalars
from runlens.textsafe import as_names

EPOCH_PREFIX = "epoch_"
_SPLITS = {"train": "", "validation": "val_"}


def read_epochs(
    path: str | os.PathLike[str], *, runs: str | Sequence[str] | None = None, **read_options: Any
) -> pd.DataFrame:
    """One row per ``(run, epoch)`` with one column per Keras ``logs`` key.

    Columns: ``run`` (str), ``epoch`` (int64, 0-based as Keras' ``on_epoch_end``), ``wall_time``
    (float64: when the epoch's last value was written), then the metrics sorted by name (nullable
    ``Float64``, see the module docstring). Rows are sorted by run, then epoch; the problems met
    while reading are in ``df.attrs["problems"]``. ``runs`` filters the *folders* read (names or
    globs, e.g. ``"exp1/*"``); ``read_options`` (``workers``, ``executor``, ``cache``,
    ``storage_options``) are passed to :func:`runlens.read_scalars`.

    >>> epochs = read_epochs("sample_logs")                        # doctest: +SKIP
    >>> epochs[epochs.run == "overfits"][["epoch", "loss", "val_loss"]]  # doctest: +SKIP
    """
    scalars = read_scalars(path, runs=runs, tags=f"{EPOCH_PREFIX}*", **read_options)
    frame = epochs_from_scalars(scalars)
    frame.attrs["problems"] = scalars.attrs.get("problems", [])
    return frame


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
            "wall_time": epoch_rows["wall_time"].to_numpy(),
            "value": epoch_rows["value"].to_numpy(),
        }
    )
    # Rows are in the order written, so a resumed run's repeated epoch keeps its last value.
    long = long.drop_duplicates(["run", "epoch", "metric"], keep="last")
    keys = long[["run", "epoch"]].drop_duplicates().sort_values(["run", "epoch"], kind="stable")
    index = pd.MultiIndex.from_frame(keys)
    out = keys.reset_index(drop=True)
    out["epoch"] = out["epoch"].astype(np.int64)
    out["wall_time"] = long.groupby(["run", "epoch"])["wall_time"].max().reindex(index).to_numpy()
    for name, rows in sorted(long.groupby("metric"), key=lambda item: str(item[0])):
        position = index.get_indexer(pd.MultiIndex.from_frame(rows[["run", "epoch"]]))
        data = np.zeros(len(out), dtype=np.float64)
        missing = np.ones(len(out), dtype=bool)
        data[position] = rows["value"].to_numpy()
        missing[position] = False
        out[str(name)] = FloatingArray(data, missing)  # NaN stays NaN; NA means "not logged"
    out["run"] = as_names(out["run"])
    return out


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
