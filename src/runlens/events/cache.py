"""A cache of decoded event files, so re-reading a logdir costs a fraction of the first read and a
run still training only has its new bytes parsed.

One entry per event file (keyed by its absolute path or URL) under ``<folder>/scalars/``, written
atomically; deleting the folder, or any entry, is always safe. The default folder is
``$XDG_CACHE_HOME/runlens`` (``~/.cache/runlens``). An entry is used only when it provably
describes the file as it is now:

- local file, same device, inode, size, mtime and ctime (ctime cannot be set back by a user) and the
  entry written more than :data:`RACY_SECONDS` after that mtime: used as is;
- local file that may have changed (grew, or touched within the racy window), same device and inode,
  at least as long as what was read, and the CRC-32C of the bytes read so far unchanged: only the
  bytes after them are parsed (a truncated last record is re-read);
- remote file (fsspec): same size and ETag/mtime: used as is;
- anything else (replaced, truncated, rewritten, other remote version): read again from the start.
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

import crc32c as _crc32c

from runlens.events.files import FileRows, Resume
from runlens.events.sources import EventFile, is_url

RACY_SECONDS = 2.0  # a file modified this close to when its entry was written is re-checked
_FORMAT = 1  # bump when FileRows' pickled shape changes: older entries are then ignored


def default_folder() -> Path:
    """``$XDG_CACHE_HOME/runlens`` or ``~/.cache/runlens``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "runlens"


@dataclass(frozen=True)
class Lookup:
    """What the cache knows of a file: ``rows`` to use as they are, or ``resume`` to read the rest."""

    rows: FileRows | None = None
    resume: Resume | None = None
    previous: FileRows | None = None  # the rows ``resume`` continues


class ScalarCache:
    """Decoded event files on disk (see the module docstring).

    >>> cache = ScalarCache("/tmp/runlens-cache")            # doctest: +SKIP
    >>> runlens.read_scalars("logs", cache=cache.folder)     # doctest: +SKIP
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()

    def _entry(self, file: EventFile) -> Path:
        key = hashlib.sha256(_identity(file).encode()).hexdigest()
        return self.folder / "scalars" / key[:2] / f"{key}.pkl"

    def lookup(self, file: EventFile) -> Lookup:
        try:
            with open(self._entry(file), "rb") as stream:
                entry = pickle.load(stream)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
            return Lookup()
        if not isinstance(entry, dict) or entry.get("format") != _FORMAT or entry.get("identity") != _identity(file):
            return Lookup()
        rows: FileRows = entry["rows"]
        if file.signature and file.signature == entry["signature"]:
            if is_url(file.path) or not _racy(file, entry["written"]):
                return Lookup(rows=rows)
        if is_url(file.path) or not file.signature or not entry["signature"]:
            return Lookup()
        same_file = file.signature[:2] == entry["signature"][:2]
        if not same_file or file.size < rows.state.offset or rows.state.stopped:
            return Lookup()
        if _prefix_checksum(file.path, rows.state.offset) != rows.state.checksum:
            return Lookup()
        return Lookup(resume=Resume.after(rows), previous=rows)

    def store(self, file: EventFile, rows: FileRows) -> None:
        """Save ``rows`` for ``file`` (atomically; a failure to write leaves the cache as it was)."""
        if not rows.state.track_checksum and not is_url(file.path):
            return  # without the checksum an entry could not be trusted for resuming
        entry = {"format": _FORMAT, "identity": _identity(file), "signature": file.signature,
                 "written": time.time(), "rows": rows}
        target = self._entry(file)
        temporary = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".tmp") as out:
                temporary = out.name
                pickle.dump(entry, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, target)
        except OSError:
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)


def _identity(file: EventFile) -> str:
    return file.path if is_url(file.path) else os.path.abspath(file.path)


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
