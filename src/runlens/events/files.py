"""One event file -> its scalar rows, from the start or resumed where an earlier read stopped."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runlens.events.decode import Rows, TagTable, decode_block
from runlens.events.records import Block, Problem, ReadState, read_blocks
from runlens.events.sources import open_binary

BATCH_BYTES = 1 << 19  # records of small files are decoded together until this many bytes


@dataclass
class FileRows:
    """What one event file held: its rows block by block (tag codes into ``tags``), the first
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
        """This file's rows followed by ``more``, read from where this read stopped."""
        plugins = dict(self.plugins)
        for code, plugin in more.plugins.items():
            plugins.setdefault(code, plugin)
        first = self.first_wall_time if self.first_wall_time is not None else more.first_wall_time
        return FileRows(more.tags, self.parts + more.parts, plugins, more.state, first)


@dataclass(frozen=True)
class Resume:
    """Where to pick up reading a file that grew: everything before ``offset`` was read into rows
    whose tag codes index ``tags``."""

    offset: int
    ordinal: int
    checksum: int
    tags: list[str] = field(default_factory=list)
    problems: tuple[Problem, ...] = ()

    @classmethod
    def after(cls, rows: FileRows) -> Resume:
        # A "truncated" tail is re-read: the writer may have finished that record since.
        kept = tuple(p for p in rows.problems if p.kind != "truncated")
        return cls(rows.state.offset, rows.state.ordinal, rows.state.checksum, list(rows.tags), kept)


def read_event_file(
    path: str, *, resume: Resume | None = None, checksum: bool = False, storage_options: dict[str, Any] | None = None
) -> FileRows:
    """Decode one event file (from ``resume.offset`` when given); damage becomes problems, never an
    exception. With ``checksum`` the CRC-32C of everything framed is kept in the state."""
    return read_event_files([(path, resume)], checksum=checksum, storage_options=storage_options)[0]


def read_event_files(
    tasks: list[tuple[str, Resume | None]], *, checksum: bool = False, storage_options: dict[str, Any] | None = None
) -> list[FileRows]:
    """Decode several event files, each from its ``Resume`` point (or the start). The records of
    small files are decoded together, so a sweep of thousands of tiny files costs little more per
    record than one big file."""
    files = [_OneFile(path, resume, checksum) for path, resume in tasks]
    batch = _Batch(files)
    for number, file in enumerate(files):
        try:
            with open_binary(file.state.path, storage_options) as stream:
                if file.state.offset:
                    stream.seek(file.state.offset)
                for block in read_blocks(stream, file.state):
                    if block.ordinals[0] == 0:
                        file.first_wall_time = _wall_time_of(block.payload(0))
                    batch.add(block, number)
        except OSError as exc:
            message = f"{file.state.path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); skipped"
            file.state.problems.append(Problem(file.state.path, "unreadable", None, message))
    batch.flush()
    return [file.rows() for file in files]


class _OneFile:
    """One file's reading in progress: its tag table (codes consistent with the rows of an earlier
    read it resumes), rows, plugins and state."""

    def __init__(self, path: str, resume: Resume | None, checksum: bool) -> None:
        self.tags = TagTable()
        self.state = ReadState(path=str(path), track_checksum=checksum)
        if resume is not None:
            for name in resume.tags:
                self.tags.code(name)
            self.state.offset, self.state.ordinal, self.state.checksum = resume.offset, resume.ordinal, resume.checksum
            self.state.problems.extend(resume.problems)
        self.parts: list[Rows] = []
        self.plugins: dict[int, str] = {}
        self.first_wall_time: float | None = None
        self.refused = 0

    def rows(self) -> FileRows:
        if self.refused:
            path = self.state.path
            message = (
                f"{path}: {self.refused} record(s) with valid CRCs are not Events protobuf can parse "
                "(e.g. a tag that is not UTF-8); skipped"
            )
            self.state.problems.append(Problem(path, "undecodable", None, message))
        return FileRows(self.tags.names, self.parts, self.plugins, self.state, self.first_wall_time)


class _Batch:
    """Blocks waiting to be decoded together (``BATCH_BYTES`` at a time), then handed back to the
    files they came from with each file's own tag codes."""

    def __init__(self, files: list[_OneFile]) -> None:
        self.files = files
        self.tags = TagTable()
        self.blocks: list[Block] = []
        self.sources: list[int] = []
        self.size = 0

    def add(self, block: Block, source: int) -> None:
        self.blocks.append(block)
        self.sources.append(source)
        self.size += len(block.buffer)
        if self.size >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.blocks:
            return
        joined = Block.join(self.blocks, self.sources)
        decoded = decode_block(joined, self.tags)
        bounds = np.flatnonzero(np.diff(joined.sources)) + 1
        firsts = np.concatenate([[0], bounds])
        lasts = np.concatenate([bounds, [len(joined)]])
        row_from = np.searchsorted(decoded.record, firsts)
        row_to = np.searchsorted(decoded.record, lasts)
        marks: dict[int, list[tuple[int, int, str]]] = {}
        for source, record, code, plugin in decoded.plugin_marks:
            marks.setdefault(source, []).append((record, code, plugin))
        rows = decoded.rows
        for record in decoded.refused.tolist():
            self.files[int(joined.sources[record])].refused += 1
        for first, lo, hi in zip(firsts.tolist(), row_from.tolist(), row_to.tolist()):
            file = self.files[int(joined.sources[first])]
            lookup = np.array([file.tags.code(name) for name in self.tags.names])
            lookup = lookup.astype(np.int16 if len(file.tags.names) < 2**15 else np.int32)
            if hi > lo:
                part = rows.take(slice(lo, hi))
                part.tag = lookup[part.tag]
                file.parts.append(part)
            for _, code, plugin in sorted(marks.get(int(joined.sources[first]), [])):
                file.plugins.setdefault(int(lookup[code]), plugin)  # the first record naming one wins
        self.blocks, self.sources, self.size = [], [], 0


def _wall_time_of(payload: memoryview) -> float | None:
    """An Event's wall_time when it is its first field (as every writer puts it)."""
    if len(payload) >= 9 and payload[0] == 0x09:
        return float(struct.unpack_from("<d", payload, 1)[0])
    return None
