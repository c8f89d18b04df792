"""Crash at the end of an epoch, resume with keras.callbacks.BackupAndRestore: the manifest is valid
after the crash, and after the resume the logs, manifest, checkpoints, CSV and the policies'
decisions are those of one run whose crashed epoch was trained again."""

from __future__ import annotations

import numpy as np
import pandas
import pytest
from _bundle_fits import RESUME_BUNDLE as BUNDLE
from _bundle_fits import bundle_fit, checkpoint_name, crash_at_end_of, expected_kept

import runlens

EPOCHS = 30
CRASH = 8  # the crash comes after the best epoch and before EarlyStopping stops

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")


class Resumed:
    def __init__(self, crashed, after_crash, resumed):
        self.crashed, self.after_crash, self.resumed = crashed, after_crash, resumed
        self.run_dir = resumed.run_dir

    def merged_logs(self) -> dict[int, dict[str, float]]:
        """Each epoch's logs, the resumed attempt's where it trained the epoch again."""
        return {**self.crashed.observed.logs, **self.resumed.observed.logs}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import keras

    root = tmp_path_factory.mktemp("resume")
    run_dir, backup = root / "run", root / "backup"

    def backup_and_restore():
        return keras.callbacks.BackupAndRestore(str(backup))

    # runlens' callbacks, then the crash, then the backup: epoch CRASH is recorded but not backed up
    crashed = bundle_fit(
        run_dir, epochs=EPOCHS, extra=[crash_at_end_of(CRASH), backup_and_restore()], **BUNDLE
    )
    after_crash = {
        "manifest": runlens.read_manifest(run_dir),
        "epochs": runlens.read_epochs(run_dir),
        "csv": pandas.read_csv(run_dir / "history.csv"),
        "report": runlens.build_report(run_dir, checkpoint_min_age=0),
    }
    resumed = bundle_fit(run_dir, epochs=EPOCHS, seed=2, extra=[backup_and_restore()], **BUNDLE)
    return Resumed(crashed, after_crash, resumed)


def _f32(values):
    return np.asarray(values, dtype=np.float32)


def test_the_scenario_crashed_after_the_best_epoch_and_resumed_at_the_crash_epoch(run):
    assert run.crashed.history is None and max(run.crashed.observed.logs) == CRASH
    assert min(run.resumed.observed.logs) == CRASH  # trained again: it was never backed up
    es = run.resumed.callback("EarlyStopping")
    assert es.best_epoch < CRASH < es.stopped_epoch < EPOCHS - 1


def test_after_the_crash_the_manifest_is_valid_and_says_the_run_did_not_end(run):
    m = run.after_crash["manifest"]
    assert (m["status"], m["ended_normally"], m["ended_at"]) == ("running", False, None)
    assert m["last_epoch"] == CRASH and [e["epoch"] for e in m["epochs"]] == list(range(CRASH + 1))
    assert [(a["initial_epoch"], a["ended_normally"]) for a in m["attempts"]] == [(0, False)]
    # every finished epoch is in the event files (TF2 writers flush when Keras' TensorBoard leaves
    # `as_default()` each epoch) and in the CSV (CSVLogger flushes each row) too
    assert list(run.after_crash["epochs"]["epoch"]) == list(range(CRASH + 1))
    assert list(run.after_crash["csv"]["epoch"]) == list(range(CRASH + 1))


def test_after_the_resume_the_logs_are_one_run_with_the_crash_epoch_retrained(run):
    merged = run.merged_logs()
    epochs = runlens.read_epochs(run.run_dir)
    assert list(epochs["epoch"]) == sorted(merged)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
        logged = epochs[key].to_numpy(dtype=float)
        assert np.array_equal(_f32(logged), _f32([merged[e][key] for e in sorted(merged)])), key
    assert run.crashed.observed.logs[CRASH] != run.resumed.observed.logs[CRASH]
    csv = pandas.read_csv(run.run_dir / "history.csv")
    assert list(csv["epoch"]) == sorted(merged)
    assert csv["val_loss"].tolist() == [merged[e]["val_loss"] for e in sorted(merged)]


def test_after_the_resume_the_manifest_holds_both_attempts_and_the_surviving_epochs(run):
    m = runlens.read_manifest(run.run_dir)
    merged = run.merged_logs()
    assert (m["status"], m["ended_normally"]) == ("stopped_early", True)
    assert [(a["initial_epoch"], a["ended_normally"]) for a in m["attempts"]] == [(0, False), (CRASH, True)]
    assert m["started_at"] == run.after_crash["manifest"]["started_at"]
    assert [e["epoch"] for e in m["epochs"]] == sorted(merged)
    assert all(e["logs"] == merged[e["epoch"]] for e in m["epochs"])


def test_the_policies_continue_across_the_resume_as_the_offline_replay_decides(run):
    m = runlens.read_manifest(run.run_dir)
    es, rlr = runlens.EarlyStopping(**m["config"]["early_stopping"]), m["config"]["reduce_lr"]
    epochs = runlens.read_epochs(run.run_dir)
    row = runlens.replay(epochs, es, lr_policy=runlens.ReduceLROnPlateau(**rlr)).iloc[0]
    live = run.resumed.callback("EarlyStopping")
    assert (row.stopped_epoch, row.best_epoch) == (live.stopped_epoch, live.best_epoch)
    assert (m["early_stopping"]["stopped_epoch"], m["early_stopping"]["best_epoch"]) == (
        live.stopped_epoch,
        live.best_epoch,
    )
    assert list(row.lr_reduced_at) == [r["epoch"] for r in m["reduce_lr"]["reductions"]]
    assert pandas.isna(row.lr_diverges_at)
    # Sensitivity: an EarlyStopping starting afresh at the resume would not have stopped there.
    values = epochs["val_loss"].to_numpy(dtype=float)
    fresh = es.replay(values[CRASH:]).stopped_epoch
    assert fresh is None or fresh + CRASH != live.stopped_epoch


def test_checkpoints_are_those_of_the_surviving_epochs(run):
    values = {e: logs["val_loss"] for e, logs in run.merged_logs().items()}
    last = max(values)
    files = {p.name for p in (run.run_dir / "checkpoints").glob("*.keras")}
    assert files == {
        checkpoint_name(e, values[e]) for e in expected_kept(values, last, keep_best=2, keep_last=1)
    }
    assert not (run.run_dir / ".runlens-saving").exists()


def test_restore_best_weights_restores_the_best_epoch_from_before_the_crash(run):
    import keras

    best = run.resumed.callback("EarlyStopping").best_epoch
    path = run.run_dir / "checkpoints" / checkpoint_name(best, run.merged_logs()[best]["val_loss"])
    saved = keras.saving.load_model(path).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, run.resumed.model.get_weights()))


def test_the_report_says_the_run_did_not_end_then_agrees_with_the_live_decisions_after_the_resume(run):
    crashed = run.after_crash["report"].run(".").live
    assert (crashed.status, crashed.ended_normally, crashed.attempts) == ("running", False, 1)
    assert crashed.agrees, crashed.disagreements  # nothing restored yet: nothing to disagree on
    record = runlens.build_report(run.run_dir, checkpoint_min_age=0).run(".")
    live = record.live
    assert live.agrees, live.disagreements
    assert (live.attempts, live.ended_normally, live.epochs_recorded) == (2, True, record.epochs_logged)
    es = run.resumed.callback("EarlyStopping")
    assert live.early_stopping.live["stopped_epoch"] == es.stopped_epoch
    assert live.reduce_lr.live == live.reduce_lr.replayed
