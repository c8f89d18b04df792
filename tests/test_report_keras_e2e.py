"""End to end: a real Keras fit that EarlyStopping really stops, read back, replayed, reported.

``keras.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)`` runs
after TensorBoard, so every epoch fit trained is logged, the stopping one included. Replaying the
same settings on what ``read_epochs`` reads must stop at the very epoch Keras stopped at and restore
the epoch Keras restored; the report must say so in Keras' own 1-based numbering.
"""

from __future__ import annotations

import json

import pytest
import writers
from click.testing import CliRunner

import runlens
from runlens.cli import main

EPOCHS = 40
SETTINGS = dict(monitor="val_loss", patience=2, restore_best_weights=True)


@pytest.fixture(scope="module")
def stopped_fit(tmp_path_factory):
    """Learning rate 2.0 makes the tiny model's val_loss turn up within a few epochs."""
    import keras

    callback = keras.callbacks.EarlyStopping(**SETTINGS)
    fit = writers.keras_fit(
        tmp_path_factory.mktemp("early_stopped"), epochs=EPOCHS, lr_schedule=2.0, callbacks=[callback]
    )
    return fit, callback


def test_keras_really_stopped_early(stopped_fit):
    fit, callback = stopped_fit
    assert 0 < callback.stopped_epoch < EPOCHS - 1
    assert fit.epochs == list(range(callback.stopped_epoch + 1))
    assert callback.best_epoch < callback.stopped_epoch


def test_replay_of_the_logs_stops_where_keras_stopped(stopped_fit):
    fit, callback = stopped_fit
    frame = runlens.read_epochs(fit.path)
    assert frame["epoch"].tolist() == fit.epochs
    assert frame["val_loss"].tolist() == pytest.approx(fit.history["val_loss"], rel=1e-7)
    [row] = runlens.replay(frame, runlens.EarlyStopping(**SETTINGS)).to_dict("records")
    assert row["stopped_epoch"] == callback.stopped_epoch
    assert row["best_epoch"] == callback.best_epoch
    assert row["restored_epoch"] == callback.best_epoch
    assert row["epochs_saved"] == 0  # it stopped at the last logged epoch: nothing left to save


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_report_shows_the_stop_one_based(stopped_fit, fmt):
    fit, callback = stopped_fit
    result = CliRunner().invoke(main, ["report", str(fit.path), "--patience", "2", "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt == "json":
        [run] = json.loads(result.stdout)["runs"]
        assert (run["stopped_epoch"], run["best_epoch"], run["restored_epoch"]) == (
            callback.stopped_epoch,
            callback.best_epoch,
            callback.best_epoch,
        )
    else:
        assert (
            f"stops after epoch {callback.stopped_epoch + 1} (patience 2; best so far: epoch "
            f"{callback.best_epoch + 1})" in result.stdout
        )
        assert f"the weights of epoch {callback.best_epoch + 1} (restore_best_weights)" in result.stdout
