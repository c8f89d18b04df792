"""Many small files framed as one stream: the sweep's fast path (thousands of files of a few KiB).

Files that end on a record boundary chain into one valid stream, so their records are framed and
CRC-checked together, and a file as long as one already followed is guessed to have its records
at the same places -- so most files of a sweep cost no per-record Python at all. A file that does
not fit (a truncated tail, damage) sends the whole batch back to
:func:`runlens.events.records.read_blocks`, file by file.
"""

from __future__ import annotations

import crc32c as _crc32c
import numpy as np

from runlens.events.records import Block, ReadState, follow_lengths, payload_lengths
from runlens.events.tfrecord import FOOTER, HEADER, all_crcs_hold, unaligned


def frame_whole_files(contents: list[bytes], states: list[ReadState]) -> Block | None:
    """Frame several files at once, each read from its ``state.offset`` to its end (whole small
    files, or what a growing file appended): one block whose ``sources`` number the files.

    Files that end on a record boundary chain into one valid stream, so their records are framed
    and CRC-checked together, with no per-file cost. Returns None, changing nothing, when some
    file does not (a truncated tail, damage): those then go through :func:`~runlens.events.records.read_blocks` each.
    """
    buffer = b"".join(contents)
    sizes = [len(content) for content in contents]
    file_starts = np.cumsum(sizes) - sizes
    heads = _chain_of_files(buffer, file_starts.tolist(), sizes)
    if heads is None:
        return None
    lens = payload_lengths(heads, len(buffer))
    if not all_crcs_hold(buffer, heads, lens):
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
                found, end, _ = follow_lengths(view[start : start + size])
                if end != size or not len(found):
                    return None
                known[size] = found
            heads.append(found + start)
        chain = np.concatenate(heads)
        lengths = np.minimum(unaligned(buffer, "<u8")[chain], len(buffer)).astype(np.int64)
        if (chain + lengths + (HEADER + FOOTER) == np.append(chain[1:], len(buffer))).all():
            return chain
    return None
