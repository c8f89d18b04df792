"""Keep ``RUN/runlens.json`` up to date: what the run is, and what its policies actually did.

:class:`RunManifest` rewrites the manifest (schema in :mod:`runlens.manifest`) atomically at train
begin (unless the folder holds a finished run, which a fit may continue but not restart), when
the first epoch of a fit begins (once it is known whether the fit resumes), at every
epoch end and at train end. It must be the last callback of the list: at an epoch's end it records
what every callback before it did -- the learning rate used during the epoch and the one
ReduceLROnPlateau left, EarlyStopping's state and decision, the checkpoint saved.

A process that dies leaves the last manifest written, with ``status: "running"`` and
``ended_normally: false``. When the next fit resumes at epoch ``k > 0`` the entries of epochs
``< k`` are kept, the policies' state is put back (:mod:`runlens.keras.resume`) and a new entry is
added to ``attempts``; a fit that starts at epoch 0 after an attempt that died before any backup
starts the manifest over (with a warning). Restarting a finished run is refused
(:class:`runlens.keras.record.RunRecord`).

>>> cb = RunManifest("runs/exp1", config={...}, hparams={}, record=record)     # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import socket
import warnings
from pathlib import Path
from typing import Any

import keras

from runlens.checkpoints.find import CHECKPOINTS_FOLDER
from runlens.keras.record import RunRecord
from runlens.keras.resume import early_stopping_state, reduce_lr_state, restore_policies
from runlens.manifest import SCHEMA, SCHEMA_VERSION, write_manifest


class RunManifest(keras.callbacks.Callback):
    """Writes ``RUN/runlens.json`` (see the module docstring); place it last.

    Args:
        run_dir: the run folder.
        config: the bundle's configuration, stored as ``config``.
        hparams: stored as ``hparams``.
        record: the run's :class:`RunRecord`, shared with the checkpoint callback.
        early_stopping, reduce_lr: the bundle's Keras policies (or None), placed before this one.

    Example:
        >>> RunManifest("runs/a", config=config, hparams={"units": 8},
        ...             record=RunRecord("runs/a"))                    # doctest: +SKIP
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        config: dict[str, Any],
        hparams: dict[str, Any],
        record: RunRecord,
        early_stopping: keras.callbacks.EarlyStopping | None = None,
        reduce_lr: keras.callbacks.ReduceLROnPlateau | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.config = config
        self.hparams = hparams
        self.record = record
        self.early_stopping = early_stopping
        self.reduce_lr = reduce_lr
        self.started_at = ""
        self.attempts: list[dict[str, Any]] = []
        self.status = "running"
        self.restored: tuple[bool, int | None] | None = None
        self._initial_epoch: int | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.record.train_begin()
        previous = self.record.previous or {}
        attempt = {"started_at": _now(), "initial_epoch": None, "ended_at": None, "ended_normally": False}
        self.attempts = [*previous.get("attempts", []), attempt]
        self.started_at = previous.get("started_at", attempt["started_at"])
        self.status, self.restored, self._initial_epoch = "running", None, None
        if not previous.get("ended_normally"):  # a finished run's manifest is rewritten only
            self._write()  # once the first epoch passed the checks

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._initial_epoch is not None:
            return
        self._initial_epoch = epoch
        self.record.epoch_begin(epoch)
        self.attempts[-1]["initial_epoch"] = epoch
        if epoch == 0:
            self._start_over()
        else:
            self._resume(epoch)
        self._write()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        entry = self.record.log(epoch, logs)
        after = _learning_rate(self.model)
        used = (logs or {}).get("learning_rate", after) if self.reduce_lr is not None else after
        entry["learning_rate"] = None if used is None else float(used)
        if self.early_stopping is not None:
            entry["early_stopping"] = early_stopping_state(self.early_stopping)
        if self.reduce_lr is not None:
            entry["reduce_lr"] = {**reduce_lr_state(self.reduce_lr), "lr_after": after}
        self._write()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        es = self.early_stopping
        if es is not None and es.stopped_epoch > 0:
            self.status = "stopped_early"
        elif getattr(self.model, "stop_training", False):
            self.status = "stopped"
        else:
            self.status = "completed"
        if es is not None:
            restored = bool(es.restore_best_weights and es.best_weights is not None)
            self.restored = (restored, int(es.best_epoch) if restored else self._last_epoch())
        self.attempts[-1].update(ended_at=_now(), ended_normally=True)
        self._write()

    def _start_over(self) -> None:
        previous = self.record.previous  # never a finished run: RunRecord refuses to restart those
        if previous is not None and previous["epochs"]:
            warnings.warn(
                f"runlens: the previous attempt in {self.run_dir} did not end normally and no backup "
                "was restored: training restarts at epoch 1; runlens.json starts over and that "
                "attempt's checkpoints are removed once this fit has saved its first",
                stacklevel=3,
            )
        self.attempts = self.attempts[-1:]
        self.started_at = self.attempts[0]["started_at"]

    def _resume(self, epoch: int) -> None:
        entry = self.record.last_before(epoch)
        if entry is None:
            warnings.warn(
                f"runlens: the fit starts at epoch {epoch + 1} but runlens.json records no earlier "
                "epoch; EarlyStopping and ReduceLROnPlateau start afresh",
                stacklevel=3,
            )
            return
        if entry["epoch"] != epoch - 1:
            warnings.warn(
                f"runlens: the fit resumes at epoch {epoch + 1} but runlens.json records epochs up "
                f"to {entry['epoch'] + 1} only (place BackupAndRestore after runlens' callbacks); "
                f"the policies continue from epoch {entry['epoch'] + 1}'s state",
                stacklevel=3,
            )
        restore_policies(
            self.record, entry, model=self.model, early_stopping=self.early_stopping, reduce_lr=self.reduce_lr
        )

    def _last_epoch(self) -> int | None:
        return max(self.record.epochs) if self.record.epochs else None

    def _write(self) -> None:
        write_manifest(self.run_dir, self._document())

    def _document(self) -> dict[str, Any]:
        entries = [self.record.epochs[e] for e in sorted(self.record.epochs)]
        attempt = self.attempts[-1]
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "run_dir": str(self.run_dir.resolve()),
            "status": self.status,
            "ended_normally": attempt["ended_normally"],
            "started_at": self.started_at,
            "updated_at": _now(),
            "ended_at": attempt["ended_at"],
            "versions": _versions(),
            "process": {"pid": os.getpid(), "host": socket.gethostname()},
            "config": self.config,
            "hparams": self.hparams,
            "attempts": self.attempts,
            "epochs_trained": len(entries),
            "last_epoch": self._last_epoch(),
            "epochs": entries,
            "early_stopping": self._early_stopping_summary(entries),
            "reduce_lr": self._reduce_lr_summary(entries),
            "checkpoints": {"folder": CHECKPOINTS_FOLDER, "kept": self._kept(entries)},
        }

    def _early_stopping_summary(self, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.early_stopping is None:
            return None
        states = [e["early_stopping"] for e in entries if e["early_stopping"] is not None]
        state = states[-1] if states else {"best": None, "best_epoch": None}
        stopped = self.early_stopping.stopped_epoch
        restored, restored_epoch = self.restored if self.restored is not None else (None, None)
        return {
            "stopped_epoch": int(stopped) if stopped > 0 else None,
            "best_epoch": state["best_epoch"],
            "best_value": state["best"],
            "restored": restored,
            "restored_epoch": restored_epoch,
        }

    def _reduce_lr_summary(self, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        if self.reduce_lr is None:
            return None
        reductions = [
            {"epoch": e["epoch"], "old_lr": e["learning_rate"], "new_lr": e["reduce_lr"]["lr_after"]}
            for e in entries
            if e["reduce_lr"] is not None and e["reduce_lr"].get("lr_after") != e["learning_rate"]
        ]
        return {"reductions": reductions}

    def _kept(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        monitor = self.config["monitor"]
        return [
            {"path": e["checkpoint"], "epoch": e["epoch"], "value": e["logs"].get(monitor)}
            for e in entries
            if e["checkpoint"] is not None and (self.run_dir / e["checkpoint"]).is_file()
        ]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _learning_rate(model: keras.Model) -> float | None:
    """The optimizer's current rate (None for several optimizers or an unreadable rate)."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    if optimizer is None or hasattr(optimizer, "optimizers"):
        return None
    try:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None


def _versions() -> dict[str, str | None]:
    from runlens import __version__

    def installed(*names: str) -> str | None:
        for name in names:
            try:
                return importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                continue
        return None

    return {
        "runlens": __version__,
        "keras": keras.__version__,
        "tensorflow": installed("tensorflow", "tensorflow-cpu"),
        "python": platform.python_version(),
    }
