"""Carry Keras' EarlyStopping / ReduceLROnPlateau state over a resume, and record it per epoch.

``keras.callbacks.BackupAndRestore`` restores the model and optimizer (the learning rate too) but
not the callbacks: a resumed EarlyStopping starts with ``wait=0`` and no best, so it would decide
differently from one uninterrupted fit (and from runlens' offline replay). The bundle records each
policy's state after every epoch in ``runlens.json`` (:func:`early_stopping_state`,
:func:`reduce_lr_state`) and, before the first resumed epoch, puts the state of the last epoch
before it back into the callbacks (:func:`restore_policies`): the same attributes Keras' own
``on_epoch_end`` reads (``wait``, ``best``, ``best_epoch``, ``cooldown_counter``).

With ``restore_best_weights`` EarlyStopping also needs the best epoch's weights: they are read from
that epoch's checkpoint (kept for this reason, see :mod:`runlens.keras.checkpoint`) without
disturbing the model or optimizer state the backup restored.

>>> state = early_stopping_state(es)            # doctest: +SKIP
{'wait': 2, 'best': 0.4512, 'best_epoch': 3}
"""

from __future__ import annotations

import warnings
from typing import Any

import keras

from runlens.keras.record import RunRecord


def early_stopping_state(es: keras.callbacks.EarlyStopping) -> dict[str, Any]:
    """``wait``, ``best`` (None before any monitored epoch) and ``best_epoch`` after an epoch."""
    best = None if es.best is None else float(es.best)
    return {"wait": int(es.wait), "best": best, "best_epoch": None if best is None else int(es.best_epoch)}


def reduce_lr_state(rlr: keras.callbacks.ReduceLROnPlateau) -> dict[str, Any]:
    """``wait``, ``best`` and ``cooldown_counter`` after an epoch."""
    best = None if rlr.best is None else float(rlr.best)
    return {"wait": int(rlr.wait), "best": best, "cooldown_counter": int(rlr.cooldown_counter)}


def restore_policies(
    record: RunRecord,
    entry: dict[str, Any],
    *,
    model: keras.Model,
    early_stopping: keras.callbacks.EarlyStopping | None,
    reduce_lr: keras.callbacks.ReduceLROnPlateau | None,
) -> None:
    """Put the policies' state recorded in ``entry`` (an epoch of ``record``) back in place."""
    es_state, rlr_state = entry.get("early_stopping"), entry.get("reduce_lr")
    if early_stopping is not None and es_state is not None and es_state["best"] is not None:
        early_stopping.wait = es_state["wait"]
        early_stopping.best = es_state["best"]
        early_stopping.best_epoch = es_state["best_epoch"]
        if early_stopping.restore_best_weights:
            early_stopping.best_weights = _best_weights(model, record, es_state["best_epoch"])
    if reduce_lr is not None and rlr_state is not None:
        reduce_lr.wait = rlr_state["wait"]
        reduce_lr.best = rlr_state["best"]
        reduce_lr.cooldown_counter = rlr_state["cooldown_counter"]


def _best_weights(model: keras.Model, record: RunRecord, best_epoch: int) -> list | None:
    """The weights of ``best_epoch`` from its checkpoint, the model and optimizer left untouched."""
    path = record.epochs.get(best_epoch, {}).get("checkpoint")
    if path is None or not (record.run_dir / path).exists():
        warnings.warn(
            f"runlens: EarlyStopping(restore_best_weights=True) cannot get epoch {best_epoch + 1}'s "
            "weights back after the resume: its checkpoint is gone; Keras will treat the first "
            "monitored epoch after the resume as the best one",
            stacklevel=3,
        )
        return None
    weights = model.get_weights()
    optimizer = getattr(model, "optimizer", None)
    slots = [v.numpy() for v in optimizer.variables] if optimizer is not None else []
    try:
        model.load_weights(str(record.run_dir / path))  # loads the optimizer's variables too
        return model.get_weights()
    finally:
        model.set_weights(weights)
        for variable, value in zip(optimizer.variables if optimizer is not None else [], slots):
            variable.assign(value)
