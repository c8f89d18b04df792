"""Is a file a Keras checkpoint, and is it whole? Decided from its content alone: no TensorFlow,
nothing deserialised, never by its name.

A file is a checkpoint only when it positively is one:

- ``.keras`` (Keras 3 / tf-keras ``saving_lib``): a zip archive whose ``metadata.json`` is a JSON
  object with ``keras_version`` or whose ``config.json`` is a serialised Keras object (a JSON object
  with ``class_name``); see :mod:`.keras_zip`.
- ``.h5`` / ``.weights.h5``: an HDF5 file (read with h5py) carrying the markers Keras writes -- the
  legacy ``model.save`` layout, the legacy ``save_weights`` layout or the Keras 3 weights layout;
  see :mod:`.keras_hdf5`.
- ``.ckpt``: a ``torch.save`` zip holding Lightning's checkpoint dict, read without torch and
  without running its pickle; see :mod:`.lightning_ckpt`.
- ``checkpoint-N/`` folders (HF Trainer) are judged as a whole by :mod:`.hf_folder`.

Every file gets one of three verdicts (:attr:`Validity.checkpoint`):

- ``True``: a Keras checkpoint, ``valid`` or not (``reason`` says what is wrong: a save cut short,
  a member failing its CRC, a missing member); only these are listed, ranked, ever deleted;
- ``False``: not a Keras checkpoint (another zip, an HDF5 data file, text): never touched;
- ``None``: damaged so that nothing proves Keras wrote it (an empty file, a truncated HDF5 file
  the HDF5 library refuses to open, a zip whose Keras members cannot be read): reported, never
  deleted by any option -- deleting it could destroy someone else's data.

>>> check_checkpoint("model.keras", "keras")            # doctest: +SKIP
Validity(valid=True, reason=None, keras_version='3.15.1', saved_at=datetime.datetime(2026, 11, 25, 0, 15, 26), checkpoint=True)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

from runlens.checkpoints.nofollow import FileIdentity, open_regular


@dataclass(frozen=True)
class Validity:
    """The verdict on one file: ``checkpoint`` (True, False: not one, None: cannot tell), whether
    it is ``valid`` (whole), and ``reason`` when it is not a valid checkpoint. ``epoch`` (0-based)
    and ``step`` (the global step) are what the checkpoint says about itself (Lightning, HF
    Trainer), ``content`` the rest of what runlens read from it (its framework's own record of
    the best checkpoint, say)."""

    valid: bool
    reason: str | None = None
    keras_version: str | None = None
    saved_at: datetime | None = None  # naive local time, as Keras writes it
    checkpoint: bool | None = True
    epoch: int | None = None
    step: int | None = None
    content: Any = None


def check_checkpoint(path: str, kind: str) -> Validity:
    """Check the file at ``path`` (never through a symlink) as a ``kind`` checkpoint
    (``"keras"``, ``"weights"``, ``"h5"`` or ``"lightning"``, from
    :func:`runlens.checkpoints.names.checkpoint_kind`)."""
    return inspect_file(path, kind)[1]


def inspect_file(name: str, kind: str, *, dir_fd: int | None = None) -> tuple[FileIdentity | None, Validity]:
    """``(identity, verdict)`` of ``name`` (relative to ``dir_fd``), read through one descriptor
    opened without following symlinks. The identity is taken before reading; a file that changed
    while it was read gets the verdict "cannot tell" (it is being written)."""

    def check(fd: int, identity: FileIdentity) -> Validity:
        with os.fdopen(fd, "rb", closefd=False) as file:
            return check_open(file, kind, identity.size)

    return inspect_held(lambda: open_regular(name, dir_fd=dir_fd)[0], _file_identity, check)


_Identity = TypeVar("_Identity")  # a file's or a folder's identity


def inspect_held(
    open_entry: Callable[[], int],
    identify: Callable[[int], _Identity],
    check: Callable[[int, _Identity], Validity],
) -> tuple[_Identity | None, Validity]:
    """``(identity, verdict)`` of the file or folder ``open_entry()`` opens, all of it read through
    that one descriptor (closed at the end): its identity (``identify(fd)``) before and after
    ``check(fd, identity)`` gives the verdict. One that changed in between gets the verdict "cannot
    tell" (it is being written); an ``OSError`` opening or reading it, "cannot open"/"cannot read"
    and no identity.

    >>> by_inode = lambda fd: os.fstat(fd).st_ino
    >>> inspect_held(lambda: os.open(".", os.O_RDONLY), by_inode, lambda fd, _: Validity(True))[1].valid
    True
    >>> inspect_held(lambda: os.open("/no/such", os.O_RDONLY), by_inode, lambda fd, _: Validity(True))[1].reason
    'cannot open: No such file or directory'
    """
    try:
        fd = open_entry()
    except OSError as exc:
        return None, Validity(False, f"cannot open: {_why(exc)}", checkpoint=None)
    try:
        before = identify(fd)
        verdict = check(fd, before)
        after = identify(fd)
    except OSError as exc:
        return None, Validity(False, f"cannot read: {_why(exc)}", checkpoint=None)
    finally:
        os.close(fd)
    if after != before:
        return before, Validity(False, "changed while being read (still being written?)", checkpoint=None)
    return before, verdict


def inspect_entry(name: str, kind: str, *, dir_fd: int | None = None) -> tuple[FileIdentity | None, Validity]:
    """:func:`inspect_file`, or for an HF Trainer checkpoint folder (kind ``"transformers"``)
    :func:`runlens.checkpoints.hf_folder.inspect_hf_folder`."""
    if kind == "transformers":
        from runlens.checkpoints.hf_folder import inspect_hf_folder

        return inspect_hf_folder(name, dir_fd=dir_fd)
    return inspect_file(name, kind, dir_fd=dir_fd)


def check_open(file: BinaryIO, kind: str, size: int) -> Validity:
    """The verdict on an open binary ``file`` of ``size`` bytes, as a ``kind`` checkpoint."""
    if size == 0:
        return Validity(False, "empty file (a save cut short at its start?)", checkpoint=None)
    if kind == "keras":
        from runlens.checkpoints.keras_zip import check_keras_archive

        return check_keras_archive(file)
    if kind == "lightning":
        from runlens.checkpoints.lightning_ckpt import check_lightning_checkpoint

        return check_lightning_checkpoint(file)
    from runlens.checkpoints.keras_hdf5 import check_keras_hdf5

    return check_keras_hdf5(file, size)


def _file_identity(fd: int) -> FileIdentity:
    return FileIdentity.of(os.fstat(fd))


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__
