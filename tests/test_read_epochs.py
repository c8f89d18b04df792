"""read_epochs on real Keras 3 fits: History equality, validation_freq, NaN vs not logged, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import writers
from pandas.arrays import FloatingArray

import runlens


def logged(frame: pd.DataFrame, column: str) -> list[float | None]:
    """The column as floats, None where nothing was logged (NaN stays NaN)."""
    missing = frame[column].isna().tolist()
    values = frame[column].to_numpy(dtype=float, na_value=np.nan).tolist()
    return [None if m else v for m, v in zip(missing, values)]


def test_one_row_per_epoch_named_as_keras_logs(keras_run):
    epochs = runlens.read_epochs(keras_run.path)
    assert epochs["run"].tolist() == ["."] * len(keras_run.epochs)
    assert epochs["epoch"].tolist() == keras_run.epochs
    assert epochs["epoch"].dtype == np.int64
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "learning_rate"} <= set(epochs.columns)
    for key, values in keras_run.history.items():
        np.testing.assert_array_equal(
            epochs[key].to_numpy(dtype=float), np.float32(values).astype(float), err_msg=key
        )
    assert all(isinstance(epochs[c].dtype, pd.Float64Dtype) for c in keras_run.history)
    # wall_time grows with the epochs
    assert epochs["wall_time"].is_monotonic_increasing


def test_learning_rate_is_the_one_keras_logged(keras_plateau_run):
    epochs = runlens.read_epochs(keras_plateau_run.path)
    expected = [np.float32(keras_plateau_run.logs[e]["learning_rate"]) for e in keras_plateau_run.epochs]
    np.testing.assert_array_equal(epochs["learning_rate"].to_numpy(dtype=float), np.float64(expected))
    assert len(set(expected)) > 1  # the fixture really reduced the rate


def test_validation_every_second_epoch_is_not_logged_not_nan(keras_sparse_validation_run):
    run = keras_sparse_validation_run
    epochs = runlens.read_epochs(run.path)
    val_epochs = [e for e in run.epochs if "val_loss" in run.logs[e]]
    assert val_epochs == [1, 3, 5]
    got = logged(epochs, "val_loss")
    for epoch, value in zip(run.epochs, got):
        if epoch in val_epochs:
            assert value == float(np.float32(run.logs[epoch]["val_loss"]))
        else:
            assert value is None


def test_a_logged_nan_stays_nan_and_is_not_missing(tmp_path):
    """Keras layout written by tf.summary with a NaN val_loss at epoch 1 and none at epoch 2."""
    import tensorflow as tf

    for split, series in (("train", {0: 1.0, 1: 0.5, 2: 0.25}), ("validation", {0: 2.0, 1: float("nan")})):
        writer = tf.summary.create_file_writer(str(tmp_path / "exp" / split))
        with writer.as_default():
            for epoch, value in series.items():
                tf.summary.scalar("epoch_loss", value, step=epoch)
        writer.close()
    epochs = runlens.read_epochs(tmp_path)
    assert epochs["run"].tolist() == ["exp"] * 3
    assert epochs["val_loss"].isna().tolist() == [False, False, True]
    values = epochs["val_loss"].to_numpy(dtype=float, na_value=-1.0)
    assert values[0] == 2.0 and np.isnan(values[1]) and values[2] == -1.0


def test_a_resumed_run_keeps_every_row_raw_and_the_last_value_per_epoch(keras_resumed_run):
    run = keras_resumed_run
    raw = runlens.read_scalars(run.path, tags="epoch_loss")
    train_steps = raw[raw["run"] == "train"]["step"].tolist()
    assert train_steps.count(run.crash_epoch) == 2  # the raw view keeps the duplicate
    epochs = runlens.read_epochs(run.path)
    last = run.last_written
    assert epochs["epoch"].tolist() == sorted(last)
    for key in ("loss", "val_loss"):
        expected = [float(np.float32(last[e][key])) for e in sorted(last)]
        assert logged(epochs, key) == expected
    # the repeated epoch really differs between the attempts, so "last" is a real choice
    first, second = (a[run.crash_epoch]["loss"] for a in run.attempts[:2])
    assert first != second


def test_several_runs_and_non_keras_folders(keras_run, keras_sparse_validation_run, tmp_path):
    import shutil

    shutil.copytree(keras_run.path, tmp_path / "a")
    shutil.copytree(keras_sparse_validation_run.path, tmp_path / "b" / "c")
    epochs = runlens.read_epochs(tmp_path)
    assert epochs["run"].unique().tolist() == ["a", "b/c"]
    assert epochs.groupby("run")["epoch"].apply(list).to_dict() == {
        "a": keras_run.epochs,
        "b/c": keras_sparse_validation_run.epochs,
    }


def test_epoch_frame_from_folders_that_are_not_train_or_validation(tmp_path):
    """A run that logs epoch_* tags itself keeps its folder name and the tags' names."""
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "plain")) as writer:
        for epoch in range(3):
            writer.add_scalar("epoch_loss", 1.0 / (epoch + 1), epoch)
            writer.add_scalar("batch_loss", 9.0, epoch)
    epochs = runlens.read_epochs(tmp_path)
    assert epochs["run"].tolist() == ["plain"] * 3
    assert list(epochs.columns) == ["run", "epoch", "wall_time", "loss"]


def test_the_nullable_column_convention_round_trips():
    column = FloatingArray(np.array([1.0, np.nan, 0.0]), np.array([False, False, True]))
    series = pd.Series(column)
    assert series.isna().tolist() == [False, False, True]
    assert np.isnan(series.to_numpy(dtype=float, na_value=np.nan)[1])


def test_problems_are_carried_to_the_epoch_frame(keras_run, copy_logdir):
    path = copy_logdir(keras_run.path)
    writers.write_garbage(path / "train", "events.out.tfevents.999.garbage")
    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        epochs = runlens.read_epochs(path)
    assert len(epochs) == len(keras_run.epochs)
    assert [p["kind"] for p in epochs.attrs["problems"]] == ["bad-length-crc"]
