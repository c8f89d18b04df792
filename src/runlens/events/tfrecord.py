"""The TFRecord format of event files: its layout, its masked CRC-32C, and checks of many records
at once.

A record is::

    uint64 length | uint32 masked_crc32c(length bytes) | payload | uint32 masked_crc32c(payload)

all little-endian, with ``masked(crc) = ((crc >> 15 | crc << 17) + 0xA282EAD8) mod 2**32`` over
CRC-32C (Castagnoli). Reading records from files, damage included, is :mod:`runlens.events.records`;
this module only computes: :func:`masked_crcs_of_lengths` checks every length field of a buffer with
table lookups, and :func:`all_crcs_hold` every length and payload CRC of a buffer with two CRC-32C
passes over it.

>>> len(frame_record(b"hi")), hex(masked_crc(b""))
(18, '0xa282ead8')
"""

from __future__ import annotations

import struct

import crc32c as _crc32c
import numpy as np

HEADER = 12  # uint64 length + uint32 crc of the length
FOOTER = 4  # uint32 crc of the payload
MASK_DELTA = 0xA282EAD8
U64 = struct.Struct("<Q")
U32 = struct.Struct("<I")


def masked_crc(data: bytes | memoryview) -> int:
    """The masked CRC-32C TFRecord stores for ``data``.

    >>> hex(masked_crc(b""))
    '0xa282ead8'
    """
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def frame_record(payload: bytes) -> bytes:
    """One TFRecord holding ``payload`` (used by tests and tools that write event files)."""
    length = U64.pack(len(payload))
    return length + U32.pack(masked_crc(length)) + payload + U32.pack(masked_crc(payload))


def _position_tables() -> tuple[np.ndarray, int]:
    """CRC-32C is affine over GF(2): for 8-byte messages ``crc(m) = base ^ T[0][m0] ^ ... ^ T[7][m7]``
    where ``T[k][b]`` is what byte ``b`` at position ``k`` contributes. 8 lookups check a length."""
    base = _crc32c.crc32c(bytes(8))
    tables = np.array(
        [[_crc32c.crc32c(bytes(k) + bytes([b]) + bytes(7 - k)) ^ base for b in range(256)] for k in range(8)],
        dtype=np.uint32,
    )
    return tables, base


_TABLES, _BASE = _position_tables()


def masked_crcs_of_lengths(buf: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Masked CRC-32C of the 8 length bytes at each of ``starts``, for all records at once."""
    crc = np.full(len(starts), _BASE, dtype=np.uint32)
    for k in range(8):
        crc ^= _TABLES[k][buf[starts + k]]
    return ((crc >> 15) | (crc << 17)) + np.uint32(MASK_DELTA)


def all_crcs_hold(buffer: bytes, heads: np.ndarray, lens: np.ndarray) -> bool:
    """Whether every length and payload CRC of the records at ``heads`` (payloads ``lens`` long) holds,
    with two CRC-32C passes over the whole buffer instead of one call per record.

    Each record is two CRC-protected segments: 8 length bytes and the payload, each followed by its
    masked CRC. With the stored CRCs unmasked in place, a segment is valid exactly when running
    CRC-32C over it from the initial state ends in one fixed state (CRC's residue property). CRC
    is affine, so the CRC of the whole buffer then equals that of any buffer with the same segment
    lengths whose segments are all valid -- zeros, each followed by the CRC of its zeros. One bad
    segment always changes the whole CRC (the state map between segments is invertible); several
    cancel out with probability 2**-32, the same odds as one record's own CRC missing damage.
    """
    end = int(heads[-1] + HEADER + lens[-1] + FOOTER)
    at = np.concatenate([heads + 8, heads + HEADER + lens])
    covered = np.concatenate([np.full(len(heads), 8, dtype=np.int64), lens])
    if covered.max() >= _ZERO_CRCS_MAX:
        return False  # records this large are few: check them one by one
    actual = np.frombuffer(buffer, dtype=np.uint8, count=end).copy()
    stored = unaligned(actual, "<u4")
    unmasked = stored[at] - np.uint32(MASK_DELTA)
    stored[at] = (unmasked >> 17) | (unmasked << 15)
    valid = np.zeros(end, dtype=np.uint8)
    unaligned(valid, "<u4")[at] = _zero_crcs(int(covered.max()))[covered]
    return _crc32c.crc32c(actual) == _crc32c.crc32c(valid)


_ZERO_CRCS_MAX = 1 << 20
_zero_crc_table = np.zeros(1, dtype=np.uint32)  # CRC-32C of n zero bytes at index n, grown on demand


def _zero_crcs(longest: int) -> np.ndarray:
    """CRC-32C of 0, 1, ..., ``longest`` zero bytes."""
    global _zero_crc_table
    known = len(_zero_crc_table)
    if longest >= known:
        grown = [int(_zero_crc_table[-1])]
        for _ in range(max(longest + 1, 2 * known) - known):
            grown.append(_crc32c.crc32c(b"\0", grown[-1]))
        _zero_crc_table = np.concatenate([_zero_crc_table, np.array(grown[1:], dtype=np.uint32)])
    return _zero_crc_table


def unaligned(buf: bytes | np.ndarray, dtype: str) -> np.ndarray:
    """Element ``i`` = the ``dtype`` value whose bytes start at byte ``i`` of ``buf``, sharing its
    memory (writable when ``buf`` is): reading one field of every record is then one gather.

    >>> unaligned(b"\\x01\\x00\\x02\\x00", "<u2").tolist()
    [1, 512, 2]
    """
    width = np.dtype(dtype).itemsize
    return np.ndarray(shape=(max(len(buf) - width + 1, 0),), dtype=dtype, buffer=buf, offset=0, strides=(1,))
