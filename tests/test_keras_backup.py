"""Keras' BackupAndRestore writes its backup in place: a process killed mid-write leaves a file
Keras cannot load. The bundle checks the backup before Keras loads it and rebuilds it from
runlens' own checkpoint: the resumed run then replays the uninterrupted one bit for bit (no
shuffling here, so a resume from the true state reproduces every logged value). Without an
intact checkpoint the fit stops with one RunlensError naming the backup and the fix."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from _bundle_fits import RESUME_BUNDLE as BUNDLE
from _bundle_fits import BundleFit, bundle_fit, crash_at_end_of

import runlens

EPOCHS = 14
CRASH = 5  # the crash comes after the backup of this epoch (0-based)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")


@dataclass
class Crashed:
    reference: BundleFit  # the same fit, never interrupted
    crashed: BundleFit
    run_dir: Path
    backup_dir: Path


@pytest.fixture(scope="module")
def crashed(tmp_path_factory) -> Crashed:
    root = tmp_path_factory.mktemp("backup")
    reference = bundle_fit(
        root / "reference", epochs=EPOCHS, shuffle=False, backup_dir=root / "ref-backup", **BUNDLE
    )
    crashed = bundle_fit(
        root / "run",
        epochs=EPOCHS,
        shuffle=False,
        backup_dir=root / "backup",
        extra=[crash_at_end_of(CRASH)],  # after the bundle, and so after its BackupAndRestore
        **BUNDLE,
    )
    assert crashed.history is None and (root / "backup" / "latest.weights.h5").exists()
    return Crashed(reference, crashed, root / "run", root / "backup")


def copy_of(crashed: Crashed, tmp_path: Path) -> tuple[Path, Path]:
    run, backup = tmp_path / "run", tmp_path / "backup"
    shutil.copytree(crashed.run_dir, run)
    shutil.copytree(crashed.backup_dir, backup)
    return run, backup


def cut_in_half(path: Path) -> None:
    """What a kill leaves of a file written in place: its first bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def resume(run: Path, backup: Path, *, placement: str = "bundle") -> tuple[BundleFit, list[str]]:
    """Resume with BackupAndRestore through the bundle's backup_dir, or placed by hand after it."""
    import keras

    extra = [keras.callbacks.BackupAndRestore(str(backup))] if placement == "after" else []
    options = {"backup_dir": backup} if placement == "bundle" else {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        fit = bundle_fit(run, epochs=EPOCHS, shuffle=False, extra=extra, **options, **BUNDLE)
    return fit, [str(w.message) for w in caught if str(w.message).startswith("runlens:")]


DAMAGES = {
    "weights cut mid-file": lambda b: cut_in_half(b / "latest.weights.h5"),
    "weights empty": lambda b: (b / "latest.weights.h5").write_bytes(b""),
    "metadata cut": lambda b: cut_in_half(b / "training_metadata.json"),
    "weights gone": lambda b: (b / "latest.weights.h5").unlink(),
    "metadata gone": lambda b: (b / "training_metadata.json").unlink(),
    "metadata nested too deep": lambda b: (b / "training_metadata.json").write_text("[" * 100_000),
    # killed between Keras' two writes: this epoch's weights, the previous epoch's metadata
    "metadata of the epoch before": lambda b: (b / "training_metadata.json").write_text(
        json.dumps({"epoch": CRASH, "batch": 0})
    ),
}


@pytest.mark.parametrize(
    "damage, placement",
    [(name, "bundle") for name in DAMAGES] + [("weights cut mid-file", "after")],
)
def test_an_unusable_backup_is_rebuilt_and_the_resume_replays_the_uninterrupted_run(
    crashed, tmp_path, damage, placement
):
    run, backup = copy_of(crashed, tmp_path)
    DAMAGES[damage](backup)
    resumed, said = resume(run, backup, placement=placement)
    assert len(said) == 1 and "could not have resumed" in said[0], said
    assert str(backup) in said[0] and f"the fit resumes at epoch {CRASH + 2}" in said[0]
    assert min(resumed.observed.logs) == CRASH + 1
    merged = {**crashed.crashed.observed.logs, **resumed.observed.logs}
    assert merged == crashed.reference.observed.logs  # every logged value, bit for bit
    es, reference_es = resumed.callback("EarlyStopping"), crashed.reference.callback("EarlyStopping")
    assert (es.stopped_epoch, es.best_epoch) == (reference_es.stopped_epoch, reference_es.best_epoch)
    m = runlens.read_manifest(run)
    assert [(a["initial_epoch"], a["ended_normally"]) for a in m["attempts"]] == [
        (0, False),
        (CRASH + 1, True),
    ]
    live = runlens.build_report(run, checkpoint_min_age=0).run(".").live
    assert live.agrees, live.disagreements
    assert not backup.exists()  # Keras deleted its backup at the end, as after any finished fit


def test_an_intact_backup_is_left_to_keras(crashed, tmp_path):
    run, backup = copy_of(crashed, tmp_path)
    resumed, said = resume(run, backup)
    assert said == [] and min(resumed.observed.logs) == CRASH + 1
    assert {**crashed.crashed.observed.logs, **resumed.observed.logs} == crashed.reference.observed.logs


def test_without_an_intact_checkpoint_the_fit_stops_with_one_message_whose_fix_works(crashed, tmp_path):
    run, backup = copy_of(crashed, tmp_path)
    cut_in_half(backup / "latest.weights.h5")
    for checkpoint in (run / "checkpoints").glob("*.keras"):
        cut_in_half(checkpoint)
    before = sorted(p.name for p in run.rglob("*"))
    with pytest.raises(runlens.RunlensError) as stopped:
        resume(run, backup)
    message = str(stopped.value)
    assert message.startswith(
        f"Keras' BackupAndRestore cannot resume from {backup}, and runlens has no intact"
    )
    assert f"shutil.rmtree({str(backup)!r})" in message and "starts over at epoch 1" in message
    assert sorted(p.name for p in run.rglob("*") if "tfevents" not in p.name) == [
        n for n in before if "tfevents" not in n
    ]  # only TensorBoard's graph file (written in set_model) is new
    shutil.rmtree(backup)  # the fix the message gives
    again, said = resume(run, backup)
    assert any("did not end normally and no backup was restored" in s for s in said)
    assert min(again.observed.logs) == 0 and again.history is not None
    live = runlens.build_report(run, checkpoint_min_age=0).run(".").live
    assert live.agrees, live.disagreements


def test_a_finished_runs_leftover_backup_stops_the_fit_instead_of_training_it_further(tmp_path):
    # What a kill while Keras deletes its backup at train end leaves: a finished run and a backup.
    import keras

    run, backup = tmp_path / "run", tmp_path / "backup"
    keep = keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)
    bundle_fit(run, epochs=3, extra=[keep])
    assert (backup / "latest.weights.h5").exists() and runlens.read_manifest(run)["ended_normally"]
    message = (
        f"{run} holds a finished run (runlens.json: its last fit ended normally), yet {backup} still holds"
    )
    with pytest.raises(runlens.RunlensError, match=re.escape(message)):
        bundle_fit(run, epochs=6, backup_dir=backup)
    assert runlens.read_manifest(run)["epochs_trained"] == 3


def test_the_backup_needs_a_folder_of_its_own(tmp_path):
    from runlens.keras import callbacks

    for backup in (tmp_path / "run", tmp_path / "run" / "backup", tmp_path):
        with pytest.raises(runlens.RunlensError, match=r"shares a folder with run_dir=.*of its own"):
            callbacks(tmp_path / "run", backup_dir=backup)
