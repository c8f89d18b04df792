"""One event file -> its scalar rows, from the start or resumed where an earlier read stopped."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from runlens.events.decode import Rows, TagTable, decode_block
from runlens.events.records import Problem, ReadState, read_blocks
from runlens.events.sources import open_binary


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
    tags = TagTable()
    state = ReadState(path=str(path), track_checksum=checksum)
    if resume is not None:
        for name in resume.tags:
            tags.code(name)
        state.offset, state.ordinal, state.checksum = resume.offset, resume.ordinal, resume.checksum
        state.problems.extend(resume.problems)
    parts: list[Rows] = []
    plugins: dict[int, str] = {}
    first_wall_time = None
    try:
        with open_binary(str(path), storage_options) as stream:
            if state.offset:
                stream.seek(state.offset)
            for block in read_blocks(stream, state):
                if block.ordinals[0] == 0:
                    first_wall_time = _wall_time_of(block.payload(0))
                rows = decode_block(block, tags)
                for code, plugin in rows.plugins.items():
                    plugins.setdefault(code, plugin)
                if len(rows.tag):
                    parts.append(rows)
    except OSError as exc:
        message = f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc}); skipped"
        state.problems.append(Problem(str(path), "unreadable", None, message))
    return FileRows(tags.names, parts, plugins, state, first_wall_time)


def _wall_time_of(payload: memoryview) -> float | None:
    """An Event's wall_time when it is its first field (as every writer puts it)."""
    if len(payload) >= 9 and payload[0] == 0x09:
        return float(struct.unpack_from("<d", payload, 1)[0])
    return None
