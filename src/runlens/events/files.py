"""Event files -> their scalar rows, from the start or resumed where an earlier read stopped."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from runlens.events.decode import decode_block
from runlens.events.problems import Problem, ProblemKind
from runlens.events.records import Block, ReadState, read_blocks
from runlens.events.rows import Rows, TagTable
from runlens.events.sources import open_binary, open_problem
from runlens.events.whole_files import frame_whole_files

BATCH_BYTES = 1 << 19  # records of small files are decoded together until this many bytes
WHOLE_FILE_BYTES = 1 << 18  # files (or appended tails) smaller than this are framed together too


@dataclass
class FileRows:
    """What one event file held: its rows part by part (tag codes into ``tags``), the first
    plugin named for each tag, its problems, and the :class:`ReadState` to resume from when the
    file grows (a run still training)."""

    tags: list[str]
    parts: list[Rows]
    plugins: dict[int, str]
    state: ReadState
    first_wall_time: float | None = None  # of the file's first record: when the writer opened it

    @property
    def problems(self) -> list[Problem]:
        return self.state.problems

    @property
    def rows(self) -> int:
        return sum(len(part.tag) for part in self.parts)

    def extended(self, more: FileRows) -> FileRows:
        """This file's rows followed by ``more``, read from where this read stopped (``more``'s
        tag codes are recoded into this file's table)."""
        table = TagTable()
        for name in self.tags:
            table.code(name)
        recode = np.array([table.code(name) for name in more.tags], dtype=np.int32)
        parts = [
            replace(part, tag=recode[part.tag]) for part in more.parts
        ]  # the other columns shared, not copied
        plugins = dict(self.plugins)
        for code, plugin in more.plugins.items():
            plugins.setdefault(int(recode[code]), plugin)
        first = self.first_wall_time if self.first_wall_time is not None else more.first_wall_time
        return FileRows(table.names, self.parts + parts, plugins, more.state, first)


@dataclass
class ChunkRows:
    """The rows of one task's files, read together: file after file (``counts`` rows each) across
    ``parts`` (one per decoded batch), tag codes into one shared ``tags``; per file its plugins
    (first plugin named per tag code), :class:`ReadState` and first wall time.

    A few arrays per chunk instead of per file keep a sweep of thousands of small files cheap to
    send back from a worker and to assemble. Parts are not concatenated (only reordered, when small
    files framed late must go back before a bigger one), so a big file costs no second copy on its
    way into the frame.
    """

    tags: list[str]
    parts: list[Rows]
    counts: np.ndarray  # int64, rows of each file
    plugins: list[dict[int, str]]
    states: list[ReadState]
    first_wall_times: list[float | None]

    @property
    def offsets(self) -> np.ndarray:
        """Where each file's rows start, and where the last one ends."""
        return np.concatenate([[0], np.cumsum(self.counts)])

    def segments(self, lo: int, hi: int) -> list[tuple[int, slice]]:
        """Rows ``lo`` to ``hi`` (exclusive) as (part, slice of that part) pairs, in order."""
        ends = np.cumsum([len(part.tag) for part in self.parts])
        found = []
        for k in range(int(np.searchsorted(ends, lo, side="right")), len(self.parts)):
            start = int(ends[k]) - len(self.parts[k].tag)
            if start >= hi:
                break
            found.append((k, slice(max(lo, start) - start, min(hi, int(ends[k])) - start)))
        return found

    def column(self, name: str, lo: int, hi: int) -> np.ndarray:
        """One column of rows ``lo`` to ``hi`` as one array."""
        arrays = [getattr(self.parts[k], name)[span] for k, span in self.segments(lo, hi)]
        return np.concatenate(arrays) if arrays else getattr(_EMPTY, name)

    def file(self, i: int) -> FileRows:
        """File ``i``'s rows on their own (sharing this chunk's tag table)."""
        lo, hi = self.offsets[i : i + 2].tolist()
        parts = [self.parts[k].take(span) for k, span in self.segments(lo, hi)]
        return FileRows(self.tags, parts, self.plugins[i], self.states[i], self.first_wall_times[i])

    @classmethod
    def of(cls, rows: FileRows) -> ChunkRows:
        """A chunk holding one file's rows."""
        return cls(
            rows.tags,
            list(rows.parts),
            np.array([rows.rows], dtype=np.int64),
            [rows.plugins],
            [rows.state],
            [rows.first_wall_time],
        )


_EMPTY = Rows.concat([])


def read_event_file(
    start: str | ReadState, *, checksum: bool = False, storage_options: dict[str, Any] | None = None
) -> FileRows:
    """Decode one event file: a path, read from its start (with ``checksum``, the CRC-32C of
    everything framed is kept in the state), or the state to go on from (``rows.state.resumable()``
    of an earlier read). Damage becomes problems, never an exception."""
    state = ReadState(str(start), track_checksum=checksum) if isinstance(start, str) else start
    return read_event_files([state], storage_options=storage_options).file(0)


def read_event_files(states: list[ReadState], *, storage_options: dict[str, Any] | None = None) -> ChunkRows:
    """Decode several event files, each from where its state stands (``ReadState(path)``: the
    start), advancing the states. Small files are framed, CRC-checked and decoded together, so a
    sweep of thousands of tiny files costs little more per record than one big file."""
    batch = _Batch(states)
    for number, state in enumerate(states):
        try:
            with open_binary(state.path, storage_options) as stream:
                if state.offset:
                    stream.seek(state.offset)
                head = stream.read(WHOLE_FILE_BYTES)
                if 0 < len(head) < WHOLE_FILE_BYTES:
                    batch.add_whole(number, head)  # the whole file (or what it appended): framed with others
                    continue
                for block in read_blocks(stream, state, head=head):
                    batch.add(block, number)
        except OSError as exc:
            state.problems.append(open_problem(state.path, exc))
    return batch.finish()


class _Batch:
    """Blocks of one task's files waiting to be decoded together (``BATCH_BYTES`` at a time, each
    batch giving one part); at the end, every row decoded, put file after file."""

    def __init__(self, states: list[ReadState]) -> None:
        self.states = states
        self.tags = TagTable()
        self.blocks: list[Block] = []
        self.wholes: list[tuple[int, bytes]] = []
        self.size = 0
        self.parts: list[Rows] = []
        self.sources: list[np.ndarray] = []  # the file of each row of each part
        self.plugins: list[dict[int, str]] = [{} for _ in states]
        self.first_wall_times: list[float | None] = [None] * len(states)
        self.refused = [0] * len(states)

    def add(self, block: Block, source: int) -> None:
        self._keep(block, source)
        self._grow(len(block.buffer))

    def _keep(self, block: Block, source: int) -> None:
        block.sources = np.full(len(block), source, dtype=np.int32)
        self.blocks.append(block)

    def add_whole(self, source: int, content: bytes) -> None:
        """Everything from the file's ``state.offset`` to its end, framed at the next flush."""
        self.wholes.append((source, content))
        self._grow(len(content))

    def _grow(self, size: int) -> None:
        self.size += size
        if self.size >= BATCH_BYTES:
            self.flush()

    def _frame_wholes(self) -> None:
        numbers = [number for number, _ in self.wholes]
        contents = [content for _, content in self.wholes]
        block = frame_whole_files(contents, [self.states[n] for n in numbers])
        if block is not None:
            block.sources = np.array(numbers, dtype=np.int32)[block.sources]
            self.blocks.append(block)
        else:  # some file does not end on a record boundary or is damaged: each on its own
            for number, content in self.wholes:
                for part in read_blocks(io.BytesIO(content), self.states[number]):
                    self._keep(part, number)
        self.wholes = []

    def flush(self) -> None:
        if self.wholes:
            self._frame_wholes()
        if not self.blocks:
            return
        joined = Block.join(self.blocks)
        self.blocks, self.size = [], 0
        for record in np.flatnonzero(joined.ordinals == 0).tolist():
            self.first_wall_times[int(joined.sources[record])] = _wall_time_of(joined.payload(record))
        decoded = decode_block(joined, self.tags)
        for source, _, code, plugin in sorted(decoded.plugin_marks, key=lambda mark: mark[1]):
            self.plugins[source].setdefault(code, plugin)  # the first record naming one wins
        for record in decoded.refused.tolist():
            self.refused[int(joined.sources[record])] += 1
        if len(self.tags.names) < 2**15:
            decoded.rows.tag = decoded.rows.tag.astype(
                np.int16
            )  # held until the frame is built: keep it small
        self.parts.append(decoded.rows)
        self.sources.append(joined.sources[decoded.record])

    def finish(self) -> ChunkRows:
        self.flush()
        parts = self.parts
        sources = np.concatenate(self.sources) if self.sources else np.zeros(0, np.int32)
        if len(sources) and (np.diff(sources) < 0).any():  # whole files were framed after bigger ones
            parts = [Rows.concat(parts).take(np.argsort(sources, kind="stable"))]
        counts = np.bincount(sources, minlength=len(self.states)).astype(np.int64)
        for state, refused in zip(self.states, self.refused):
            if refused:
                message = (
                    f"{state.path}: {refused} record(s) with valid CRCs are not Events protobuf can parse "
                    "(e.g. a tag that is not UTF-8); skipped"
                )
                state.problems.append(Problem(state.path, ProblemKind.UNDECODABLE, None, message))
        return ChunkRows(self.tags.names, parts, counts, self.plugins, self.states, self.first_wall_times)


def _wall_time_of(payload: memoryview) -> float | None:
    """An Event's wall_time when it is its first field (as every writer puts it)."""
    if len(payload) >= 9 and payload[0] == 0x09:
        return float(struct.unpack_from("<d", payload, 1)[0])
    return None
