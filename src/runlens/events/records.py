"""Reading TFRecord files (event files) in blocks of whole, verified records, around damage.

An event file is a sequence of records in the format of :mod:`runlens.events.tfrecord`.
:func:`read_blocks` streams a file in blocks of whole, verified records and reads around damage
instead of failing:

- a truncated last record (a crash mid-write) ends the file: every complete record is kept;
- a payload whose CRC fails while its length frame is intact: that record is skipped and reading
  goes on with the next one;
- a length whose own CRC fails: nothing after it can be framed, so the file stops there;
- empty and unreadable files yield nothing.

Each of these is reported as a :class:`~runlens.events.problems.Problem`; nothing here raises on
damaged bytes. (Many small files are framed at once by :mod:`runlens.events.whole_files`.)

>>> import io
>>> from runlens.events.tfrecord import frame_record
>>> payload = b"hello"
>>> blob = frame_record(payload) + frame_record(b"world")
>>> [bytes(b.payload(i)) for b in read_blocks(io.BytesIO(blob), ReadState("x")) for i in range(len(b))]
[b'hello', b'world']
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import BinaryIO

import crc32c as _crc32c
import numpy as np

from runlens.events.problems import Problem, ProblemKind
from runlens.events.tfrecord import (
    FOOTER,
    HEADER,
    MASK_DELTA,
    U32,
    U64,
    all_crcs_hold,
    masked_crc,
    masked_crcs_of_lengths,
    unaligned,
)

# Bytes read at a time (small keeps the per-block arrays in cache); grows to hold one larger record.
DEFAULT_BLOCK = 1 << 19


@dataclass
class Block:
    """Whole, CRC-checked records inside ``buffer``: payload ``i`` is
    ``buffer[starts[i] : starts[i] + lengths[i]]``; ``ordinals`` number records within the file."""

    buffer: bytes
    starts: np.ndarray  # int64 payload offsets into buffer
    lengths: np.ndarray  # int64 payload lengths
    ordinals: np.ndarray  # int64 position of each record in its file (skipped records keep theirs)
    sources: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))  # file of each record

    def __post_init__(self) -> None:
        if len(self.sources) != len(self.starts):
            self.sources = np.zeros(len(self.starts), dtype=np.int32)

    @classmethod
    def join(cls, blocks: list[Block]) -> Block:
        """One block holding the records of ``blocks`` (each record keeping its source), so many
        small files are decoded in one vectorised pass."""
        if len(blocks) == 1:
            return blocks[0]
        shifts = np.cumsum([0] + [len(b.buffer) for b in blocks[:-1]])
        return cls(
            b"".join(b.buffer for b in blocks),
            np.concatenate([b.starts + shift for b, shift in zip(blocks, shifts)]),
            np.concatenate([b.lengths for b in blocks]),
            np.concatenate([b.ordinals for b in blocks]),
            np.concatenate([b.sources for b in blocks]),
        )

    def __len__(self) -> int:
        return len(self.starts)

    def payload(self, i: int) -> memoryview:
        start = int(self.starts[i])
        return memoryview(self.buffer)[start : start + int(self.lengths[i])]


@dataclass
class ReadState:
    """Where reading one file stands; :func:`read_blocks` advances it.

    ``offset`` is where the next unread record starts (everything before it is framed),
    ``ordinal`` how many intact records came before it, ``stopped`` whether a damaged length ended
    the file for good, ``checksum`` the CRC-32C of the bytes before ``offset`` (kept only with
    ``track_checksum``; the scalar cache uses it to prove that a file only grew). Starting from a
    saved state on a stream positioned at its ``offset`` resumes reading.
    """

    path: str
    problems: list[Problem] = field(default_factory=list)
    offset: int = 0
    ordinal: int = 0
    stopped: bool = False
    track_checksum: bool = False
    checksum: int = 0

    def __reduce__(self) -> tuple:
        # Pickled by position, not as a dict: a sweep's worker processes send back 10,000 states.
        return (ReadState, tuple(getattr(self, f.name) for f in fields(self)))

    def resumable(self) -> ReadState:
        """A copy to go on reading from once the file has grown: the problems found so far, but
        a truncated tail, which is read again (the writer may have finished that record since).

        >>> state = ReadState("f", [Problem("f", "truncated", 30, "cut")], offset=30, ordinal=2)
        >>> state.resumable()
        ReadState(path='f', problems=[], offset=30, ordinal=2, stopped=False, track_checksum=False, checksum=0)
        """
        kept = [p for p in self.problems if p.kind is not ProblemKind.TRUNCATED]
        return ReadState(
            self.path, kept, self.offset, self.ordinal, self.stopped, self.track_checksum, self.checksum
        )


def read_blocks(
    stream: BinaryIO, state: ReadState, *, block_size: int = DEFAULT_BLOCK, head: bytes = b""
) -> Iterator[Block]:
    """Yield blocks of verified records from ``stream`` (positioned at ``state.offset``, or just
    after ``head``, bytes already read from there), appending any damage to ``state.problems``.

    Memory stays around ``block_size`` whatever the file size (a block grows only to hold a single
    record larger than it).
    """
    pending = head
    eof = False
    start = state.offset
    tail = 0  # bytes of the last, incomplete record (more than ``pending`` when not read at all)
    while not state.stopped:
        data = stream.read(block_size)
        eof = len(data) < block_size
        buffer = pending + data if pending else data
        if not buffer:
            break
        block, consumed, need = _frame(buffer, state)
        if len(block):
            yield block
        if state.track_checksum:
            state.checksum = _crc32c.crc32c(memoryview(buffer)[:consumed], state.checksum)
        pending = buffer[consumed:]
        state.offset += consumed
        tail = len(pending)
        if eof:
            break
        if need > len(pending) + block_size and not state.stopped:  # one record larger than a block
            pending, tail = _read_record(stream, pending, need)
            eof = len(pending) < need
            if eof:
                break
    if not state.stopped and tail and eof:
        _report_tail(pending, tail, state)
    if start == 0 and state.offset == 0 and not pending and not state.problems:
        state.problems.append(
            Problem(state.path, ProblemKind.EMPTY, None, f"{state.path}: empty file, nothing to read")
        )


_MAX_READ = 1 << 26  # a record larger than a block is read this many bytes at a time, at most


def _read_record(stream: BinaryIO, pending: bytes, need: int) -> tuple[bytes, int]:
    """``pending`` (the start of a record ``need`` bytes long) completed from ``stream``, and how
    many bytes the record has in the file (``need`` when whole).

    A record the file cannot hold (a length past its end: a file cut mid-write, or a damaged length
    whose CRC still holds, up to 2**64 - 1) is not read at all: its length is compared with what is
    left of the stream first. Where that cannot be known (a stream that cannot seek), it is read in
    bounded reads until the stream ends, so memory is bounded by the file, never by the length.
    """
    left = _bytes_left(stream)
    if left is not None and len(pending) + left < need:
        return pending, len(pending) + left
    reads = [pending]
    have = len(pending)
    while have < need:
        more = stream.read(min(need - have, _MAX_READ))
        if not more:
            break
        reads.append(more)
        have += len(more)
    return b"".join(reads), have


def _bytes_left(stream: BinaryIO) -> int | None:
    """Bytes between the stream's position and its end, or None when the stream cannot seek."""
    try:
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return max(end - here, 0)


def _frame(buffer: bytes, cursor: ReadState) -> tuple[Block, int, int]:
    """Frame the whole records at the start of ``buffer``.

    Returns the block, how many bytes of ``buffer`` it consumed, and how many bytes the next
    (incomplete) record needs in all. The length chain is followed in Python (an intact
    buffer's only per-record Python code); every CRC is then checked at once by :func:`all_crcs_hold`, and a
    buffer that fails goes record by record through :func:`_frame_damaged`.
    """
    heads, end, need = follow_lengths(buffer)
    lens = payload_lengths(heads, end)
    tail_ok = need <= HEADER or _length_crc_ok(buffer, end)
    if not len(heads) or not tail_ok or not all_crcs_hold(buffer, heads, lens):
        return _frame_damaged(buffer, cursor, heads, end, need)
    ordinals = np.arange(cursor.ordinal, cursor.ordinal + len(heads), dtype=np.int64)
    cursor.ordinal += len(heads)
    return Block(buffer, heads + HEADER, lens, ordinals), end, need


def follow_lengths(buffer: bytes) -> tuple[np.ndarray, int, int]:
    """Where the records of ``buffer`` start by following their lengths (unchecked), where the last
    whole one ends, and how many bytes the next, incomplete record needs in all."""
    size = len(buffer)
    unpack = U64.unpack_from
    starts: list[int] = []
    add = starts.append
    pos = 0
    need = HEADER
    while True:
        body = pos + HEADER
        if body > size:
            break
        end = body + unpack(buffer, pos)[0] + FOOTER
        if end > size:
            need = end - pos
            break
        add(pos)
        pos = end
    return np.asarray(starts, dtype=np.int64), pos, need


def payload_lengths(heads: np.ndarray, end: int) -> np.ndarray:
    """The payload length of each record starting at ``heads``, the last one ending at ``end``."""
    return np.diff(np.append(heads, end)) - (HEADER + FOOTER)


def _frame_damaged(
    buffer: bytes, cursor: ReadState, heads: np.ndarray, pos: int, need: int
) -> tuple[Block, int, int]:
    """Frame a buffer that fails :func:`all_crcs_hold`, record by record, from the chain
    :func:`follow_lengths` found (``heads``, ending at ``pos``, ``need`` bytes for the next):
    which records to keep and which problems to report (same return as :func:`_frame`). Every
    length CRC is checked at once and the chain cut at the first bad one: the same result as
    checking each before following it."""
    size = len(buffer)
    lens = payload_lengths(heads, pos)
    view, crc = memoryview(buffer), _crc32c.crc32c
    computed = np.array(
        [
            crc(view[start : start + length])
            for start, length in zip((heads + HEADER).tolist(), lens.tolist())
        ],
        dtype=np.uint32,
    )
    if need > HEADER and not _length_crc_ok(buffer, pos):
        # Let the vectorised check below report it as the first bad one (its length is garbage).
        heads, lens, computed = np.append(heads, pos), np.append(lens, 0), np.append(computed, np.uint32(0))
        need = 0
    buf = np.frombuffer(buffer, dtype=np.uint8)
    if len(heads):
        stored = unaligned(buf, "<u4")[heads + 8]
        bad = np.flatnonzero(masked_crcs_of_lengths(buf, heads) != stored)
        if len(bad):
            first = int(bad[0])
            offset = cursor.offset + int(heads[first])
            message = (
                f"{cursor.path}: record length at byte {offset} fails its CRC; "
                f"the bytes from there on were not read"
            )
            if offset == 0:
                message = f"{cursor.path}: not an event file (no valid record frame at its start); skipped"
            cursor.problems.append(Problem(cursor.path, ProblemKind.BAD_LENGTH_CRC, offset, message))
            cursor.stopped = True
            heads, lens, computed = heads[:first], lens[:first], computed[:first]
    consumed = int(heads[-1] + HEADER + lens[-1] + FOOTER) if len(heads) else 0
    if cursor.stopped:
        consumed = size

    ordinals = np.arange(cursor.ordinal, cursor.ordinal + len(heads), dtype=np.int64)
    cursor.ordinal += len(heads)
    payload_starts = heads + HEADER
    masked = ((computed >> 15) | (computed << 17)) + np.uint32(MASK_DELTA)
    keep = masked == unaligned(buf, "<u4")[payload_starts + lens]
    if not keep.all():
        _count_bad_payloads(cursor, int((~keep).sum()), cursor.offset + int(heads[np.argmin(keep)]))
        payload_starts, lens, ordinals = payload_starts[keep], lens[keep], ordinals[keep]
    return Block(buffer, payload_starts, lens, ordinals), consumed, need


def _count_bad_payloads(cursor: ReadState, count: int, offset: int) -> None:
    """Report ``count`` more records skipped for a bad payload CRC: one problem per file, counting
    them all, at the first one's offset."""
    earlier = next((i for i, p in enumerate(cursor.problems) if p.kind is ProblemKind.BAD_PAYLOAD_CRC), None)
    if earlier is not None:
        count += cursor.problems[earlier].count
        offset = cursor.problems[earlier].offset
    problem = Problem(
        cursor.path,
        ProblemKind.BAD_PAYLOAD_CRC,
        offset,
        f"{cursor.path}: {count} record(s) with a bad payload CRC skipped (first at byte {offset}); "
        "reading went on after each",
        count,
    )
    if earlier is None:
        cursor.problems.append(problem)
    else:
        cursor.problems[earlier] = problem


def _length_crc_ok(buffer: bytes, pos: int) -> bool:
    (stored,) = U32.unpack_from(buffer, pos + 8)
    return masked_crc(memoryview(buffer)[pos : pos + 8]) == stored


def _report_tail(pending: bytes, size: int, cursor: ReadState) -> None:
    """Report the ``size`` bytes left after the last whole record (``pending`` holds their start)
    as a truncated tail: a record cut mid-write, or a length past the end of the file."""
    offset = cursor.offset
    claim = ""
    if len(pending) >= HEADER:
        claim = f", its length says {U64.unpack_from(pending)[0] + HEADER + FOOTER} bytes"
    if offset == 0:
        message = f"{cursor.path}: {size} bytes that hold no complete record{claim} (not an event file?)"
    else:
        message = (
            f"{cursor.path}: incomplete last record ({size} bytes from byte {offset}{claim}; "
            "the writer stopped mid-write?), every complete record before it was read"
        )
    cursor.problems.append(Problem(cursor.path, ProblemKind.TRUNCATED, offset, message))
