"""runlens.sweep: every row equals replay() summed over runs, frontier and recommendation by rule.

The sweep answers all patiences from one pass per run; replay() (whose decisions the parity tests
tie to the real Keras callbacks) is the reference for every row.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from _policy_helpers import epoch_frame, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
from runlens.errors import RunlensError


@st.composite
def frames(draw):
    runs = {}
    for i in range(draw(st.integers(1, 5))):
        values = draw(values_strategy(max_size=25).filter(bool))
        runs[f"r{i}"] = {"val_loss": values}
    return epoch_frame(runs)


def _replayed(frame, **setting):
    return runlens.replay(frame, runlens.EarlyStopping(monitor="val_loss", **setting))


@settings(max_examples=60, deadline=None)
@given(
    frame=frames(),
    patience=st.lists(st.integers(0, 8), min_size=1, max_size=4),
    min_delta=st.lists(st.sampled_from([0.0, 1e-3, 0.1, -0.25]), min_size=1, max_size=2),
    start=st.sampled_from([0, [0, 2]]),
    baseline=st.sampled_from([None, [None, 0.5]]),
    restore=st.booleans(),
    semantics=st.sampled_from(["keras3", "keras2"]),
)
def test_every_row_is_replay_summed_over_runs(
    frame, patience, min_delta, start, baseline, restore, semantics
):
    result = runlens.sweep(
        frame,
        patience=patience,
        min_delta=min_delta,
        start_from_epoch=start,
        baseline=baseline,
        restore_best_weights=restore,
        semantics=semantics,
    )
    table = result.table
    assert len(table) == len(set(patience)) * len(set(min_delta)) * len(np.atleast_1d(start)) * (
        1 if baseline is None else len(baseline)
    )
    for row in table.itertuples():
        base = None if row.baseline is pd.NA else float(row.baseline)
        runs = _replayed(
            frame,
            patience=row.patience,
            min_delta=row.min_delta,
            start_from_epoch=row.start_from_epoch,
            baseline=base,
            restore_best_weights=restore,
            semantics=semantics,
        )
        regret = runs["regret"].to_numpy(dtype=float, na_value=np.nan)
        assert row.epochs_saved == runs["epochs_saved"].sum()
        assert row.time_saved_s == pytest.approx(runs["time_saved_s"].sum())
        assert row.runs_stopped == runs["stopped_epoch"].notna().sum()
        assert row.runs_lost == (regret > 0).sum()
        defined = regret[~np.isnan(regret)]
        if len(defined):
            assert row.max_regret == defined.max() and row.mean_regret == pytest.approx(defined.mean())
        else:
            assert math.isnan(row.max_regret) and math.isnan(row.mean_regret)
    _check_frontier_and_recommendation(result, frame)


def _check_frontier_and_recommendation(result, frame):
    table = result.table
    points = list(zip(table["epochs_saved"], table["runs_lost"]))
    for i, (saved, lost) in enumerate(points):
        dominated = any(s >= saved and lo <= lost and (s > saved or lo < lost) for s, lo in points)
        assert table["frontier"].iloc[i] == (not dominated)
    eligible = [row for row in table.itertuples() if row.max_regret <= result.tolerance]
    if not eligible:
        assert result.recommended is None and not table["recommended"].any()
        return

    def rank(row):  # the documented order: saved, time, mean regret, patience, |min_delta|, start, baseline
        time_saved = -math.inf if math.isnan(row.time_saved_s) else row.time_saved_s
        base = row.baseline
        return (
            -row.epochs_saved,
            -time_saved,
            row.mean_regret,
            -row.patience,
            abs(row.min_delta),
            row.start_from_epoch,
            base is not pd.NA,
            -math.inf if base is pd.NA else base,
        )

    best = min(eligible, key=rank)
    assert table["recommended"].tolist() == [i == best.Index for i in table.index]
    # the recommendation is a valid EarlyStopping that replays to the row it came from;
    # `recommended` holds Keras' arguments, `recommended_policy` adds runlens' semantics
    policy = result.recommended_policy
    assert policy == runlens.EarlyStopping(**result.recommended, semantics=policy.semantics)
    runs = runlens.replay(frame, policy)
    assert runs["epochs_saved"].sum() == best.epochs_saved


def test_tie_breaks_prefer_time_then_caution():
    # two runs; patience 1 and 2 save the same epochs on run a, nothing is lost anywhere
    frame = epoch_frame(
        {
            "a": {"val_loss": [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99]},
            "b": {"val_loss": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]},
        }
    )
    result = runlens.sweep(frame, patience=[1, 2, 3, 10], tolerance=0.0)
    table = result.table.set_index("patience")
    assert table["epochs_saved"].tolist() == [4, 3, 2, 0]
    assert table["max_regret"].tolist() == [0.0] * 4
    assert result.recommended == {  # Keras' EarlyStopping arguments, nothing else (issue 14 item 1)
        "monitor": "val_loss",
        "mode": "auto",
        "restore_best_weights": True,
        "patience": 1,
        "min_delta": 0.0,
        "start_from_epoch": 0,
        "baseline": None,
    }
    assert result.recommended_policy.semantics == "keras3"
    # equal savings: the larger patience wins
    flat = epoch_frame({"a": {"val_loss": [1.0, 0.9, 0.95, 0.96]}})
    tied = runlens.sweep(flat, patience=[2, 5, 9]).table
    assert tied["epochs_saved"].tolist() == [0, 0, 0]
    assert tied.loc[tied["recommended"], "patience"].tolist() == [9]


def test_tolerance_admits_settings_that_lose_a_little():
    frame = epoch_frame(
        {
            "late": {"val_loss": [1.0, 0.5, 0.6, 0.7, 0.49, 0.48, 0.47, 0.46]},
            "flat": {"val_loss": [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]},
        }
    )
    strict = runlens.sweep(frame, patience=[2, 10])
    assert strict.recommended["patience"] == 10
    loose = runlens.sweep(frame, patience=[2, 10], tolerance=0.05)
    assert loose.recommended["patience"] == 2
    row = loose.table.set_index("patience").loc[2]
    assert row["runs_lost"] == 1 and row["max_regret"] == pytest.approx(0.5 - 0.46)
    assert loose.table["frontier"].tolist() == [True, True]
    # without restore_best_weights every setting ends on a worse value than the run's best
    assert runlens.sweep(frame, patience=[2, 10], restore_best_weights=False).recommended is None


def test_bad_grids_are_refused():
    frame = epoch_frame({"a": {"val_loss": [1.0, 0.5]}})
    with pytest.raises(RunlensError, match="patience needs at least one value"):
        runlens.sweep(frame, patience=[])
    with pytest.raises(RunlensError, match="tolerance must be >= 0"):
        runlens.sweep(frame, tolerance=-1)
    with pytest.raises(RunlensError, match="min_delta must be a finite number"):
        runlens.sweep(frame, min_delta=[0.0, math.inf])
    with pytest.raises(RunlensError, match="metrics in these runs: val_loss"):
        runlens.sweep(frame, monitor="val_accuracy")


def test_a_hundred_settings_over_a_hundred_runs_is_fast():
    rng = np.random.default_rng(0)
    epochs = np.arange(100)
    runs = {}
    for i in range(100):
        curve = 1.0 / (1 + 0.1 * epochs) + rng.normal(0, 0.02, size=100) + 0.002 * np.maximum(epochs - 40, 0)
        runs[f"run{i:03d}"] = {"val_loss": np.float32(curve).astype(float).tolist()}
    frame = epoch_frame(runs)
    start = time.perf_counter()
    patience = [0, 2, 4, 6, 8, 10, 15, 20, 30, 99]
    min_delta = [0.0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.02, 0.03, 0.05, 0.1]
    result = runlens.sweep(frame, patience=patience, min_delta=min_delta)
    elapsed = time.perf_counter() - start
    print(f"\nsweep: {len(result.table)} settings x 100 runs x 100 epochs in {elapsed:.2f}s")
    assert len(result.table) == 100
    assert elapsed < 3.0  # about 0.15 s alone on one core; generous for a shared machine
    # patience 99 never stops and restores the best epoch (with min_delta 0): lossless
    table = result.table
    assert table.loc[(table["patience"] == 99) & (table["min_delta"] == 0), "max_regret"].tolist() == [0.0]
    assert result.recommended is not None and table["frontier"].any()


def test_the_recommendation_pastes_into_keras_and_the_bundled_callbacks(tmp_path):
    """Issue 14 item 1: ``recommended`` is exactly Keras' EarlyStopping arguments, so the real
    ``keras.callbacks.EarlyStopping(**rec)`` and ``runlens.keras.callbacks(run, early_stopping=rec)``
    take it; ``recommended_policy`` keeps runlens' semantics."""
    import keras

    import runlens.keras

    frame = epoch_frame({"a": {"val_loss": [1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99]}})
    result = runlens.sweep(frame, patience=[1, 2, 3], min_delta=[0.0, 0.01], semantics="keras2", baseline=2.0)
    rec = result.recommended
    assert "semantics" not in rec and result.recommended_policy.semantics == "keras2"
    real = keras.callbacks.EarlyStopping(**rec)
    assert (real.patience, real.min_delta, real.baseline) == (rec["patience"], rec["min_delta"], 2.0)
    listed = runlens.keras.callbacks(tmp_path / "run", early_stopping=rec)
    [bundled] = [c for c in listed if isinstance(c, keras.callbacks.EarlyStopping)]
    assert (bundled.patience, bundled.monitor, bundled.baseline) == (rec["patience"], "val_loss", 2.0)
    assert (
        runlens.build_report(frame, early_stopping=rec).settings.early_stopping["patience"] == rec["patience"]
    )
