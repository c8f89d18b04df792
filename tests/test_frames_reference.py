"""The vectorised epoch and evaluation frames held to plain reference loops on generated long frames.

``epochs_from_scalars`` (read_epochs, and read_evals' Keras runs) and ``step_evals`` (read_evals'
Lightning, HF Trainer and generic runs) work on category codes, packed keys and sorts. The
references below are what those frames mean, written row by row: a dict of cells where a later row
overwrites an earlier one. Generated frames have what real logdirs have: resumed runs (a step
logged again, later rows winning), a logged NaN beside a value never logged, NaN wall times,
non-UTF-8 run names (kept as Python gives them: lone surrogates), ``train``/``validation`` at the
root, nested runs, folders named like splits but not, huge and negative steps, categories in any
order and runs in the categories without rows (a subset of a read_scalars frame), or plain str
columns instead of categoricals.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from runlens import epochs_from_scalars
from runlens.evals.detect import is_validation_tag
from runlens.evals.steps import step_evals
from runlens.evals.transformers import trainer_key
from runlens.name_columns import NAME_DTYPE, names
from runlens.times import unix_seconds, utc_from_unix_seconds

NAN = math.nan
ODD = os.fsdecode(b"r\xff")  # a folder name that is not UTF-8
FOLDERS = [
    ".",
    "train",
    "validation",
    "a/train",
    "a/validation",
    "a",
    "a/b/train",
    "a/b/validation",
    "b/c",
    f"{ODD}/train",
    f"{ODD}/validation",
    "train/validation",
    "x/trainer",
    "lightning_logs/version_0",
]
KERAS_TAGS = [
    "epoch_loss",
    "epoch_accuracy",
    "epoch_learning_rate",
    "epoch_",
    "batch_loss",
    "evaluation_loss",
]
STEP_TAGS = ["val_loss", "valid/acc", "loss", "epoch", "lr-Adam", "train/epoch", "eval/loss", "eval_loss"]

steps = st.integers(0, 6) | st.sampled_from([-3, 2**40, 2**62])
walls = st.floats(1.6e9, 1.8e9) | st.just(NAN)
values = st.floats(allow_nan=True, allow_infinity=True)


def rows(tags: list[str]):
    return st.lists(
        st.tuples(st.sampled_from(FOLDERS), st.sampled_from(tags), steps, walls, values), max_size=60
    )


def long_frame(rows: list[tuple], categorical: bool, folders: list[str], tags: list[str]) -> pd.DataFrame:
    """A frame shaped as read_scalars' (rows in the order written); categorical: categories in the
    order of ``folders`` (runs without rows among them) and ``tags`` (only tags with rows)."""
    run = [r[0] for r in rows]
    tag = [r[1] for r in rows]
    if categorical:
        used = [t for t in tags if t in set(tag)]
        run_column = pd.Categorical.from_codes([folders.index(r) for r in run], categories=names(folders))
        tag_column = pd.Categorical.from_codes([used.index(t) for t in tag], categories=names(used))
    else:
        run_column, tag_column = pd.array(run, dtype=NAME_DTYPE), pd.array(tag, dtype=NAME_DTYPE)
    return pd.DataFrame(
        {
            "run": run_column,
            "tag": tag_column,
            "step": np.array([r[2] for r in rows], dtype=np.int64),
            "wall_time": utc_from_unix_seconds(np.array([r[3] for r in rows], dtype=np.float64)),
            "value": np.array([r[4] for r in rows], dtype=np.float64),
        }
    )


def latest(walls: list[float]) -> float:
    known = [w for w in walls if not math.isnan(w)]
    return max(known) if known else NAN


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_frame(got: pd.DataFrame, leading: list[str], expected: list[dict], metrics: list[str]) -> None:
    assert list(got.columns) == leading + metrics
    assert got["run"].astype(object).tolist() == [e["run"] for e in expected]
    for column in leading[1:]:
        if column == "wall_time":
            got_values = unix_seconds(got["wall_time"]).tolist()
        else:
            got_values = got[column].tolist()
        assert all(same(g, e[column]) for g, e in zip(got_values, expected, strict=True)), column
    for metric in metrics:
        assert isinstance(got[metric].dtype, pd.Float64Dtype)
        missing = got[metric].isna().tolist()
        plain = got[metric].to_numpy(dtype=float, na_value=NAN).tolist()
        for e, is_missing, value in zip(expected, missing, plain, strict=True):
            assert is_missing == (metric not in e), (metric, e)  # <NA>: nothing logged
            if metric in e:
                assert same(value, e[metric]), (metric, e, value)  # a logged NaN stays NaN


def reference_epochs(rows: list[tuple]) -> tuple[list[dict], list[str]]:
    """The epoch frame, row by row (module docstring of runlens.epochs)."""
    cells: dict[tuple[str, int, str], tuple[float, float]] = {}
    for folder, tag, step, wall, value in rows:
        if not tag.startswith("epoch_"):
            continue
        head, _, last = folder.rpartition("/")
        if last in ("train", "validation"):
            run, prefix = head or ".", "val_" if last == "validation" else ""
        else:
            run, prefix = folder, ""
        cells[(run, step, prefix + tag[len("epoch_") :])] = (value, wall)  # the later row wins
    expected = []
    for run, epoch in sorted({(run, epoch) for run, epoch, _ in cells}):
        mine = {m: cell for (r, e, m), cell in cells.items() if (r, e) == (run, epoch)}
        row = {"run": run, "epoch": epoch, "wall_time": latest([wall for _, wall in mine.values()])}
        expected.append(row | {m: value for m, (value, _) in mine.items()})
    return expected, sorted({m for _, _, m in cells})


def reference_step_evals(
    rows: list[tuple], is_eval_tag, epoch_tag: str, rename
) -> tuple[list[dict], list[str]]:
    """The evaluations, row by row (module docstring of runlens.evals.steps)."""
    rename = rename or (lambda tag: tag)
    marks: dict[str, bool] = {}
    cells: dict[tuple[str, str, int], tuple[float, float]] = {}
    for run, tag, step, wall, value in rows:
        label = rename(tag)
        marks[label] = marks.get(label, False) or is_eval_tag(tag)
        cells[(run, label, step)] = (value, wall)  # the later row wins
    epoch_label = rename(epoch_tag)
    at: dict[tuple[str, int], list[float]] = {}
    for (run, label, step), (_, wall) in cells.items():
        if marks[label]:
            at.setdefault((run, step), []).append(wall)
    expected, metrics = [], set()
    for run in sorted({run for run, _ in at}):
        checks = sorted(step for r, step in at if r == run)
        for i, step in enumerate(checks):
            row = {"run": run, "eval": i, "step": step, "wall_time": latest(at[(run, step)])}
            row["epoch"] = cells.get((run, epoch_label, step), (NAN, NAN))[0]
            after = checks[i - 1] if i else -math.inf
            window: dict[str, tuple[int, float]] = {}
            for (r, label, s), (value, _) in cells.items():
                in_window = r == run and label != epoch_label and after < s <= step
                if in_window and (label not in window or s > window[label][0]):
                    window[label] = (s, value)  # the latest in the window
            row |= {label: value for label, (_, value) in window.items()}
            metrics |= set(window)
            expected.append(row)
    return expected, sorted(metrics)


@settings(max_examples=400, deadline=None)
@given(rows(KERAS_TAGS), st.booleans(), st.permutations(FOLDERS), st.permutations(KERAS_TAGS))
def test_epochs_from_scalars_matches_the_reference(rows, categorical, folders, tags):
    got = epochs_from_scalars(long_frame(rows, categorical, folders, tags))
    expected, metrics = reference_epochs(rows)
    check_frame(got, ["run", "epoch", "wall_time"], expected, metrics)
    assert got["epoch"].dtype == np.int64
    assert isinstance(got["run"].dtype, pd.CategoricalDtype)
    assert got["run"].cat.categories.tolist() == sorted({e["run"] for e in expected})  # only runs with rows
    assert got["run"].cat.categories.dtype == NAME_DTYPE


# (is_eval_tag, epoch_tag, rename) as the Lightning, HF Trainer and generic readers pass them.
READINGS = {
    "lightning": (is_validation_tag, "epoch", None),
    "transformers": (lambda tag: tag.startswith("eval/"), "train/epoch", trainer_key),
    "generic": (lambda tag: tag == "loss", "epoch", None),
}


@settings(max_examples=400, deadline=None)
@given(
    rows(STEP_TAGS),
    st.booleans(),
    st.permutations(FOLDERS),
    st.permutations(STEP_TAGS),
    st.sampled_from(sorted(READINGS)),
)
def test_step_evals_match_the_reference(rows, categorical, folders, tags, reading):
    is_eval_tag, epoch_tag, rename = READINGS[reading]
    frame = long_frame(rows, categorical, folders, tags)
    got = step_evals(frame, is_eval_tag, epoch_tag=epoch_tag, rename=rename)
    expected, metrics = reference_step_evals(rows, is_eval_tag, epoch_tag, rename)
    check_frame(got, ["run", "eval", "step", "epoch", "wall_time"], expected, metrics)
    assert got["eval"].dtype == np.int64 and got["step"].dtype == np.int64
