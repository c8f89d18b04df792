"""A cache of decoded event files, so re-reading a logdir costs a fraction of the first read and a
run still training only has its new bytes parsed.

One pack per logdir (keyed by its absolute path or URL) under ``<folder>/scalars/``, holding every
file's decoded rows in the same few arrays per chunk the reader produces (a sweep of thousands of
files is one file to load, not thousands), written atomically after each read that changed
anything; deleting the folder, or any pack, is always safe. The default folder is
``$XDG_CACHE_HOME/runlens`` (``~/.cache/runlens``). A file's entry is used only when it provably
describes the file as it is now:

- local file, same device, inode, size, mtime and ctime (ctime cannot be set back by a user) and the
  entry written more than :data:`RACY_SECONDS` after that mtime: used as is;
- local file that may have changed (grew, or touched within the racy window), same device and inode,
  at least as long as what was read, and the CRC-32C of the bytes read so far unchanged: only the
  bytes after them are parsed (a truncated last record is re-read);
- remote file (fsspec): same size and ETag/mtime: used as is;
- anything else (replaced, truncated, rewritten, other remote version): read again from the start.

A pack keeps a chunk as long as one of its files' entries is current, so rows of files that
changed since may stay in it until the rest of that chunk changes too (at most one stale copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import crc32c as _crc32c

from runlens.events.files import ChunkRows, FileRows, Resume
from runlens.events.sources import EventFile, is_url

RACY_SECONDS = 2.0  # a file modified this close to when its entry was written is re-checked
_FORMAT = 2  # bump when the pack's pickled shape changes: older packs are then ignored


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/runlens`` or ``~/.cache/runlens``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "runlens"


@dataclass(frozen=True)
class Lookup:
    """What the cache knows of a file: its rows as they are (``chunk``, ``position``), or
    ``resume`` to read the rest after the rows ``previous``."""

    chunk: ChunkRows | None = None
    position: int = 0
    resume: Resume | None = None
    previous: FileRows | None = None


class _Entry(NamedTuple):  # a tuple: a pack of 10,000 entries loads in a third of a dataclass's time
    signature: tuple
    written: float  # time.time() when the entry was written
    chunk: int  # index into the pack's chunks
    position: int


class ScalarCache:
    """Decoded event files on disk (see the module docstring).

    >>> cache = ScalarCache("/tmp/runlens-cache")            # doctest: +SKIP
    >>> runlens.read_scalars("logs", cache=cache.folder)     # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()

    def open(self, logdir: str | os.PathLike[str]) -> LogdirCache:
        """What the cache holds for ``logdir`` (nothing, if its pack is missing or unreadable)."""
        identity = str(logdir) if is_url(logdir) else os.path.abspath(logdir)
        key = hashlib.sha256(identity.encode()).hexdigest()
        return LogdirCache(self.folder / "scalars" / key[:2] / f"{key}.pkl", identity)


class LogdirCache:
    """One logdir's pack: look files up before a read, save what the read found after it."""

    def __init__(self, path: Path, identity: str) -> None:
        self.path, self.identity = path, identity
        self.entries: dict[str, _Entry] = {}
        self.chunks: list[ChunkRows] = []
        self._identities: dict[str, str] = {}
        try:
            with open(path, "rb") as stream:
                pack = pickle.load(stream)
        except (
            OSError,
            EOFError,
            pickle.UnpicklingError,
            AttributeError,
            ImportError,
            TypeError,
            ValueError,
        ):
            return
        if isinstance(pack, dict) and pack.get("format") == _FORMAT and pack.get("identity") == identity:
            self.entries, self.chunks = pack["entries"], pack["chunks"]

    def _identity(self, file: EventFile) -> str:
        found = self._identities.get(file.path)
        if found is None:
            found = self._identities[file.path] = (
                file.path if is_url(file.path) else os.path.abspath(file.path)
            )
        return found

    def lookup(self, file: EventFile) -> Lookup:
        entry = self.entries.get(self._identity(file))
        if entry is None:
            return Lookup()
        chunk = self.chunks[entry.chunk]
        unchanged = file.signature and file.signature == entry.signature
        if unchanged and (is_url(file.path) or not _racy(file, entry.written)):
            return Lookup(chunk=chunk, position=entry.position)
        if is_url(file.path) or not file.signature or not entry.signature:
            return Lookup()
        state = chunk.states[entry.position]
        same_file = file.signature[:2] == entry.signature[:2]
        if not same_file or file.size < state.offset or state.stopped or not state.track_checksum:
            return Lookup()
        if _prefix_checksum(file.path, state.offset) != state.checksum:
            return Lookup()
        rows = chunk.file(entry.position)
        return Lookup(resume=Resume.after(rows), previous=rows)

    def save(self, files: list[EventFile], placed: list[tuple[ChunkRows, int]], *, everything: bool) -> None:
        """Remember ``files`` as read now (each at a position of a chunk); entries of other files
        are kept unless the read looked at ``everything`` in the logdir (they were deleted).
        Written only when that changes anything (atomically; a failure to write leaves the cache
        as it was)."""
        unchanged = all(
            (entry := self.entries.get(self._identity(file))) is not None
            and self.chunks[entry.chunk] is chunk
            and entry.position == position
            and entry.signature == file.signature
            for file, (chunk, position) in zip(files, placed)
        )
        if unchanged and (not everything or len(self.entries) == len(files)):
            return
        now = time.time()
        chunks: dict[int, int] = {}
        kept: list[ChunkRows] = []

        def number(chunk: ChunkRows) -> int:
            if id(chunk) not in chunks:
                chunks[id(chunk)] = len(kept)
                kept.append(chunk)
            return chunks[id(chunk)]

        entries = {}
        seen = {self._identity(file) for file in files}
        for identity, entry in self.entries.items():
            if identity not in seen and not everything:
                entries[identity] = _Entry(
                    entry.signature, entry.written, number(self.chunks[entry.chunk]), entry.position
                )
        for file, (chunk, position) in zip(files, placed):
            entries[self._identity(file)] = _Entry(file.signature, now, number(chunk), position)
        pack = {"format": _FORMAT, "identity": self.identity, "entries": entries, "chunks": kept}
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.path.parent, delete=False, suffix=".tmp") as out:
                temporary = out.name
                pickle.dump(pack, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path)
        except OSError:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)


def _racy(file: EventFile, written: float) -> bool:
    mtime_ns = file.signature[3]
    return mtime_ns / 1e9 > written - RACY_SECONDS


def _prefix_checksum(path: str, length: int, chunk: int = 1 << 22) -> int | None:
    """CRC-32C of the first ``length`` bytes of a local file (None if it cannot be read)."""
    crc = 0
    try:
        with open(path, "rb") as stream:
            left = length
            while left:
                data = stream.read(min(chunk, left))
                if not data:
                    return None
                crc = _crc32c.crc32c(data, crc)
                left -= len(data)
    except OSError:
        return None
    return crc
