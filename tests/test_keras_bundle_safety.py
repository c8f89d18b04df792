"""The bundle's guard rails: bad arguments are RunlensErrors naming the option, a save that fails
half-way leaves every kept checkpoint intact, a finished run is never silently overwritten, and
a finished run can be continued with fit(initial_epoch=...)."""

from __future__ import annotations

import contextlib
import re
import warnings

import numpy as np
import pytest
from _bundle_fits import (
    SimulatedCrash,
    bundle_fit,
    checkpoint_name,
    crash_at_end_of,
    overfitting_data,
    tiny_model,
)

import runlens


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"keep_best": 0}, "keep_best must be a whole number >= 1"),
        ({"keep_last": True}, "keep_last must be a whole number >= 1"),
        ({"monitor": "val_my_score"}, "pass mode='min' or mode='max'"),
        ({"early_stopping": {"patience": 2, "paitence": 3}}, "early_stopping="),
        ({"early_stopping": {"patience": -1}}, "early_stopping: patience must be"),
        ({"reduce_lr": {"factor": 1.5}}, "reduce_lr: factor must be >= 0 and < 1"),
        ({"reduce_lr": "yes"}, "reduce_lr must be a dict of Keras arguments"),
        ({"checkpoint_template": "best.keras"}, "needs an {epoch} field"),
        ({"checkpoint_template": "e{epoch}.h5"}, "must end in '.keras'"),
        ({"checkpoint_template": "e{epoch}.keras", "save_weights_only": True}, "must end in '.weights.h5'"),
        ({"checkpoint_template": "sub/e{epoch}.keras"}, "give a file name only"),
        ({"hparams": {"layers": [16, 16]}}, "hparams['layers']"),
    ],
)
def test_bad_arguments_are_errors_naming_the_option(tmp_path, kwargs, message):
    from runlens.keras import callbacks

    with pytest.raises(runlens.RunlensError, match=re.escape(message)):
        callbacks(tmp_path / "run", **kwargs)


def test_a_save_failing_half_way_leaves_the_kept_checkpoints_intact(tmp_path):
    import keras

    class BreaksOnThirdSave(keras.layers.Dense):
        """A real layer whose weights cannot be written on the third save (a full disk, say)."""

        saves = 0

        def save_own_variables(self, store):
            type(self).saves += 1
            if type(self).saves == 3:
                raise OSError("No space left on device")
            super().save_own_variables(store)

    model = keras.Sequential([keras.Input((10,)), BreaksOnThirdSave(4), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    run = tmp_path / "run"
    with pytest.raises(OSError, match="No space left"):
        bundle_fit(run, epochs=5, model=model, keep_best=2, keep_last=1)
    table = runlens.read_checkpoints(run / "checkpoints")
    assert list(table["epoch"]) == [0, 1] and table["valid"].all()  # nothing partial in there
    partial = list((run / ".runlens-saving").iterdir())
    assert [p.name.startswith("epoch_003-") for p in partial] == [True]
    m = runlens.read_manifest(run)
    assert m["last_epoch"] == 1 and not m["ended_normally"]


def test_a_finished_run_is_not_overwritten_but_can_be_continued(tmp_path):
    run = tmp_path / "run"
    first = bundle_fit(run, epochs=4, early_stopping={"patience": 10}, keep_best=1, keep_last=1)
    with pytest.raises(runlens.RunlensError, match="already holds a finished run"):
        bundle_fit(run, epochs=4, early_stopping={"patience": 10}, keep_best=1, keep_last=1)
    assert runlens.read_manifest(run)["epochs_trained"] == 4

    import keras

    from runlens.keras import callbacks as bundle

    keras.utils.set_random_seed(3)
    train, validation = overfitting_data()
    callbacks = bundle(run, early_stopping={"patience": 10}, keep_best=1, keep_last=1)
    history = first.model.fit(
        *train,
        validation_data=validation,
        initial_epoch=4,
        epochs=6,
        batch_size=8,
        verbose=0,
        callbacks=callbacks,
    )
    m = runlens.read_manifest(run)
    assert [e["epoch"] for e in m["epochs"]] == list(range(6))
    assert [a["initial_epoch"] for a in m["attempts"]] == [0, 4]  # the refused fit left no trace
    values = {e["epoch"]: e["logs"]["val_loss"] for e in m["epochs"]}
    assert values[4] == history.history["val_loss"][0]
    es = next(c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping))
    replayed = runlens.EarlyStopping(patience=10).replay([values[e] for e in range(6)])
    assert (es.best_epoch, es.wait) == (replayed.best_epoch, replayed.wait[-1])
    best = min(values, key=lambda e: (values[e], e))
    files = {p.name for p in (run / "checkpoints").glob("*.keras")}
    assert files == {checkpoint_name(e, values[e]) for e in {best, 5}}


def test_a_crash_before_the_first_backup_restarts_the_run_from_scratch(tmp_path):
    import keras

    run, backup = tmp_path / "run", str(tmp_path / "backup")
    first = bundle_fit(run, epochs=3, extra=[crash_at_end_of(0), keras.callbacks.BackupAndRestore(backup)])
    assert first.history is None and runlens.read_manifest(run)["last_epoch"] == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        again = bundle_fit(
            run, epochs=3, seed=5, learning_rate=0.02, extra=[keras.callbacks.BackupAndRestore(backup)]
        )
    assert any("did not end normally and no backup was restored" in str(w.message) for w in caught)
    m = runlens.read_manifest(run)
    assert [(a["initial_epoch"], a["ended_normally"]) for a in m["attempts"]] == [(0, True)]
    assert [e["logs"] for e in m["epochs"]] == [again.observed.logs[e] for e in range(3)]
    values = {e: logs["val_loss"] for e, logs in again.observed.logs.items()}
    files = {p.name for p in (run / "checkpoints").glob("*.keras")}
    assert files == {checkpoint_name(e, v) for e, v in values.items()}  # keep_best=3: all three
    assert checkpoint_name(0, first.observed.logs[0]["val_loss"]) not in files  # the dead attempt's


def test_backup_and_restore_before_the_bundle_leaves_a_hole_the_resume_warns_about(tmp_path):
    # [BackupAndRestore, crash, *bundle]: epoch 2 is backed up, then the crash comes before any of
    # runlens' callbacks (TensorBoard included) saw it; the resume starts at epoch 3.
    import keras

    from runlens.keras import callbacks as bundle

    run, backup = tmp_path / "run", str(tmp_path / "backup")

    def fit(extra_first, **kwargs):
        keras.utils.set_random_seed(1)
        train, validation = overfitting_data()
        model = tiny_model()
        with contextlib.suppress(SimulatedCrash):
            model.fit(
                *train,
                validation_data=validation,
                epochs=6,
                batch_size=8,
                verbose=0,
                callbacks=[
                    keras.callbacks.BackupAndRestore(backup),
                    *extra_first,
                    *bundle(run, early_stopping={"patience": 10}, **kwargs),
                ],
            )

    fit([crash_at_end_of(2)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        fit([])
    assert any("records epochs up to 2 only" in str(w.message) for w in caught)
    m = runlens.read_manifest(run)
    assert [e["epoch"] for e in m["epochs"]] == [0, 1, 3, 4, 5]
    assert list(runlens.read_epochs(run)["epoch"]) == [0, 1, 3, 4, 5]  # the hole is in the logs too
    live = runlens.build_report(tmp_path, checkpoint_min_age=0).run("run").live
    assert live.agrees, live.disagreements  # both skip the epoch nobody logged


@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # a fresh model's
def test_the_epoch_early_stopping_restores_is_kept_even_when_it_is_not_the_best_value(tmp_path):
    # With min_delta, EarlyStopping's best is the last epoch that improved by more than min_delta,
    # not the lowest val_loss: retention keeps both (weights-only checkpoints here).
    es_args = {"patience": 2, "min_delta": 0.03, "restore_best_weights": True}
    fit = bundle_fit(
        tmp_path / "run", epochs=30, early_stopping=es_args, keep_best=1, keep_last=1, save_weights_only=True
    )
    es = fit.callback("EarlyStopping")
    values = {e: logs["val_loss"] for e, logs in fit.observed.logs.items()}
    lowest = min(values, key=lambda e: (values[e], e))
    assert es.best_epoch != lowest and es.stopped_epoch > 0  # the case this test is about
    files = {p.name for p in (tmp_path / "run" / "checkpoints").iterdir() if not p.name.startswith(".")}
    kept = {es.best_epoch, lowest, max(values)}
    assert files == {checkpoint_name(e, values[e], suffix=".weights.h5") for e in kept}
    model = tiny_model()
    model.load_weights(
        tmp_path
        / "run"
        / "checkpoints"
        / checkpoint_name(es.best_epoch, values[es.best_epoch], suffix=".weights.h5")
    )
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), fit.model.get_weights()))
    replayed = runlens.EarlyStopping(**es_args).replay([values[e] for e in sorted(values)])
    assert (replayed.stopped_epoch, replayed.best_epoch) == (es.stopped_epoch, es.best_epoch)
