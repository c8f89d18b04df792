"""TFRecord framing of event files: the only byte-level code in runlens.

An event file is a sequence of records::

    uint64 length | uint32 masked_crc32c(length bytes) | payload | uint32 masked_crc32c(payload)

all little-endian, with ``masked(crc) = ((crc >> 15 | crc << 17) + 0xA282EAD8) mod 2**32`` over
CRC-32C (Castagnoli). :func:`read_blocks` streams a file in blocks of whole, verified records and
reads around damage instead of failing:

- a truncated last record (a crash mid-write) ends the file: every complete record is kept;
- a payload whose CRC fails while its length frame is intact: that record is skipped and reading
  goes on with the next one;
- a length whose own CRC fails: nothing after it can be framed, so the file stops there;
- empty and unreadable files yield nothing.

Each of these is reported as a :class:`Problem`; nothing here raises on damaged bytes.

>>> import io
>>> payload = b"hello"
>>> blob = frame_record(payload) + frame_record(b"world")
>>> [bytes(b.payload(i)) for b in read_blocks(io.BytesIO(blob), ReadState("x")) for i in range(len(b))]
[b'hello', b'world']
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import BinaryIO

import crc32c as _crc32c
import numpy as np

from runlens.textsafe import shown

HEADER = 12  # uint64 length + uint32 crc of the length
FOOTER = 4  # uint32 crc of the payload
DEFAULT_BLOCK = (
    1 << 19
)  # bytes read at a time (small keeps the per-block arrays in cache); grows to hold one larger record

_MASK_DELTA = 0xA282EAD8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def masked_crc(data: bytes | memoryview) -> int:
    """The masked CRC-32C TFRecord stores for ``data``.

    >>> hex(masked_crc(b""))
    '0xa282ead8'
    """
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame_record(payload: bytes) -> bytes:
    """One TFRecord holding ``payload`` (used by tests and tools that write event files)."""
    length = _U64.pack(len(payload))
    return length + _U32.pack(masked_crc(length)) + payload + _U32.pack(masked_crc(payload))


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


def _masked_crc_of_headers(buf: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Masked CRC-32C of the 8 length bytes at each of ``starts``, for all records at once."""
    crc = np.full(len(starts), _BASE, dtype=np.uint32)
    for k in range(8):
        crc ^= _TABLES[k][buf[starts + k]]
    return ((crc >> 15) | (crc << 17)) + np.uint32(_MASK_DELTA)


@dataclass(frozen=True)
class Problem:
    """Something in a file that could not be read; everything intact around it was kept.

    ``path`` is the file as the OS names it (data); ``message`` is for people: one printable line,
    the path in it shown escaped (:func:`runlens.textsafe.shown`), whoever builds the problem.
    """

    path: str
    kind: str  # truncated | bad-payload-crc | bad-length-crc | empty | unreadable | not-a-file | undecodable
    offset: int | None
    message: str
    count: int = 1  # records it concerns, where counted (bad-payload-crc)

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", shown(self.message))

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "kind": self.kind, "offset": self.offset, "message": self.message}


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
        chunk = stream.read(block_size)
        eof = len(chunk) < block_size
        buffer = pending + chunk if pending else chunk
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
            Problem(state.path, "empty", None, f"{state.path}: empty file, nothing to read")
        )


_MAX_READ = 1 << 26  # a record larger than a block is read in pieces of at most this many bytes


def _read_record(stream: BinaryIO, pending: bytes, need: int) -> tuple[bytes, int]:
    """``pending`` (the start of a record ``need`` bytes long) completed from ``stream``, and how
    many bytes the record has in the file (``need`` when whole).

    A record the file cannot hold (a length past its end: a file cut mid-write, or a damaged length
    whose CRC still holds, up to 2**64 - 1) is not read at all: its length is compared with what is
    left of the stream first. Where that cannot be known (a stream that cannot seek), it is read in
    bounded pieces until the stream ends, so memory is bounded by the file, never by the length.
    """
    left = _bytes_left(stream)
    if left is not None and len(pending) + left < need:
        return pending, len(pending) + left
    pieces = [pending]
    have = len(pending)
    while have < need:
        more = stream.read(min(need - have, _MAX_READ))
        if not more:
            break
        pieces.append(more)
        have += len(more)
    return b"".join(pieces), have


def _bytes_left(stream: BinaryIO) -> int | None:
    """Bytes between the stream's position and its end, or None when the stream cannot seek."""
    try:
        here = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(here)
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    return max(end - here, 0)


def frame_whole_files(contents: list[bytes], states: list[ReadState]) -> Block | None:
    """Frame several files at once, each read from its ``state.offset`` to its end (whole small
    files, or what a growing file appended): one block whose ``sources`` number the files.

    Files that end on a record boundary chain into one valid stream, so their records are framed
    and CRC-checked together, with no per-file cost. Returns None, changing nothing, when some
    file does not (a truncated tail, damage): those then go through :func:`read_blocks` each.
    """
    buffer = b"".join(contents)
    sizes = [len(content) for content in contents]
    file_starts = np.cumsum(sizes) - sizes
    heads = _chain_of_files(buffer, file_starts.tolist(), sizes)
    if heads is None:
        return None
    lens = _payload_lengths(heads, len(buffer))
    if not _all_crcs_hold(buffer, heads, lens):
        return None
    firsts = np.searchsorted(heads, file_starts)
    counts = np.diff(np.append(firsts, len(heads)))
    bases = np.array([state.ordinal for state in states], dtype=np.int64)
    ordinals = np.arange(len(heads), dtype=np.int64) + np.repeat(bases - firsts, counts)
    for state, content, count in zip(states, contents, counts.tolist()):
        state.offset += len(content)
        state.ordinal += count
        if state.track_checksum:
            state.checksum = _crc32c.crc32c(content, state.checksum)
    sources = np.repeat(np.arange(len(contents), dtype=np.int32), counts)
    return Block(buffer, heads + HEADER, lens, ordinals, sources)


def _chain_of_files(buffer: bytes, file_starts: list[int], sizes: list[int]) -> np.ndarray | None:
    """Where the records of files concatenated in ``buffer`` start, or None unless each file's
    records end exactly at its end.

    Files of a sweep repeat one another: a file as long as one already followed is guessed to have
    its records where that one had them, and every guess is then checked at once (each record's
    length must lead to the next record, the last to the buffer's end) -- so most files cost no
    per-record Python. Should a guess be wrong, every file is followed on its own.
    """
    view = memoryview(buffer)
    for guess in (True, False):
        known: dict[int, np.ndarray] = {}  # file size -> where the records of such a file start
        heads = []
        for start, size in zip(file_starts, sizes):
            found = known.get(size) if guess else None
            if found is None:
                found, end, _ = _follow_lengths(view[start : start + size])
                if end != size or not len(found):
                    return None
                known[size] = found
            heads.append(found + start)
        chain = np.concatenate(heads)
        lengths = np.minimum(unaligned(buffer, "<u8")[chain], len(buffer)).astype(np.int64)
        if (chain + lengths + (HEADER + FOOTER) == np.append(chain[1:], len(buffer))).all():
            return chain
    return None


def _frame(buffer: bytes, cursor: ReadState) -> tuple[Block, int, int]:
    """Frame the whole records at the start of ``buffer``.

    Returns the block, how many bytes of ``buffer`` it consumed, and how many bytes the next
    (incomplete) record needs in all. The length chain is followed in Python (an intact
    buffer's only per-record Python code); every CRC is then checked at once by :func:`_all_crcs_hold`, and a
    buffer that fails goes record by record through :func:`_frame_damaged`.
    """
    heads, end, need = _follow_lengths(buffer)
    lens = _payload_lengths(heads, end)
    tail_ok = need <= HEADER or _length_crc_ok(buffer, end)
    if not len(heads) or not tail_ok or not _all_crcs_hold(buffer, heads, lens):
        return _frame_damaged(buffer, cursor, heads, end, need)
    ordinals = np.arange(cursor.ordinal, cursor.ordinal + len(heads), dtype=np.int64)
    cursor.ordinal += len(heads)
    return Block(buffer, heads + HEADER, lens, ordinals), end, need


def _follow_lengths(buffer: bytes) -> tuple[np.ndarray, int, int]:
    """Where the records of ``buffer`` start by following their lengths (unchecked), where the last
    whole one ends, and how many bytes the next, incomplete record needs in all."""
    size = len(buffer)
    unpack = _U64.unpack_from
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


def _payload_lengths(heads: np.ndarray, end: int) -> np.ndarray:
    """The payload length of each record starting at ``heads``, the last one ending at ``end``."""
    return np.diff(np.append(heads, end)) - (HEADER + FOOTER)


def _all_crcs_hold(buffer: bytes, heads: np.ndarray, lens: np.ndarray) -> bool:
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
    unmasked = stored[at] - np.uint32(_MASK_DELTA)
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


def _frame_damaged(
    buffer: bytes, cursor: ReadState, heads: np.ndarray, pos: int, need: int
) -> tuple[Block, int, int]:
    """Frame a buffer that fails :func:`_all_crcs_hold`, record by record, from the chain
    :func:`_follow_lengths` found (``heads``, ending at ``pos``, ``need`` bytes for the next):
    which records to keep and which problems to report (same return as :func:`_frame`). Every
    length CRC is checked at once and the chain cut at the first bad one: the same result as
    checking each before following it."""
    size = len(buffer)
    lens = _payload_lengths(heads, pos)
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
        bad = np.flatnonzero(_masked_crc_of_headers(buf, heads) != stored)
        if len(bad):
            first = int(bad[0])
            offset = cursor.offset + int(heads[first])
            message = (
                f"{cursor.path}: record length at byte {offset} fails its CRC; "
                f"the bytes from there on were not read"
            )
            if offset == 0:
                message = f"{cursor.path}: not an event file (no valid record frame at its start); skipped"
            cursor.problems.append(Problem(cursor.path, "bad-length-crc", offset, message))
            cursor.stopped = True
            heads, lens, computed = heads[:first], lens[:first], computed[:first]
    consumed = int(heads[-1] + HEADER + lens[-1] + FOOTER) if len(heads) else 0
    if cursor.stopped:
        consumed = size

    ordinals = np.arange(cursor.ordinal, cursor.ordinal + len(heads), dtype=np.int64)
    cursor.ordinal += len(heads)
    payload_starts = heads + HEADER
    masked = ((computed >> 15) | (computed << 17)) + np.uint32(_MASK_DELTA)
    keep = masked == unaligned(buf, "<u4")[payload_starts + lens]
    if not keep.all():
        _count_bad_payloads(cursor, int((~keep).sum()), cursor.offset + int(heads[np.argmin(keep)]))
        payload_starts, lens, ordinals = payload_starts[keep], lens[keep], ordinals[keep]
    return Block(buffer, payload_starts, lens, ordinals), consumed, need


def _count_bad_payloads(cursor: ReadState, count: int, offset: int) -> None:
    """Report ``count`` more records skipped for a bad payload CRC: one problem per file, counting
    them all, at the first one's offset."""
    earlier = next((i for i, p in enumerate(cursor.problems) if p.kind == "bad-payload-crc"), None)
    if earlier is not None:
        count += cursor.problems[earlier].count
        offset = cursor.problems[earlier].offset
    problem = Problem(
        cursor.path,
        "bad-payload-crc",
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
    (stored,) = _U32.unpack_from(buffer, pos + 8)
    return masked_crc(memoryview(buffer)[pos : pos + 8]) == stored


def _report_tail(pending: bytes, size: int, cursor: ReadState) -> None:
    """Report the ``size`` bytes left after the last whole record (``pending`` holds their start)
    as a truncated tail: a record cut mid-write, or a length past the end of the file."""
    offset = cursor.offset
    claim = ""
    if len(pending) >= HEADER:
        claim = f", its length says {_U64.unpack_from(pending)[0] + HEADER + FOOTER} bytes"
    if offset == 0:
        message = f"{cursor.path}: {size} bytes that hold no complete record{claim} (not an event file?)"
    else:
        message = (
            f"{cursor.path}: incomplete last record ({size} bytes from byte {offset}{claim}; "
            "the writer stopped mid-write?), every complete record before it was read"
        )
    cursor.problems.append(Problem(cursor.path, "truncated", offset, message))
