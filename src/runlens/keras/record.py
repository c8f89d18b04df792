"""What the bundled callbacks share about one run: a record per epoch, carried over on resume.

:class:`RunRecord` holds, per 0-based epoch, the entry that ``runlens.json`` stores under
``epochs`` (see :mod:`runlens.manifest`). When a fit starts at epoch ``k > 0`` (resumed by
``keras.callbacks.BackupAndRestore`` or ``fit(initial_epoch=k)``), the entries of epochs ``< k``
are taken from the manifest found at train begin and the later ones, from an attempt that did not
survive, are dropped.

Only :class:`runlens.keras.RunManifest` calls :meth:`RunRecord.train_begin`; every bundled
callback calls :meth:`RunRecord.epoch_begin` (the first call of a fit decides the initial epoch).

>>> record = RunRecord("runs/exp1")                     # doctest: +SKIP
>>> record.frame()[["epoch", "val_loss"]]               # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.manifest import MANIFEST_NAME, read_manifest

RUN = "."  # the run name read_checkpoints gives files directly in the checkpoint folder


class RunRecord:
    """Per-epoch entries of one run (``epochs[e]`` is ``runlens.json``'s entry for epoch ``e``)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.epochs: dict[int, dict[str, Any]] = {}
        self.initial_epoch: int | None = None
        self.previous: dict[str, Any] | None = None

    def train_begin(self) -> None:
        """Start a fit: take up the epochs of the manifest a previous attempt left, if any (kept
        until the initial epoch is known)."""
        self.initial_epoch = None
        file = self.run_dir / MANIFEST_NAME
        self.previous = read_manifest(file) if file.exists() else None
        self.epochs = {r["epoch"]: r for r in (self.previous or {}).get("epochs", [])}

    def epoch_begin(self, epoch: int) -> bool:
        """Note that ``epoch`` begins; True for the first epoch of this fit (the initial epoch),
        when the entries of epochs ``>= epoch`` (all of them for epoch 0) are dropped."""
        if self.initial_epoch is not None:
            return False
        previous = self.previous
        if epoch == 0 and previous is not None and previous["ended_normally"] and previous["epochs"]:
            raise RunlensError(
                f"{self.run_dir} already holds a finished run ({len(previous['epochs'])} epochs in "
                f"{MANIFEST_NAME}); its checkpoints would be ranked with this fit's logs: pass a new "
                "run_dir (or continue it with fit(initial_epoch=...), or delete the folder)"
            )
        self.initial_epoch = epoch
        self.epochs = {e: r for e, r in self.epochs.items() if epoch > 0 and e < epoch}
        return True

    def log(self, epoch: int, logs: dict[str, Any] | None) -> dict[str, Any]:
        """The entry of ``epoch`` with Keras' ``logs`` of its end (numbers only) stored in it."""
        entry = self.epochs.setdefault(
            epoch,
            {
                "epoch": epoch,
                "wall_time": time.time(),
                "logs": {},
                "learning_rate": None,
                "early_stopping": None,
                "reduce_lr": None,
                "checkpoint": None,
            },
        )
        entry["logs"] = {k: float(v) for k, v in (logs or {}).items() if _is_number(v)}
        return entry

    def last_before(self, epoch: int) -> dict[str, Any] | None:
        """The entry of the latest epoch before ``epoch``, or None."""
        earlier = [e for e in self.epochs if e < epoch]
        return self.epochs[max(earlier)] if earlier else None

    def frame(self) -> pd.DataFrame:
        """The epochs recorded as an epoch frame (as :func:`runlens.read_epochs` returns, run ``.``)."""
        entries = [self.epochs[e] for e in sorted(self.epochs)]
        frame = pd.DataFrame(
            {
                "run": [RUN] * len(entries),
                "epoch": np.array([e["epoch"] for e in entries], dtype=np.int64),
                "wall_time": np.array([e["wall_time"] for e in entries], dtype=np.float64),
            }
        )
        for name in sorted({k for e in entries for k in e["logs"]}):
            present = np.array([name in e["logs"] for e in entries], dtype=bool)
            values = np.array([e["logs"].get(name, 0.0) for e in entries], dtype=np.float64)
            frame[name] = pd.arrays.FloatingArray(values, ~present)
        return frame


def _is_number(value: Any) -> bool:
    """Keras logs hold floats; anything else (strings, arrays) has no place in an epoch frame."""
    if isinstance(value, (bool, str)) or np.ndim(value) != 0:
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
