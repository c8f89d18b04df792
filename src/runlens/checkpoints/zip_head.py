"""The first member of a zip file read from its local header: what a save cut short still shows.

A zip's table of contents (its central directory) is written last, so a save that was cut short has
none, and :class:`zipfile.ZipFile` refuses it. Its first member is still there, with its name and,
when it was stored uncompressed, its bytes: enough to tell whose save it was (Keras writes
``metadata.json`` first, ``torch.save`` its ``data.pkl``).

>>> with open("cut.keras", "rb") as f:          # doctest: +SKIP
...     first_member(f, limit=1 << 20, unsized=16)
FirstMember(name='metadata.json', stored=True, size=64, data=b'{"keras_version": ...')
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

# signature, version, flags, method, time, date, crc, compressed size, size, name and extra lengths
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
# what a damaged zip raises while it is opened or read (CRC mismatch, bad deflate stream, cut short,
# an impossible "zip file version" or size: all seen when fuzzing real saves with flipped bytes)
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    struct.error,
)


@dataclass(frozen=True)
class FirstMember:
    """The first local member: its ``name``, whether it is ``stored`` (not compressed), the
    ``size`` its header declares and the ``data`` present (at most ``limit`` bytes; at most
    ``unsized`` bytes when the header declares size 0, its sizes being written after the data)."""

    name: bytes
    stored: bool
    size: int
    data: bytes


def is_zip(file: BinaryIO) -> bool:
    """Whether ``file`` starts with a zip's local header signature."""
    file.seek(0)
    return file.read(4) == b"PK\x03\x04"


def first_member(file: BinaryIO, *, limit: int, unsized: int) -> FirstMember | None:
    """The first member of the zip ``file``, or None when even its header is cut short."""
    file.seek(0)
    head = file.read(_LOCAL_HEADER.size)
    if len(head) < _LOCAL_HEADER.size or not head.startswith(b"PK\x03\x04"):
        return None
    _, _, _, method, _, _, _, stored_size, _, name_length, extra_length = _LOCAL_HEADER.unpack(head)
    name = file.read(name_length)
    file.seek(_LOCAL_HEADER.size + name_length + extra_length)
    data = file.read(min(stored_size, limit) if stored_size else min(unsized, limit))
    return FirstMember(name, method == zipfile.ZIP_STORED, stored_size, data)
