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

Tags that ``rename`` gives one name (``eval/loss`` and ``eval_loss`` are both HF's ``eval_loss``)
are one series, as keys of one log dict: the value written last at a step, the latest in a window;
the name marks evaluations if one of its tags does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from runlens.epochs import metric_columns
from runlens.name_columns import NAME_DTYPE, name_codes
from runlens.row_keys import last_written, packed
from runlens.times import unix_seconds, utc_from_unix_seconds

__all__ = ["step_evals"]


def step_evals(
    long: pd.DataFrame,
    is_eval_tag: Callable[[str], bool],
    *,
    epoch_tag: str,
    rename: Callable[[str], str] | None = None,
) -> pd.DataFrame:
    """One row per evaluation of the runs in ``long`` (a :func:`runlens.read_scalars` frame, rows
    in the order written); a row makes an evaluation when ``is_eval_tag(its tag)``; tags are
    renamed with ``rename`` (None: kept). Rows without a run or a tag are not read.

    Columns: ``run``, ``eval``, ``step``, ``epoch`` (float64, NaN: not logged), ``wall_time``,
    then one nullable ``Float64`` column per tag other than ``epoch_tag``.

    Runs and tags are integer codes in name order and each row's (run, step) one packed int64
    (:mod:`runlens.row_keys`): evaluations are found by sorting, values matched to them by binary
    search; names are looked at once per run and tag.
    """
    long = pd.DataFrame(long, copy=False)  # without attrs, which pandas deep-copies at every step
    run, run_names = name_codes(long["run"])
    tag, tag_names = name_codes(long["tag"])
    marks = np.array([bool(is_eval_tag(name)) for name in tag_names], dtype=bool)
    if rename is not None:  # tags given one name are one series (see the module docstring)
        label_of_tag, labels = pd.factorize(np.array([rename(name) for name in tag_names], dtype=object))
        tag = np.append(label_of_tag, -1)[tag]
        label_marks = np.zeros(len(labels), dtype=bool)
        np.logical_or.at(label_marks, label_of_tag, marks)
        tag_names, marks, epoch_tag = [str(label) for label in labels], label_marks, rename(epoch_tag)
    marks = np.append(marks, False)  # code -1: no tag
    epoch_code = tag_names.index(epoch_tag) if epoch_tag in tag_names else -1  # -1: none
    step = long["step"].to_numpy(dtype=np.int64)
    # The value written last of each (run, tag, step), sorted by them; rows without a run or tag out.
    kept = last_written(run, tag, step)
    kept = kept[(run[kept] >= 0) & (tag[kept] >= 0)]
    run, tag, step = run[kept], tag[kept], step[kept]
    wall = unix_seconds(long["wall_time"])[kept]
    value = long["value"].to_numpy(dtype=np.float64)[kept]
    when = packed(run, step)  # >= 0, orders as (run, step)

    # Evaluations: the distinct (run, step) of the rows with an evaluation tag, sorted.
    marked = np.flatnonzero(marks[tag])
    marked = marked[np.argsort(when[marked], kind="stable")]
    starts = np.flatnonzero(np.diff(when[marked], prepend=-1))
    at = marked[starts]  # one row of each evaluation
    eval_run = run[at]
    evals = pd.DataFrame(
        {
            "run": eval_run,
            "eval": np.arange(len(at)) - np.searchsorted(eval_run, eval_run),  # from 0 within the run
            "step": step[at],
            "epoch": np.full(len(at), np.nan),
            # the latest wall time among the evaluation's own rows (NaN: none known)
            "wall_time": utc_from_unix_seconds(
                np.fmax.reduceat(wall[marked], starts) if len(at) else wall[at]
            ),
        }
    )
    # Lookups by evaluation row, one more entry (-1) for "no evaluation": no key or run is negative.
    eval_when, eval_run = np.append(when[at], -1), np.append(eval_run, -1)

    # The epoch tag's value logged at an evaluation's own step.
    is_epoch = tag == epoch_code
    epoch_rows = np.flatnonzero(is_epoch)
    match = np.searchsorted(eval_when[:-1], when[epoch_rows])
    exact = eval_when[match] == when[epoch_rows]
    evals.loc[match[exact], "epoch"] = value[epoch_rows[exact]]

    # Every other value goes to the first evaluation at or after its step, in its run ...
    others = np.flatnonzero(~is_epoch)
    match = np.searchsorted(eval_when[:-1], when[others])
    same_run = eval_run[match] == run[others]
    others, match = others[same_run], match[same_run]
    # ... the latest of each (evaluation, tag): rows are sorted by step within (run, tag).
    latest = last_written(match, tag[others])
    others, position = others[latest], match[latest]
    names = pd.Categorical.from_codes(tag[others], categories=pd.Index(tag_names, dtype=object))
    for name, column in metric_columns(len(evals), position, names, value[others]).items():
        evals[name] = column
    evals["run"] = pd.array([run_names[code] for code in eval_run[:-1]], dtype=NAME_DTYPE)
    return evals
