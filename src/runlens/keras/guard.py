"""The first and the last of the bundled callbacks: one fit per run folder, and a usable backup.

:class:`RunGuard` is first in the list. It takes the run folder's :class:`FitLock` in
``set_model`` -- Keras calls ``set_model`` on every callback, in list order, when ``fit`` builds
its callback list, before any ``on_train_begin`` -- so a second fit on the same ``run_dir`` is
refused before any callback of it has written or deleted anything there (Keras' TensorBoard
callback, second in the list, writes the model's graph from its own ``set_model``). It takes the
lock again in ``on_train_begin`` (a no-op when held) for callback lists built once and reused.
Then, before the ``on_train_begin`` of the callbacks after it, it checks the backup of each
``keras.callbacks.BackupAndRestore`` after it in the list -- before that callback loads it -- and
rebuilds a damaged one from runlens' own checkpoint (:mod:`runlens.keras.backup`).
:class:`RunGuardEnd` is last: it releases the lock in ``on_train_end``, after every bundled
callback finished writing. A fit that raises gets no ``on_train_end``: the lock then ends with the
function driving the fit (see :mod:`runlens.keras.fit_lock`).

>>> lock = FitLock("runs/exp1")                                       # doctest: +SKIP
>>> callbacks = [RunGuard(lock), ..., RunGuardEnd(lock)]              # doctest: +SKIP
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any

import keras

from runlens.keras.backup import prepare_backup
from runlens.keras.fit_lock import FitLock


class RunGuard(keras.callbacks.Callback):
    """Takes ``lock`` when a fit sets up its callbacks and when training begins, then checks the
    backups of the ``keras.callbacks.BackupAndRestore`` placed after it (see the module
    docstring); place it first.

    Args:
        lock: the run folder's lock, released by the :class:`RunGuardEnd` at the end of the list.
        backups: the bundle's own ``BackupAndRestore`` (those placed by hand after the bundle are
            found in the fit's callback list).

    Example:
        >>> guard = RunGuard(FitLock("runs/a"))                        # doctest: +SKIP
    """

    def __init__(self, lock: FitLock, backups: Sequence[keras.callbacks.BackupAndRestore] = ()) -> None:
        super().__init__()
        self.lock = lock
        self.backups = list(backups)

    def set_model(self, model: keras.Model) -> None:
        self.lock.acquire(_driving_fit()[0])  # first: a refused fit leaves even this callback alone
        super().set_model(model)

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        frame, listed = _driving_fit()
        self.lock.acquire(frame)
        after = listed[listed.index(self) + 1 :] if listed is not None and self in listed else []
        backups = {
            id(b): b for b in [*self.backups, *after] if isinstance(b, keras.callbacks.BackupAndRestore)
        }
        if self.model.built:  # else BackupAndRestore raises Keras' own clear error
            for backup in backups.values():
                prepare_backup(backup, self.model, self.lock.run_dir)


class RunGuardEnd(keras.callbacks.Callback):
    """Releases ``lock`` at the end of training; place it last.

    Example:
        >>> end = RunGuardEnd(FitLock("runs/a"))                       # doctest: +SKIP
    """

    def __init__(self, lock: FitLock) -> None:
        super().__init__()
        self.lock = lock

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.lock.release()


def _driving_fit() -> tuple[FrameType, list[keras.callbacks.Callback] | None]:
    """The frame of the function driving this fit -- the first caller outside this module and
    Keras' ``CallbackList`` (``keras/src/callbacks/callback_list.py``), i.e. ``Model.fit``, or a
    custom training loop calling a ``CallbackList`` itself -- and that ``CallbackList``'s callbacks
    (None when a hook was called directly): a callback does not see its siblings otherwise."""
    inside = {_driving_fit.__code__.co_filename, keras.callbacks.CallbackList.__init__.__code__.co_filename}
    frame, listed = sys._getframe(1), None
    while frame.f_back is not None and frame.f_code.co_filename in inside:
        owner = frame.f_locals.get("self")
        if isinstance(owner, keras.callbacks.CallbackList):
            listed = list(owner.callbacks)
        frame = frame.f_back
    return frame, listed
