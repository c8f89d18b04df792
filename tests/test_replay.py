"""runlens.replay on epoch frames: decisions from the real Keras callbacks, savings from the frame.

Stop/best/restored epochs are checked against the real ``keras.callbacks.EarlyStopping`` run over
each run's column; savings and regret are recomputed here from the frame's rows; the learning-rate
columns are checked against logs written by driving the real ``ReduceLROnPlateau``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _policy_helpers import drive_early_stopping, drive_plateau, epoch_frame, keras3_model, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
from runlens.errors import RunlensError


@pytest.fixture(scope="module")
def keras3():
    import keras

    return keras, keras3_model()


@st.composite
def frames(draw):
    """1-4 runs of val_loss (gaps and NaNs included) with increasing wall times."""
    runs = {}
    for i in range(draw(st.integers(1, 4))):
        values = draw(values_strategy(max_size=20).filter(bool))
        steps = draw(st.lists(st.floats(0.5, 100.0), min_size=len(values), max_size=len(values)))
        runs[f"run{i}"] = {"val_loss": values, "wall_time": list(np.cumsum(steps))}
    return runs


def _expected_costs(values, walls, stopped, restored):
    """Savings and regret straight from the definitions, one run at a time."""
    logged = [v for v in values if v is not None and not math.isnan(v)]
    saved = 0 if stopped is None else len(values) - stopped - 1
    time_saved = 0.0 if stopped is None else walls[-1] - walls[stopped]
    restored_value = values[restored]
    if restored_value is None or not logged:
        regret = None
    elif math.isnan(restored_value):
        regret = math.inf
    else:
        regret = 0.0 if restored_value == min(logged) else max(restored_value - min(logged), 0.0)
    return saved, time_saved, restored_value, regret


@settings(max_examples=150, deadline=None)
@given(
    runs=frames(),
    patience=st.sampled_from([0, 1, 2, 4]),
    restore=st.booleans(),
    min_delta=st.sampled_from([0.0, 1e-3, 0.25]),
)
def test_replay_matches_keras_and_the_frame(keras3, runs, patience, restore, min_delta):
    keras, model = keras3
    frame = epoch_frame(runs)
    policy = runlens.EarlyStopping(patience=patience, restore_best_weights=restore, min_delta=min_delta)
    table = runlens.replay(frame, policy)
    assert table["run"].tolist() == sorted(runs)
    for i, row in enumerate(table.itertuples()):
        values, walls = runs[row.run]["val_loss"], runs[row.run]["wall_time"]
        real = drive_early_stopping(
            keras.callbacks.EarlyStopping(
                patience=patience, restore_best_weights=restore, min_delta=min_delta
            ),
            model,
            "val_loss",
            values,
        )
        assert (None if pd.isna(row.stopped_epoch) else row.stopped_epoch) == real.stopped_epoch
        assert row.restored_epoch == real.held_epoch
        assert row.epochs_trained == real.epochs_trained and row.epochs_logged == len(values)
        saved, time_saved, restored_value, regret = _expected_costs(
            values, walls, real.stopped_epoch, real.held_epoch
        )
        assert row.epochs_saved == saved and row.fraction_saved == saved / len(values)
        assert row.time_saved_s == pytest.approx(time_saved)
        assert _optional(table["restored_value"].iloc[i]) == restored_value or math.isnan(restored_value)
        assert _optional(table["regret"].iloc[i]) == (None if regret is None else pytest.approx(regret))


def _optional(x):
    """pd.NA -> None; a NaN stays NaN (Float64 columns keep the two apart)."""
    return None if x is pd.NA else float(x)


def test_a_stop_with_restore_loses_nothing_and_a_late_best_is_regret():
    runs = {
        "plateau": {"val_loss": [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]},
        "late_best": {"val_loss": [1.0, 0.5, 0.6, 0.7, 0.2, 0.1]},
        "every_2nd": {"val_loss": [1.0, None, 0.5, None, 0.6, None, 0.7, None]},
    }
    table = runlens.replay(epoch_frame(runs), runlens.EarlyStopping(patience=2, restore_best_weights=True))
    rows = table.set_index("run")
    assert rows.loc["plateau", ["stopped_epoch", "restored_epoch", "epochs_saved", "regret"]].tolist() == [
        3,
        1,
        2,
        0.0,
    ]
    assert rows.loc["plateau", "time_saved_s"] == 20.0  # epochs 4 and 5, 10 s each
    assert rows.loc["late_best", "regret"] == pytest.approx(0.5 - 0.1)
    assert rows.loc["late_best", ["run_best_epoch", "run_best_value"]].tolist() == [5, 0.1]
    # the epochs without validation do not count toward patience
    assert rows.loc["every_2nd", ["stopped_epoch", "epochs_saved"]].tolist() == [6, 1]
    assert str(table["stopped_epoch"].dtype) == "Int64" and str(table["regret"].dtype) == "Float64"


def test_max_mode_regret_and_a_run_that_never_stops():
    runs = {
        "a": {"val_accuracy": [0.5, 0.7, 0.65, 0.6]},
        "b": {"val_accuracy": [0.5, 0.6, 0.7, 0.8]},
    }
    table = runlens.replay(epoch_frame(runs), runlens.EarlyStopping(monitor="val_accuracy", patience=1))
    rows = table.set_index("run")
    assert rows.loc["a", "stopped_epoch"] == 2 and rows.loc["a", "regret"] == pytest.approx(0.7 - 0.65)
    assert pd.isna(rows.loc["b", "stopped_epoch"]) and rows.loc["b", "epochs_saved"] == 0
    assert rows.loc["b", "time_saved_s"] == 0.0 and rows.loc["b", "regret"] == 0.0


def test_unknown_monitor_lists_the_metrics():
    frame = epoch_frame({"a": {"loss": [1.0, 0.5], "val_loss": [1.0, 0.6], "val_accuracy": [0.1, 0.2]}})
    with pytest.raises(
        RunlensError,
        match=r"'val_acc' is not a logged metric; metrics in these runs: loss, val_loss, val_accuracy",
    ):
        runlens.replay(frame, runlens.EarlyStopping(monitor="val_acc", mode="max"))


def test_frames_that_are_not_epoch_frames_are_refused():
    frame = epoch_frame({"a": {"val_loss": [1.0, 0.5]}})
    with pytest.raises(RunlensError, match="lacks column"):
        runlens.replay(frame.drop(columns="wall_time"), runlens.EarlyStopping())
    with pytest.raises(RunlensError, match="more than one row for an epoch"):
        runlens.replay(pd.concat([frame, frame], ignore_index=True), runlens.EarlyStopping())
    with pytest.raises(RunlensError, match="policy must be a runlens.EarlyStopping"):
        runlens.replay(frame, runlens.ReduceLROnPlateau())


def _keras_lr_log(keras, model, params, values, initial_lr, timing):
    """The learning rate a real fit would log per epoch, for either callback order."""
    real = drive_plateau(
        keras.callbacks.ReduceLROnPlateau(**params),
        model,
        "val_loss",
        values,
        get_lr=lambda m: float(keras.ops.convert_to_numpy(m.optimizer.learning_rate)),
        set_lr=lambda m, lr: setattr(m.optimizer, "learning_rate", lr),
        initial_lr=initial_lr,
    )
    used = list(real.learning_rates)
    return used if timing == "used" else used[1:] + [real.final_lr]


@pytest.mark.parametrize("timing", ["used", "after"])
def test_lr_replay_agrees_with_a_real_schedule_and_finds_where_another_departs(keras3, timing):
    keras, model = keras3
    values = [1.0, 0.8, 0.8, 0.8, 0.7, 0.7, 0.7, 0.7, 0.6, 0.6, 0.6, 0.6]
    real_params = dict(monitor="val_loss", patience=2, factor=0.5, min_delta=0.0)
    logged = _keras_lr_log(keras, model, real_params, values, 0.1, timing)
    frame = epoch_frame({"a": {"val_loss": values, "learning_rate": logged}})
    es = runlens.EarlyStopping(patience=100)  # never stops: the LR replay covers every epoch
    same = runlens.replay(
        frame, es, lr_policy=runlens.ReduceLROnPlateau(**real_params), initial_lr=0.1, logged_lr_timing=timing
    )
    assert pd.isna(same.loc[0, "lr_diverges_at"])
    assert same.loc[0, "lr_reduced_at"] == (3, 6, 10)
    # a more patient policy: its first different rate is the epoch after the run's first reduction
    other = dict(real_params, patience=3)
    other_used = _keras_lr_log(keras, model, other, values, 0.1, "used")
    real_used = _keras_lr_log(keras, model, real_params, values, 0.1, "used")
    first_difference = next(e for e, (a, b) in enumerate(zip(other_used, real_used)) if a != b)
    moved = runlens.replay(
        frame, es, lr_policy=runlens.ReduceLROnPlateau(**other), initial_lr=0.1, logged_lr_timing=timing
    )
    assert moved.loc[0, "lr_diverges_at"] == first_difference == 4


def test_lr_replay_defaults_to_the_first_logged_rate_and_reads_tf_keras_lr():
    values = [1.0, 1.0, 1.0]
    frame = epoch_frame({"a": {"val_loss": values, "lr": [0.1, 0.1, 0.1]}})
    policy = runlens.ReduceLROnPlateau(patience=1, semantics="keras2")
    table = runlens.replay(frame, runlens.EarlyStopping(patience=5, semantics="keras2"), lr_policy=policy)
    assert table.loc[0, "lr_reduced_at"] == (1, 2) and table.loc[0, "lr_diverges_at"] == 2
    tenth = np.float32(0.1)
    assert table.loc[0, "lr_final"] == float(tenth * tenth * tenth)  # tf-keras multiplies in float32
    no_lr = epoch_frame({"a": {"val_loss": values}})
    with pytest.raises(RunlensError, match="pass initial_lr"):
        runlens.replay(no_lr, runlens.EarlyStopping(), lr_policy=policy)
    assert (
        runlens.replay(no_lr, runlens.EarlyStopping(), lr_policy=policy, initial_lr=0.1).loc[0, "lr_final"]
        > 0
    )


def test_lr_replay_stops_where_early_stopping_stops():
    values = [1.0, 0.9, 0.95, 0.96, 0.97, 0.98]
    frame = epoch_frame({"a": {"val_loss": values, "learning_rate": [0.1] * 6}})
    table = runlens.replay(
        frame, runlens.EarlyStopping(patience=1), lr_policy=runlens.ReduceLROnPlateau(patience=2)
    )
    # EarlyStopping ends training after epoch 2, before the plateau callback could reduce (epoch 3)
    assert table.loc[0, "stopped_epoch"] == 2 and table.loc[0, "lr_reduced_at"] == ()
    assert pd.isna(table.loc[0, "lr_diverges_at"])
