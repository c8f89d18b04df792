"""Hyperparameters written for TensorBoard's HParams dashboard (and :func:`runlens.read_hparams`).

:class:`HParamsSummary` writes, when the first epoch of a fit begins, one ``session_start_info`` summary with
``tensorboard.plugins.hparams.api.hparams`` into an event file directly in ``RUN`` -- the layout
of TensorBoard's own ``hp.KerasCallback``: the dashboard takes ``RUN`` as the session and finds
its metrics in ``RUN/train`` and ``RUN/validation``. A resumed fit writes them again (the reader
takes the last).

>>> HParamsSummary("runs/exp1", {"units": 8, "optimizer": "sgd"})      # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from runlens.errors import RunlensError


def check_hparams(hparams: Mapping[str, Any] | None) -> dict[str, bool | int | float | str]:
    """``hparams`` as plain Python values the hparams plugin stores, or a :class:`RunlensError`
    naming the entry it cannot store.

    >>> check_hparams({"units": np.int64(8), "dropout": 0.1})
    {'units': 8, 'dropout': 0.1}
    """
    if hparams is None:
        return {}
    if not isinstance(hparams, Mapping):
        raise RunlensError(
            f"hparams must be a dict of name -> bool/int/float/str, got {type(hparams).__name__}"
        )
    checked: dict[str, bool | int | float | str] = {}
    for name, value in hparams.items():
        if not isinstance(name, str) or not name:
            raise RunlensError(f"hparams: every name must be a non-empty string, got {name!r}")
        if isinstance(value, np.generic):
            value = value.item()
        if not isinstance(value, (bool, int, float, str)):
            raise RunlensError(
                f"hparams[{name!r}] = {value!r}: TensorBoard's hparams plugin stores only bool, "
                "int, float and str values; convert it (e.g. str(value))"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise RunlensError(f"hparams[{name!r}] = {value!r}: give a finite number")
        checked[name] = value
    return checked


class HParamsSummary(keras.callbacks.Callback):
    """Write ``hparams`` through TensorBoard's hparams plugin into ``run_dir`` when a fit's first
    epoch begins (after the bundle's checks of ``run_dir``, which run at that point).

    Example:
        >>> model.fit(x, y, callbacks=[HParamsSummary("runs/a", {"lr": 0.1})])   # doctest: +SKIP
    """

    def __init__(self, run_dir: str | os.PathLike[str], hparams: Mapping[str, Any]) -> None:
        super().__init__()
        self.run_dir = str(run_dir)
        self.hparams = check_hparams(hparams)
        self._written = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._written = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._written:
            return
        self._written = True
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hp

        writer = tf.summary.create_file_writer(self.run_dir)
        try:
            with writer.as_default():
                hp.hparams(self.hparams)
        finally:
            writer.close()
