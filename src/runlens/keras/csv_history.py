"""``RUN/history.csv``: Keras' CSVLogger, made to survive a resume.

Keras' ``CSVLogger`` opens its file at train begin, before it can know whether the fit resumes:
with ``append=False`` a resumed fit erases the epochs already trained, with ``append=True`` the
epoch a crash interrupted is written twice and a fresh fit appends to an old file.
:class:`ResumableCSVLogger` opens the file when the first epoch begins: at epoch 0 it starts a
new file; at epoch ``k > 0`` it keeps the header and the rows of epochs ``< k`` (rewritten
atomically), then appends under the same columns. Rows are written by ``CSVLogger`` itself
(0-based ``epoch``, ``NA`` where a key was not logged, floats at full precision).

>>> ResumableCSVLogger("runs/exp1/history.csv")      # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
from typing import Any

import keras

from runlens.atomic import atomic_output


class ResumableCSVLogger(keras.callbacks.CSVLogger):
    """``keras.callbacks.CSVLogger(filename)`` that continues the file when a fit resumes.

    Example:
        >>> model.fit(x, y, callbacks=[ResumableCSVLogger("history.csv")])   # doctest: +SKIP
    """

    def __init__(self, filename: str | os.PathLike[str], separator: str = ",") -> None:
        super().__init__(str(filename), separator=separator, append=False)
        self._opened = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._opened = False  # opened when the first epoch tells where the fit starts

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._opened:
            return
        self._opened = True
        header = _keep_rows_before(self.filename, epoch, self.sep) if epoch > 0 else None
        self.append = header is not None
        super().on_train_begin()
        if header:
            self.keys = header[1:]  # the columns of the rows kept, so the new rows line up


def _keep_rows_before(filename: str, epoch: int, separator: str) -> list[str] | None:
    """Rewrite ``filename`` keeping its header and the rows of epochs < ``epoch``; the header, or
    None when there is no file to continue."""
    try:
        with open(filename, newline="") as f:
            rows = list(csv.reader(f, delimiter=separator))
    except FileNotFoundError:
        return None
    if not rows or not rows[0] or rows[0][0] != "epoch":
        return None
    kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < epoch]
    with atomic_output(filename, what="the CSV history") as partial, open(partial, "w", newline="") as f:
        csv.writer(f, delimiter=separator).writerows(kept)
    return rows[0]
