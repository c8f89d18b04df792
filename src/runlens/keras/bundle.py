"""``runlens.keras.callbacks(run_dir, ...)``: the callback list that writes what runlens reads best.

The order of the list is part of its meaning (Keras calls callbacks in list order at every hook):

0. :class:`~runlens.keras.guard.RunGuard` -- first: it takes the run folder's lock
   (:mod:`runlens.keras.fit_lock`) when ``fit`` sets up its callbacks, before any other callback
   can write there, so a second fit on the same ``run_dir`` is refused having written nothing; at
   train begin it checks the backup of a ``BackupAndRestore`` placed after it and rebuilds a
   damaged one from runlens' checkpoint (:mod:`runlens.keras.backup`).
1. ``keras.callbacks.TensorBoard(log_dir=RUN)`` -- first of the writers, so that at an epoch's end
   it logs the learning rate used *during* that epoch: placed after ReduceLROnPlateau it would log
   the rate already reduced for the next epoch.
2. ``keras.callbacks.ReduceLROnPlateau`` (Keras' own; with ``reduce_lr``) -- after TensorBoard; it
   puts the rate it found (the one used during the epoch) into ``logs["learning_rate"]`` before
   reducing.
3. ``keras.callbacks.EarlyStopping`` (Keras' own; with ``early_stopping``) -- sets
   ``model.stop_training``; before the checkpoints so that retention keeps the epoch it will
   restore.
4. :class:`~runlens.keras.checkpoint.BestKCheckpoint` -- saves ``RUN/checkpoints/...`` and keeps
   the best ``keep_best`` + last ``keep_last``; it sees the epoch's logs and EarlyStopping's best.
   It is the first of runlens' callbacks to see a fit's first epoch begin, where it refuses to
   start a new run over a finished one -- before the callbacks after it write anything.
5. :class:`~runlens.keras.hparams_summary.HParamsSummary` (when ``hparams`` are given) -- writes
   them into ``RUN`` (the HParams dashboard's session) when the first epoch begins.
6. :class:`~runlens.keras.csv_history.ResumableCSVLogger` -- ``RUN/history.csv``; after
   ReduceLROnPlateau, so the CSV has its ``learning_rate`` column.
7. :class:`~runlens.keras.run_manifest.RunManifest` -- records in ``RUN/runlens.json`` what every
   callback before it did in this epoch.
8. ``keras.callbacks.BackupAndRestore(backup_dir)`` (Keras' own; with ``backup_dir``) -- after
   the manifest, so its backup of an epoch is written after runlens recorded that epoch (and
   saved the checkpoint a damaged backup is rebuilt from).
9. :class:`~runlens.keras.guard.RunGuardEnd` -- last: releases the lock once every callback
   before it has finished writing.

A ``BackupAndRestore`` added by hand belongs right after this list (``[*runlens.keras.callbacks(run),
BackupAndRestore(...)]``), for the same reason as 8.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras

from runlens.arguments import Mode, count
from runlens.errors import RunlensError
from runlens.keras.checkpoint import BestKCheckpoint
from runlens.keras.csv_history import ResumableCSVLogger
from runlens.keras.fit_lock import FitLock
from runlens.keras.guard import RunGuard, RunGuardEnd
from runlens.keras.hparams_summary import HParamsSummary, check_hparams
from runlens.keras.names import CheckpointNames
from runlens.keras.record import RunRecord
from runlens.keras.run_manifest import RunManifest
from runlens.policies.early_stopping import EarlyStopping
from runlens.policies.monitor import metric_direction
from runlens.policies.plateau import ReduceLROnPlateau

HISTORY = "history.csv"


def callbacks(
    run_dir: str | os.PathLike[str],
    *,
    monitor: str = "val_loss",
    mode: Mode = "auto",
    early_stopping: Mapping[str, Any] | bool | None = None,
    reduce_lr: Mapping[str, Any] | bool | None = None,
    keep_best: int = 3,
    keep_last: int = 1,
    save_weights_only: bool = False,
    histogram_freq: int = 0,
    hparams: Mapping[str, Any] | None = None,
    update_freq: str | int = "epoch",
    checkpoint_template: str | None = None,
    backup_dir: str | os.PathLike[str] | None = None,
) -> list[keras.callbacks.Callback]:
    """The bundled callbacks for one run, in the order they must run (see the module docstring).

    Args:
        run_dir: the run's folder: ``train/``, ``validation/`` (TensorBoard), ``checkpoints/``,
            ``history.csv`` and ``runlens.json`` go there. One folder per run.
        monitor, mode: the metric ranking the checkpoints (and the default of the policies'),
            ``mode`` as Keras' (``"auto"`` needs a built-in metric name; else pass min/max).
        early_stopping: ``keras.callbacks.EarlyStopping`` arguments (a dict) or True for its
            defaults; ``monitor``/``mode`` default to the bundle's. None: no early stopping.
        reduce_lr: the same for ``keras.callbacks.ReduceLROnPlateau``.
        keep_best, keep_last: checkpoints kept: the best ``keep_best`` by ``monitor`` plus the
            last ``keep_last`` epochs (each >= 1).
        save_weights_only: save ``.weights.h5`` (``model.save_weights``) instead of ``.keras``.
        histogram_freq, update_freq: passed to ``keras.callbacks.TensorBoard``.
        hparams: hyperparameters (name -> bool/int/float/str) for the manifest and TensorBoard's
            HParams dashboard.
        checkpoint_template: checkpoint file name with ModelCheckpoint fields, default
            ``epoch_{epoch:03d}-<monitor>_{<monitor>:.6f}.keras``.
        backup_dir: a folder of its own (outside ``run_dir``) for
            ``keras.callbacks.BackupAndRestore``, added in its place in the list: a fit started
            again after a crash resumes where the crashed one stopped (see "Resuming").

    Returns:
        The list to pass as ``model.fit(callbacks=...)`` (add your own callbacks after it).

    Example:
        >>> import runlens.keras                                            # doctest: +SKIP
        >>> model.fit(x, y, validation_data=(xv, yv), epochs=100,         # doctest: +SKIP
        ...           callbacks=runlens.keras.callbacks("runs/exp1", keep_best=3,
        ...               early_stopping={"patience": 5, "restore_best_weights": True},
        ...               reduce_lr={"patience": 2, "factor": 0.5}, hparams={"units": 64}))
    """
    run = Path(run_dir)
    backup = _backup(run, backup_dir)
    direction = metric_direction(monitor, mode, callback="ModelCheckpoint")
    keep_best, keep_last = count("keep_best", keep_best, minimum=1), count("keep_last", keep_last, minimum=1)
    es_args = _policy_args("early_stopping", early_stopping, monitor, mode, EarlyStopping)
    rlr_args = _policy_args("reduce_lr", reduce_lr, monitor, mode, ReduceLROnPlateau)
    names = CheckpointNames.create(monitor, save_weights_only=save_weights_only, template=checkpoint_template)
    checked = check_hparams(hparams)
    es = _keras_policy("early_stopping", keras.callbacks.EarlyStopping, es_args)
    rlr = _keras_policy("reduce_lr", keras.callbacks.ReduceLROnPlateau, rlr_args)
    record = RunRecord(run)
    config = {
        "monitor": monitor,
        "mode": mode,
        "direction": direction,
        "early_stopping": es_args,
        "reduce_lr": rlr_args,
        "keep_best": keep_best,
        "keep_last": keep_last,
        "save_weights_only": bool(save_weights_only),
        "checkpoint_template": names.template,
        "checkpoint_template_no_value": names.no_value,
        "histogram_freq": histogram_freq,
        "update_freq": update_freq,
    }
    lock = FitLock(run)
    listed: list[keras.callbacks.Callback] = [
        RunGuard(lock, backups=[backup] if backup is not None else []),
        keras.callbacks.TensorBoard(log_dir=str(run), histogram_freq=histogram_freq, update_freq=update_freq),
    ]
    listed += [p for p in (rlr, es) if p is not None]
    listed.append(
        BestKCheckpoint(
            run,
            monitor=monitor,
            mode=mode,
            keep_best=keep_best,
            keep_last=keep_last,
            names=names,
            record=record,
            save_weights_only=save_weights_only,
            early_stopping=es,
        )
    )
    if checked:
        listed.append(HParamsSummary(run, checked))
    listed += [
        ResumableCSVLogger(run / HISTORY),
        RunManifest(run, config=config, hparams=checked, record=record, early_stopping=es, reduce_lr=rlr),
    ]
    if backup is not None:
        listed.append(backup)
    listed.append(RunGuardEnd(lock))
    return listed


def _backup(run: Path, backup_dir: str | os.PathLike[str] | None) -> keras.callbacks.BackupAndRestore | None:
    """Keras' BackupAndRestore in ``backup_dir``, which must be a folder of its own: Keras deletes
    it when training ends, and checkpoint readers would take its weights for the run's."""
    if backup_dir is None:
        return None
    backup, folder = Path(backup_dir).resolve(), run.resolve()
    if backup == folder or backup.is_relative_to(folder) or folder.is_relative_to(backup):
        raise RunlensError(
            f"backup_dir={str(backup_dir)!r} shares a folder with run_dir={str(run)!r}: give "
            "BackupAndRestore a folder of its own (Keras deletes it when training ends), e.g. "
            f"backup_dir={str(run.parent / 'backups' / run.name)!r}"
        )
    return keras.callbacks.BackupAndRestore(str(backup_dir))


def _policy_args(
    option: str, given: Mapping[str, Any] | bool | None, monitor: str, mode: str, replay: type
) -> dict[str, Any] | None:
    """The Keras arguments of a policy, with the bundle's monitor/mode as defaults, checked by
    building runlens' replay of it (so the run can always be replayed offline)."""
    if given is None or given is False:
        return None
    if given is True:
        given = {}
    if not isinstance(given, Mapping):
        raise RunlensError(f"{option} must be a dict of Keras arguments, True or None, got {given!r}")
    args = {"monitor": monitor, "mode": mode, **given}
    try:
        replay(**{k: v for k, v in args.items() if k != "verbose"})
    except TypeError as exc:
        raise RunlensError(f"{option}={dict(given)!r}: {exc}") from None
    except RunlensError as exc:
        raise RunlensError(f"{option}: {exc}") from None
    return args


def _keras_policy(option: str, cls: type, args: dict[str, Any] | None) -> Any:
    if args is None:
        return None
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise RunlensError(f"{option}={args!r}: {exc}") from None
