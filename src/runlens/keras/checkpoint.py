"""Save a checkpoint every epoch and keep only the best ``k`` + the last ``n``, during training.

At each epoch end :class:`BestKCheckpoint`:

1. saves the model (``model.save``, or ``save_weights`` with ``save_weights_only``) under a
   temporary name in ``RUN/.runlens-saving/``, fsyncs it and moves it into ``RUN/checkpoints/`` with
   ``os.replace`` (atomic: a crash leaves the old files and at most a partial temporary file, removed
   at the next train begin);
2. only then plans retention with the same code as ``runlens checkpoints prune``:
   :func:`runlens.read_checkpoints` (metrics joined from the epochs recorded in memory, so ranking
   uses Keras' full-precision values, not the rounded names), :func:`runlens.plan_prune` with
   ``KeepBestK(keep_best, monitor, mode, keep_unranked=False)`` and ``KeepLastN(keep_last)``
   (``min_age=0``) -- plus ``KeepRestoredEpoch(restored=...)``, the epoch whose weights a
   ``restore_best_weights`` EarlyStopping will restore -- and :func:`runlens.apply_prune`, the only
   code that deletes. The best checkpoint is never deleted.

An epoch without the monitored value (``validation_freq > 1``) is saved too, so the latest state
is always on disk, under the no-value name (:mod:`runlens.keras.names`); it cannot be ranked, so
it is kept only while it is among the last ``keep_last`` (the one difference from ``runlens
checkpoints prune``, which keeps what it cannot rank). Until some epoch has the monitored value
nothing is deleted.

When a fit resumes at epoch ``k`` (``BackupAndRestore``), checkpoints of epochs ``>= k`` come from
the attempt that crashed, whose epochs are trained again: they are removed (through
:func:`runlens.apply_prune`) once the first resumed epoch's checkpoint is saved, before ranking.

>>> cb = BestKCheckpoint("runs/exp1", monitor="val_loss", keep_best=3, keep_last=1,
...                      record=RunRecord("runs/exp1"))                    # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from runlens.arguments import Mode
from runlens.atomic import fsync_path
from runlens.checkpoints.find import CHECKPOINTS_FOLDER
from runlens.checkpoints.index import read_checkpoints
from runlens.checkpoints.plan import plan_prune
from runlens.checkpoints.prune import apply_prune
from runlens.checkpoints.retention import KeepBestK, KeepLastN, KeepRestoredEpoch
from runlens.errors import RunlensError
from runlens.keras.names import CheckpointNames
from runlens.keras.record import RunRecord

SAVING = ".runlens-saving"


class BestKCheckpoint(keras.callbacks.Callback):
    """Every epoch's model saved atomically to ``RUN/checkpoints``; the best ``keep_best`` by
    ``monitor`` and the last ``keep_last`` kept (see the module docstring).

    Args:
        run_dir: the run folder; checkpoints go to ``run_dir/checkpoints``.
        monitor, mode: the metric ranking the checkpoints, and its direction (as Keras).
        keep_best, keep_last: how many best / latest checkpoints to keep (>= 1 each).
        names: the file names (:class:`runlens.keras.names.CheckpointNames`).
        save_weights_only: ``save_weights`` (``.weights.h5``) instead of ``save`` (``.keras``).
        record: the run's :class:`RunRecord` (shared with the manifest).
        early_stopping: the bundle's ``keras.callbacks.EarlyStopping`` (placed before this one):
            with ``restore_best_weights`` the checkpoint of its best epoch is kept too.

    Example:
        >>> cb = BestKCheckpoint("runs/a", monitor="val_loss", mode="auto", keep_best=2, keep_last=1,
        ...     names=CheckpointNames.create("val_loss"), record=RunRecord("runs/a"))  # doctest: +SKIP
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        monitor: str,
        mode: Mode,
        keep_best: int,
        keep_last: int,
        names: CheckpointNames,
        record: RunRecord,
        save_weights_only: bool = False,
        early_stopping: keras.callbacks.EarlyStopping | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.folder = self.run_dir / CHECKPOINTS_FOLDER
        self.monitor = monitor
        # During training a checkpoint without the monitored value is one of an epoch that was not
        # validated (not a name that failed to parse): nothing to keep it for but keep_last.
        self.rules = [KeepBestK(keep_best, monitor, mode, keep_unranked=False), KeepLastN(keep_last)]
        self.names = names
        self.record = record
        self.save_weights_only = save_weights_only
        self.early_stopping = early_stopping
        self._abandoned_from: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(self.run_dir / SAVING, ignore_errors=True)  # a save cut short by a crash

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.record.epoch_begin(epoch) and self.record.previous is not None:
            self._abandoned_from = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        entry = self.record.log(epoch, logs)
        path = self._save(self.names.name(epoch, logs or {}))
        entry["checkpoint"] = path.relative_to(self.run_dir).as_posix()
        if self._abandoned_from is not None:
            self._remove_abandoned(self._abandoned_from, saved=path)
            self._abandoned_from = None
        self._retain()

    def _save(self, name: str) -> Path:
        saving = self.run_dir / SAVING
        saving.mkdir(exist_ok=True)
        partial = saving / name
        if self.save_weights_only:
            self.model.save_weights(str(partial))
        else:
            self.model.save(str(partial))
        fsync_path(partial)
        target = self.folder / name
        try:
            os.replace(partial, target)
        except OSError as exc:  # RUN/checkpoints on another filesystem: copy next to it first
            if exc.errno != errno.EXDEV:
                raise
            nearby = self.folder / f".{name}.partial"
            shutil.copyfile(partial, nearby)
            fsync_path(nearby)
            os.replace(nearby, target)
            partial.unlink()
        fsync_path(self.folder)
        shutil.rmtree(saving, ignore_errors=True)
        return target

    def _retain(self) -> None:
        def plan() -> pd.DataFrame | None:
            table = read_checkpoints(self.folder, template=self.names.templates(), epochs=self.record.frame())
            if self.monitor not in table.columns or not table[self.monitor].notna().any():
                return None  # nothing can be ranked yet (no validated epoch): keep everything
            rules = list(self.rules)
            es = self.early_stopping
            if es is not None and es.restore_best_weights and es.best is not None:
                rules.append(KeepRestoredEpoch(restored=int(es.best_epoch)))
            return plan_prune(table, rules=rules, min_age=0)

        self._prune(plan)

    def _remove_abandoned(self, initial_epoch: int, *, saved: Path) -> None:
        """Remove checkpoints of epochs >= ``initial_epoch`` but ``saved``: a crashed attempt wrote them."""

        def plan() -> pd.DataFrame | None:
            table = read_checkpoints(self.folder, template=self.names.templates())
            abandoned = (table["epoch"] >= initial_epoch).fillna(False).astype(bool)
            abandoned &= table["path"].map(lambda p: Path(p) != saved).astype(bool)
            if not abandoned.any():
                return None
            why = f"trained again: the fit resumed at epoch {initial_epoch + 1} after a crash"
            return table.assign(keep=~abandoned, reason=[why if a else "kept" for a in abandoned])

        self._prune(plan)

    def _prune(self, plan: Callable[[], pd.DataFrame | None]) -> None:
        """Apply ``plan()`` (None: nothing to do). A problem warns, it never stops training."""
        try:
            made = plan()
            result = apply_prune(made, self.folder) if made is not None else None
        except RunlensError as exc:  # PruneRefused included
            warnings.warn(f"runlens: checkpoint retention skipped at this epoch: {exc}", stacklevel=3)
            return
        for path, why in result.failed if result is not None else []:
            warnings.warn(f"runlens: could not remove checkpoint {path}: {why}", stacklevel=3)
