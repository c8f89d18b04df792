"""Check Keras' ``BackupAndRestore`` backup before Keras loads it, and rebuild it from runlens' own
checkpoint when it is damaged.

``keras.callbacks.BackupAndRestore`` (``keras/src/callbacks/backup_and_restore.py``) keeps the
training state in ``BACKUP/latest.weights.h5`` (``model.save_weights``: weights and optimizer)
and ``BACKUP/training_metadata.json`` (``{"epoch": the 0-based epoch to resume at, "batch": ...}``),
both written in place at every epoch end, and loads them in ``on_train_begin``. A process killed
while it writes leaves a file it cannot load (``OSError: Unable to synchronously open file``, or
a half-written JSON): the resumed fit dies with a traceback. Worse, a kill between the two files
leaves weights and metadata of different epochs, which Keras loads without a word.

Decision: **rebuild the backup from runlens' last intact checkpoint**, rather than stop and ask.
The bundle saves every epoch atomically (temporary file, fsync, ``os.replace``) and records it in
``runlens.json`` *before* a ``BackupAndRestore`` placed after it starts writing, and nothing trains
in between: the checkpoint of the last recorded epoch holds exactly the state Keras was backing
up. Rebuilding the backup from it gives the resume an intact backup would have given, with no
one having to act -- a scheduler that restarts a killed job just works. Only when runlens has no
intact checkpoint (or the run already finished) does the fit stop, with a :class:`RunlensError`
naming the backup and what to do.

A backup is *usable* when both files are there, the JSON holds a whole ``epoch``, the weights
file is whole (:func:`runlens.checkpoints.validate.check_checkpoint`) and loads into the model (the
check Keras itself will make a moment later), and it is not the state runlens saved at the end of
the epoch the JSON says to train next (a kill between Keras' two writes: weights and optimizer
state, step counter included, compared exactly). Anything else is rebuilt: the unusable weights are
moved aside to ``latest.weights.h5.damaged``, then the metadata and the weights are written, each
atomically -- a kill at any point leaves a backup this check finds unusable again, never one of
two epochs.

>>> prepare_backup(keras.callbacks.BackupAndRestore("backups/exp1"), model, Path("runs/exp1"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from runlens.atomic import fsync_path
from runlens.checkpoints.find import CHECKPOINTS_FOLDER
from runlens.checkpoints.names import checkpoint_kind
from runlens.checkpoints.validate import check_checkpoint
from runlens.errors import RunlensError
from runlens.jsondata import loads
from runlens.manifest import MANIFEST_NAME, read_manifest

WEIGHTS = "latest.weights.h5"  # BackupAndRestore.__init__: _weights_path
METADATA = "training_metadata.json"  # BackupAndRestore.__init__: _training_metadata_path
DAMAGED = f"{WEIGHTS}.damaged"


def prepare_backup(backup: keras.callbacks.BackupAndRestore, model: keras.Model, run_dir: Path) -> None:
    """Make sure ``backup`` (placed after the bundle, not yet loaded) resumes the run in ``run_dir``
    as an intact backup would: rebuild it if it is not usable (with a warning saying so), or raise
    :class:`RunlensError` naming it and what to do. Remote backup folders are left to Keras."""
    backup_dir = Path(backup.backup_dir)
    if "://" in str(backup.backup_dir) or not (
        (backup_dir / WEIGHTS).exists() or (backup_dir / METADATA).exists()
    ):
        return
    manifest = _manifest(run_dir)
    if manifest is not None and manifest["ended_normally"] and backup.delete_checkpoint:
        raise RunlensError(
            f"{run_dir} holds a finished run ({MANIFEST_NAME}: its last fit ended normally), yet "
            f"{backup_dir} still holds BackupAndRestore's backup of it, which Keras deletes when "
            "training ends (that was cut short); from it Keras would train the finished run further. "
            f"Delete {backup_dir} (shutil.rmtree({str(backup_dir)!r})); to continue the run on purpose, "
            "use fit(initial_epoch=...)"
        )
    checkpoints = _checkpoints(run_dir, manifest)
    problem = backup_problem(backup_dir, model, checkpoints)
    if problem is None:
        return
    resume_at, checkpoint = rebuild_backup(backup_dir, model, checkpoints)
    warnings.warn(
        f"runlens: Keras' BackupAndRestore could not have resumed this fit: {problem}, as a process "
        "killed while Keras writes its backup in place leaves it. The backup was rebuilt from "
        f"runlens' checkpoint of epoch {resume_at} ({checkpoint}): the fit resumes at epoch "
        f"{resume_at + 1}, as it would have from an intact backup (damaged weights are kept as {DAMAGED})",
        stacklevel=2,
    )


def backup_problem(backup_dir: Path, model: keras.Model, checkpoints: dict[int, Path]) -> str | None:
    """Why Keras could not resume correctly from the backup in ``backup_dir`` (None: it can, or
    there is no backup); ``checkpoints``: runlens' checkpoint of each recorded epoch. Loads the
    backup, and maybe a checkpoint, into ``model`` (Keras loads the backup next)."""
    weights, metadata = backup_dir / WEIGHTS, backup_dir / METADATA
    if not weights.exists() and not metadata.exists():
        return None
    if not metadata.exists():
        return f"{weights} has no {METADATA} beside it (Keras would train from epoch 1 on these weights)"
    epoch = _resume_epoch(metadata)
    if epoch is None:
        return f"{metadata} is damaged (not the JSON Keras writes)"
    if not weights.exists():
        return f"{metadata} has no {WEIGHTS} beside it (Keras would resume at epoch {epoch + 1} untrained)"
    verdict = check_checkpoint(str(weights), "weights")
    if not verdict.valid:
        return f"{weights} is damaged ({verdict.reason})"
    try:
        load_state(model, weights)
    except Exception as exc:  # whatever Keras or h5py raise on a file they cannot read
        return f"{weights} cannot be loaded ({type(exc).__name__}: {exc})"
    # Keras writes the weights, then the metadata: a kill between the two leaves the weights of
    # the epoch the metadata says to train next. runlens saved that epoch: compare.
    backed_up = _state(model)
    if epoch in checkpoints and _loads(model, checkpoints[epoch]) and _same(backed_up, _state(model)):
        return (
            f"{weights} holds the state after epoch {epoch + 1}, but {metadata} says to train epoch "
            f"{epoch + 1} next (Keras would train it twice)"
        )
    return None


def rebuild_backup(backup_dir: Path, model: keras.Model, checkpoints: dict[int, Path]) -> tuple[int, Path]:
    """Rebuild the backup in ``backup_dir`` from the latest of runlens' ``checkpoints`` (epoch ->
    file) that is whole and loads; return the 0-based epoch the fit resumes at (the one after it)
    and that checkpoint. Raises :class:`RunlensError` when there is none."""
    for epoch in sorted(checkpoints, reverse=True):
        checkpoint = checkpoints[epoch]
        if not _loads(model, checkpoint):
            continue
        weights, metadata = backup_dir / WEIGHTS, backup_dir / METADATA
        if weights.exists() or weights.is_symlink():
            os.replace(weights, backup_dir / DAMAGED)
        text = json.dumps({"epoch": epoch + 1, "batch": 0})  # as BackupAndRestore._save_model writes it
        _write_atomically(metadata, lambda p, text=text: Path(p).write_text(text))
        _write_atomically(weights, model.save_weights)
        fsync_path(backup_dir)
        return epoch + 1, checkpoint
    raise RunlensError(
        f"Keras' BackupAndRestore cannot resume from {backup_dir}, and runlens has no intact "
        f"checkpoint of this run to rebuild the backup from. Delete {backup_dir} "
        f"(shutil.rmtree({str(backup_dir)!r})) and run the fit again: it starts over at epoch 1"
    )


def load_state(model: keras.Model, path: Path) -> None:
    """Load the weights and optimizer state of a checkpoint or backup into ``model``, building the
    optimizer first as ``BackupAndRestore._load_model`` does (else Keras skips its variables)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    model.load_weights(str(path))


def _loads(model: keras.Model, checkpoint: Path) -> bool:
    """Load ``checkpoint`` into ``model`` if it is whole; whether that worked."""
    kind = checkpoint_kind(checkpoint.name)
    if kind is None or not check_checkpoint(str(checkpoint), kind).valid:
        return False
    try:
        load_state(model, checkpoint)
    except Exception:  # a checkpoint Keras cannot load is as good as none
        return False
    return True


def _state(model: keras.Model) -> list[np.ndarray]:
    """The model's weights and its optimizer's variables (step counter included)."""
    optimizer = getattr(model, "optimizer", None)
    variables = optimizer.variables if optimizer is not None else []
    return [*model.get_weights(), *(keras.ops.convert_to_numpy(v) for v in variables)]


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _resume_epoch(metadata: Path) -> int | None:
    try:
        data: Any = loads(metadata.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    epoch = data.get("epoch") if isinstance(data, dict) else None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else None


def _manifest(run_dir: Path) -> dict[str, Any] | None:
    try:
        return read_manifest(run_dir) if (run_dir / MANIFEST_NAME).exists() else None
    except RunlensError:
        return None


def _checkpoints(run_dir: Path, manifest: dict[str, Any] | None) -> dict[int, Path]:
    """runlens' checkpoint of each epoch recorded in ``manifest``; only files in the run's
    checkpoint folder (the manifest is a file anyone could have edited)."""
    found = {}
    for entry in manifest["epochs"] if manifest is not None else []:
        relative = Path(entry["checkpoint"] or ".")
        if relative.parts[:1] == (CHECKPOINTS_FOLDER,) and len(relative.parts) == 2:
            found[entry["epoch"]] = run_dir / relative
    return found


def _write_atomically(target: Path, write: Any) -> None:
    """``write(path)`` to a temporary name beside ``target`` (ending as ``target`` does: Keras
    checks ``.weights.h5``), fsync it, and move it onto ``target``."""
    partial = target.with_name(f".runlens-partial-{os.getpid()}-{target.name}")
    write(str(partial))
    fsync_path(partial)
    os.replace(partial, target)
