"""A cache of decoded event files, so re-reading a logdir costs a fraction of the first read and a
run still training only has its new bytes parsed.

One pack per logdir (keyed by the SHA-256 of its absolute path's bytes, or of its URL) at
``<folder>/scalars/<2 hex>/<key>.pack``, holding every file's decoded rows in the same few arrays
per chunk the reader produces (a sweep of thousands of files is one file to load, not thousands),
written atomically after each read that changed anything; deleting the folder, or any pack, is
always safe. The default folder is ``$XDG_CACHE_HOME/runlens`` (``~/.cache/runlens``). A file's
entry is used only when it provably describes the file as it is now:

- local file, same device, inode, size, mtime and ctime (ctime cannot be set back by a user) and the
  entry written more than :data:`RACY_SECONDS` after that mtime: used as is;
- local file that may have changed (grew, or touched within the racy window), same device and inode,
  at least as long as what was read, and the CRC-32C of the bytes read so far unchanged: only the
  bytes after them are parsed (a truncated last record is re-read);
- remote file (fsspec): same size and ETag/mtime: used as is;
- anything else (replaced, truncated, rewritten, other remote version): read again from the start.

A pack keeps a chunk as long as one of its files' entries is current, so rows of files that
changed since may stay in it until the rest of that chunk changes too (at most one stale copy).

A pack is trusted only as far as nobody else could have written it, and only whole:

- its format (:mod:`runlens.events.pack`) is a JSON index plus raw column buffers, so loading it can
  run no code, whatever its bytes (packs used to be pickles: a planted one ran code). Chosen over
  ``.npy`` files (one file or zip member per column, a header to parse for each) and over Arrow IPC
  (pyarrow is no dependency of the core): the standard library, numpy and ``crc32c`` read it;
- its header, index and every column carry a CRC-32C, and the columns' stated sizes must add up to
  the file's size before anything is allocated: a damaged, truncated or spliced pack, or one that
  claims more rows than the file holds, is ignored whole and the event files are read instead;
- the pack and every folder from the cache folder down must be owned by this user and writable by
  no one else, and are opened without following links (:mod:`runlens.privatefiles`); folders are
  made 0700, packs 0600, written to an exclusively created temporary file, synced and renamed.

An ignored pack is noted as a :class:`~runlens.errors.CacheWarning` (once per read; rewritten by that
read unless the folder is unsafe), except a pack of another format -- the normal state after an
upgrade -- which is replaced quietly. Packs of runlens versions before this format
(``<key>.pkl``) are never read; delete them at will.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import crc32c as _crc32c

from runlens.errors import RunlensError
from runlens.events.files import ChunkRows, FileRows
from runlens.events.pack import Entry, PackError, read_pack, write_pack
from runlens.events.records import ReadState
from runlens.events.sources import EventFile, is_url
from runlens.privatefiles import SUPPORTED, Unsafe, make_folder, open_file, open_folder, replace_file

RACY_SECONDS = 2.0  # a file modified this close to when its entry was written is re-checked


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
    resume: ReadState | None = None
    previous: FileRows | None = None


class ScalarCache:
    """Decoded event files on disk (see the module docstring).

    >>> cache = ScalarCache("/tmp/runlens-cache")            # doctest: +SKIP
    >>> runlens.read_scalars("logs", cache=cache.folder)     # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        if not SUPPORTED:
            raise RunlensError(
                "cache=: the scalar cache needs a POSIX system (Linux, macOS); read without it"
            )
        self.folder = Path(folder) if folder is not None else default_folder()

    def open(self, logdir: str | os.PathLike[str]) -> LogdirCache:
        """What the cache holds for ``logdir`` (nothing, if its pack is missing or unusable: why is
        in the result's ``notes``)."""
        identity = str(logdir) if is_url(logdir) else os.path.abspath(logdir)
        key = hashlib.sha256(os.fsencode(identity)).hexdigest()  # bytes: any path, UTF-8 or not
        return LogdirCache(self.folder, ("scalars", key[:2]), f"{key}.pack", identity)


class LogdirCache:
    """One logdir's pack: look files up before a read, save what the read found after it.
    ``notes`` says why a pack was ignored or could not be written (for a ``CacheWarning``)."""

    def __init__(self, root: Path, folders: tuple[str, ...], name: str, identity: str) -> None:
        self.root, self.folders, self.name, self.identity = root, folders, name, identity
        self.remote = is_url(identity)  # a logdir's files are all URLs, or all local
        self.entries: dict[str, Entry] = {}
        self.chunks: list[ChunkRows] = []
        self.notes: list[str] = []
        self.writable = True  # False once a folder on the way proved unsafe: nothing is written there
        self._identities: dict[str, str] = {}
        self._load()

    @property
    def path(self) -> Path:
        return self.root.joinpath(*self.folders, self.name)

    def _load(self) -> None:
        try:
            folder = open_folder(self.root, self.folders)
        except (Unsafe, OSError) as exc:
            self.writable = False
            self._note(exc)
            return
        if folder is None:
            return
        try:
            stream = open_file(folder, self.name, shown=self.path)
            if stream is not None:
                with stream:
                    self.entries, self.chunks = read_pack(stream.fileno(), self.identity)
        except PackError as exc:
            if not exc.quiet:
                self._note(f"{self.path}: cache pack {exc}; ignored, the event files are read instead")
        except (Unsafe, OSError) as exc:
            self._note(exc)
        finally:
            os.close(folder)

    def _note(self, problem: Exception | str) -> None:
        if isinstance(problem, Unsafe):
            problem = (
                f"{problem}; the cache is not used (only folders and packs you own and no one else can "
                "write are trusted): fix its owner or permissions (chmod go-w), or delete it"
            )
        elif isinstance(problem, OSError):
            problem = f"{self.path}: the cache cannot be used ({problem.strerror or problem}); the event files are read"
        if problem not in self.notes:
            self.notes.append(str(problem))

    def _identity(self, file: EventFile) -> str:
        found = self._identities.get(file.path)
        if found is None:
            found = self._identities[file.path] = file.path if self.remote else os.path.abspath(file.path)
        return found

    def lookup(self, file: EventFile) -> Lookup:
        entry = self.entries.get(self._identity(file))
        if entry is None:
            return Lookup()
        chunk = self.chunks[entry.chunk]
        unchanged = file.signature and file.signature == entry.signature
        if unchanged and (self.remote or not _racy(file, entry.written)):
            return Lookup(chunk=chunk, position=entry.position)
        if self.remote or not file.signature or not entry.signature:
            return Lookup()
        state = chunk.states[entry.position]
        same_file = file.signature[:2] == entry.signature[:2]
        if not same_file or file.size < state.offset or state.stopped or not state.track_checksum:
            return Lookup()
        if _prefix_checksum(file.path, state.offset) != state.checksum:
            return Lookup()
        rows = chunk.file(entry.position)
        return Lookup(resume=rows.state.resumable(), previous=rows)

    def save(self, files: list[EventFile], placed: list[tuple[ChunkRows, int]], *, everything: bool) -> None:
        """Remember ``files`` as read now (each at a position of a chunk); entries of other files
        are kept unless the read looked at ``everything`` in the logdir (they were deleted).
        Written only when that changes anything (atomically; a failure to write leaves the cache
        as it was, and is noted)."""
        unchanged = all(
            (entry := self.entries.get(self._identity(file))) is not None
            and self.chunks[entry.chunk] is chunk
            and entry.position == position
            and entry.signature == file.signature
            for file, (chunk, position) in zip(files, placed)
        )
        if not self.writable or (unchanged and (not everything or len(self.entries) == len(files))):
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
                entries[identity] = entry._replace(chunk=number(self.chunks[entry.chunk]))
        for file, (chunk, position) in zip(files, placed):
            entries[self._identity(file)] = Entry(file.signature, now, number(chunk), position)
        try:
            folder = make_folder(self.root, self.folders)
            try:
                replace_file(folder, self.name, lambda out: write_pack(out, self.identity, entries, kept))
            finally:
                os.close(folder)
        except (Unsafe, OSError) as exc:
            self._note(exc)


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
