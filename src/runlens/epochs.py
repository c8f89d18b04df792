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
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.arrays import FloatingArray

from runlens.errors import RunlensError, RunlensWarning
from runlens.events.logdir import read_scalars
from runlens.events.sources import KERAS_SPLITS
from runlens.name_columns import name_codes, names
from runlens.row_keys import last_written
from runlens.textsafe import tag_list
from runlens.times import unix_seconds, utc_from_unix_seconds

EPOCH_PREFIX = "epoch_"
_SPLITS = dict(zip(KERAS_SPLITS, ("", "val_")))  # metric prefix of each of Keras' folders
_PREFIXES = sorted(set(_SPLITS.values()))


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
    parent, _ = split_keras_run(scalars.attrs["runs"])
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
    """The epoch frame of an already-read long frame (see :func:`read_epochs`).

    Names are worked out once per run folder and tag (the categories of ``run`` and ``tag``), rows
    only through their codes: a sweep's 600,000 rows cost a few sorts, no string operation per row.
    Rows without a run or a tag are not epochs.

    >>> long = pd.DataFrame({"run": ["a/train", "a/validation"], "tag": ["epoch_loss"] * 2,
    ...     "step": [0, 0], "wall_time": [1.7e9, 1.7e9 + 1], "value": [0.5, 0.75]})
    >>> epochs_from_scalars(long)[["run", "epoch", "loss", "val_loss"]]
      run  epoch  loss  val_loss
    0   a      0   0.5      0.75
    """
    frame = pd.DataFrame(scalars, copy=False)  # without attrs, which pandas deep-copies at every step
    folder, folders = name_codes(frame["run"])
    tag, tags = name_codes(frame["tag"])
    parents, splits = split_keras_run(folders)
    runs = sorted(set(parents))
    index = {name: i for i, name in enumerate(runs)}
    run_of_folder = np.array([index[parent] for parent in parents], dtype=np.int64)
    prefix_of_folder = np.array([_PREFIXES.index(_SPLITS.get(split, "")) for split in splits], dtype=np.int64)
    table, metric_names = _metric_table(tags)
    rows = np.flatnonzero((folder >= 0) & (table[0][tag] >= 0))
    run = run_of_folder[folder[rows]]
    metric = table[prefix_of_folder[folder[rows]], tag[rows]]
    epoch = frame["step"].to_numpy(dtype=np.int64)[rows]
    # A resumed run's repeated epoch: the value written last; sorted by run, epoch, metric.
    last = last_written(run, epoch, metric)
    chosen = rows[last]
    run, epoch, metric = run[last], epoch[last], metric[last]
    starts_row = np.ones(len(run), dtype=bool)
    starts_row[1:] = (run[1:] != run[:-1]) | (epoch[1:] != epoch[:-1])
    starts = np.flatnonzero(starts_row)
    present, run_of_row = np.unique(run[starts], return_inverse=True)
    out = pd.DataFrame(
        {
            # Categorical as read_scalars' run: a sweep's epoch frame repeats each name for every epoch.
            "run": pd.Categorical.from_codes(run_of_row, categories=names(runs[i] for i in present)),
            "epoch": epoch[starts],
        }
    )
    walls = unix_seconds(frame["wall_time"])[chosen]
    # When the epoch's last value was written (NaN: a time not known, skipped as groupby's max does).
    out["wall_time"] = utc_from_unix_seconds(np.fmax.reduceat(walls, starts) if len(starts) else walls)
    position = np.cumsum(starts_row) - 1
    values = frame["value"].to_numpy(dtype=np.float64)[chosen]
    metric_of_value = pd.Categorical.from_codes(metric, categories=pd.Index(metric_names, dtype=object))
    for name, column in metric_columns(len(out), position, metric_of_value, values).items():
        out[name] = column
    return out


def _metric_table(tags: list[str]) -> tuple[np.ndarray, list[str]]:
    """The metric names of the ``epoch_*`` tags, sorted, and the code of each (folder prefix, tag)
    in them: a metric is the prefix of its folder (``val_`` in Keras' ``validation``) + the tag
    after ``epoch_``. Other tags, and the code -1 (the last column), are -1."""
    names = sorted(
        {p + t[len(EPOCH_PREFIX) :] for p in _PREFIXES for t in tags if t.startswith(EPOCH_PREFIX)}
    )
    table = np.full((len(_PREFIXES), len(tags) + 1), -1, dtype=np.int64)
    for i, prefix in enumerate(_PREFIXES):
        for j, tag in enumerate(tags):
            if tag.startswith(EPOCH_PREFIX):
                table[i, j] = names.index(prefix + tag[len(EPOCH_PREFIX) :])
    return table, names


def metric_columns(
    rows: int, position: np.ndarray, metric: pd.Series | pd.Categorical, value: pd.Series | np.ndarray
) -> dict[str, FloatingArray]:
    """One nullable ``Float64`` column per metric name, sorted by name: ``value[i]`` lands in row
    ``position[i]`` of column ``metric[i]`` (one value per row and metric); rows that got no value
    are ``<NA>``, a logged NaN stays NaN.

    >>> cols = metric_columns(2, np.array([1]), pd.Series(["loss"]), pd.Series([0.5]))
    >>> cols["loss"].tolist()
    [<NA>, 0.5]
    """
    codes, names = pd.factorize(metric)  # a Categorical's codes as they are
    names = [str(name) for name in names]
    values = np.asarray(value, dtype=np.float64)
    known = codes >= 0  # a row without a metric lands nowhere
    # One scatter into a (metric, row) block: each column a row of it, not one pass per metric.
    data = np.zeros((len(names), rows), dtype=np.float64)
    missing = np.ones((len(names), rows), dtype=bool)
    data[codes[known], position[known]] = values[known]
    missing[codes[known], position[known]] = False
    return {
        names[code]: FloatingArray(data[code], missing[code])  # NaN stays NaN; NA: not logged
        for code in np.argsort(np.array(names, dtype=object), kind="stable").tolist()
    }


def split_keras_run(folders: Iterable[str]) -> tuple[list[str], list[str]]:
    """Each run folder's Keras run and split: ``"exp/train"`` -> (``"exp"``, ``"train"``),
    ``"train"`` -> (``"."``, ``"train"``), other folders -> (themselves, ``""``). Plain strings:
    a sweep's 4,000 folders in a millisecond (pandas' string methods took 10).

    >>> split_keras_run(["exp/train", "validation", "runs/x"])
    (['exp', '.', 'runs/x'], ['train', 'validation', ''])
    """
    parents, splits = [], []
    for folder in folders:
        head, _, last = folder.rpartition("/")
        split = last if last in _SPLITS else ""
        parents.append((head or ".") if split else folder)
        splits.append(split)
    return parents, splits
