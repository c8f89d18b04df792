"""Is a checkpoint file whole? Checked from its bytes alone: no TensorFlow, nothing deserialised.

- ``.keras`` (Keras 3 ``saving_lib``): a zip archive holding ``config.json``, ``metadata.json`` and
  ``model.weights.h5`` (or ``model.weights.npz``) whose members all pass their CRC-32 check.
  ``metadata.json`` gives ``keras_version`` and ``date_saved`` (local time, ``%Y-%m-%d@%H:%M:%S``).
- ``.h5`` / ``.weights.h5``: the HDF5 signature ``\\x89HDF\\r\\n\\x1a\\n`` at offset 0 or after a
  user block (512, 1024, 2048, ... bytes), and a file at least as long as the end-of-file address
  its superblock records (superblock versions 0-3).

A save cut short by a crash leaves a zip without its central directory or an HDF5 file shorter
than its superblock says: both come out ``valid=False`` with the reason.

>>> check_checkpoint("model.keras", "keras")            # doctest: +SKIP
Validity(valid=True, reason=None, keras_version='3.15.1', saved_at=Timestamp('2026-11-25 00:15:26'))
"""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass

import pandas as pd

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_KERAS_MEMBERS = ("config.json", "metadata.json")
_KERAS_WEIGHTS = ("model.weights.h5", "model.weights.npz")


@dataclass(frozen=True)
class Validity:
    """The verdict on one checkpoint file (``reason`` says what is wrong when not valid)."""

    valid: bool
    reason: str | None = None
    keras_version: str | None = None
    saved_at: pd.Timestamp | None = None


def check_checkpoint(path: str, kind: str) -> Validity:
    """Check the checkpoint at ``path`` of ``kind`` (``"keras"``, ``"weights"`` or ``"h5"``)."""
    try:
        return _check_keras(path) if kind == "keras" else _check_hdf5(path)
    except OSError as exc:
        return Validity(False, f"cannot read: {exc.strerror or exc}")


def _check_keras(path: str) -> Validity:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [m for m in _KERAS_MEMBERS if m not in names]
            if not any(w in names for w in _KERAS_WEIGHTS):
                missing.append(" or ".join(_KERAS_WEIGHTS))
            if missing:
                return Validity(False, f"not a Keras archive: no {', '.join(missing)} inside")
            bad = zf.testzip()
            if bad is not None:
                return Validity(False, f"corrupted: member {bad} fails its CRC check")
            metadata = zf.read("metadata.json")
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        return Validity(False, f"not a readable zip (truncated while saving?): {exc}")
    try:
        meta = json.loads(metadata)
    except ValueError:
        return Validity(False, "metadata.json is not JSON")
    saved = pd.to_datetime(meta.get("date_saved"), format="%Y-%m-%d@%H:%M:%S", errors="coerce")
    return Validity(True, None, meta.get("keras_version"), None if pd.isna(saved) else saved)


def _check_hdf5(path: str) -> Validity:
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:  # user blocks are 0, 512, 1024, 2048, ...
            f.seek(offset)
            superblock = f.read(96)
            if superblock.startswith(HDF5_SIGNATURE):
                return _check_superblock(superblock, size)
            offset = 512 if offset == 0 else offset * 2
    if size == 0:
        return Validity(False, "empty file (cut short while saving?)")
    return Validity(False, "no HDF5 signature: not an HDF5 file or damaged")


def _check_superblock(sb: bytes, size: int) -> Validity:
    """Compare the superblock's end-of-file address with the file size (a stored absolute size)."""
    version = sb[8] if len(sb) > 8 else None
    if version in (0, 1):
        width, start = (sb[13] if len(sb) > 13 else 0), (24 if version == 0 else 28)
        eof_at = start + 2 * width  # base address, free-space address, end-of-file address
    elif version in (2, 3):
        width, start = (sb[9] if len(sb) > 9 else 0), 12
        eof_at = start + 2 * width  # base address, superblock extension address, end-of-file
    else:
        return Validity(True)  # a newer superblock: the signature is all we check
    if width not in (2, 4, 8) or len(sb) < eof_at + width:
        return Validity(False, "HDF5 superblock cut short")
    eof = int.from_bytes(sb[eof_at : eof_at + width], "little")
    if eof != (1 << (8 * width)) - 1 and size < eof:
        return Validity(False, f"truncated: HDF5 superblock says {eof} bytes, file has {size}")
    return Validity(True)
