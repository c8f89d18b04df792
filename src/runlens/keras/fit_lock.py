"""One fit per run folder: an advisory ``flock`` on ``RUN/.runlens-fit.lock``, held for the whole fit.

Two fits writing one run folder mix their checkpoints, ``history.csv`` rows and ``runlens.json``
(and one's clean-up removes the other's save in progress). :class:`FitLock` lets one fit in:

- Across processes, ``flock`` does it, and the kernel releases the lock when its holder dies
  (``kill -9`` included), so a crash never leaves a run folder locked.
- Inside one process ``flock`` refuses a second open of the file too (locks belong to the open
  file, not the process), so two threads are kept apart the same way. What ``flock`` cannot see
  is that a fit has *died*: Keras calls no callback when ``fit`` raises (an exception in a step or
  a callback, Ctrl-C in a notebook), so nothing would release the lock and a long-lived process
  would keep its run folder locked. Each lock therefore remembers the frame of the function
  driving the fit (Keras' ``fit``) and is held only while that frame is executing: a watcher
  thread (alive only while this process holds a lock) checks twice a second and releases the
  locks of fits that are over, and every acquire does the same check first, so the next fit in
  the same process always gets in.
- A child forked while a lock is held closes its copy of the file descriptor, so a worker
  process that outlives its parent does not keep the run locked.

The lock file is opened without following symbolic links and must be a regular file with one
link (a planted symlink or hard link is refused, never written through). runlens writes who holds
the lock into it -- a ``runlens fit lock`` line, then JSON with ``pid``, ``host``, ``thread``,
``started_at`` and ``command`` -- but only into a file it created (one starting with that line,
or empty: what a fit killed between creating and writing it leaves); another file is locked but
never written. The file stays after the fit (removing it would let two fits lock two different
files of the same name).

>>> lock = FitLock("runs/exp1")                    # doctest: +SKIP
>>> lock.acquire(sys._getframe())                   # doctest: +SKIP
>>> lock.release()                                  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from runlens.errors import RunlensError
from runlens.jsondata import loads
from runlens.textsafe import shown

LOCK_NAME = ".runlens-fit.lock"
MARKER = b"runlens fit lock\n"
POLL_SECONDS = 0.5  # how soon the watcher releases the lock of a fit that raised


@dataclass
class _Holder:
    """A lock this process holds: its file descriptor and the fit holding it."""

    lock: FitLock
    fd: int
    frame: FrameType  # the frame driving the fit: the lock is held while it executes
    thread: int
    thread_name: str
    started_at: str


_held: dict[tuple[int, int], _Holder] = {}  # (st_dev, st_ino) of the lock file -> holder
_registry = threading.Lock()
_watcher: threading.Thread | None = None


class FitLock:
    """The lock of one run folder (``run_dir/.runlens-fit.lock``); see the module docstring.

    Example:
        >>> lock = FitLock("runs/exp1")
        >>> lock.path.name
        '.runlens-fit.lock'
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._key: tuple[int, int] | None = None

    @property
    def held(self) -> bool:
        """Whether this lock is held (by the fit that acquired it, still running)."""
        with _registry:
            return self._key is not None and _held.get(self._key) is not None

    def acquire(self, frame: FrameType) -> None:
        """Hold the lock for the fit driven by ``frame`` (a no-op if this lock is held by a fit
        still running in this thread), or raise :class:`RunlensError` naming the run folder, the
        holder and what to do."""
        global _watcher
        with _registry:
            _release_ended()
            mine = _held.get(self._key) if self._key is not None else None
            if mine is not None and mine.lock is self and mine.thread == threading.get_ident():
                return
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunlensError(
                    f"cannot create the run folder {self.run_dir}: {exc.strerror or exc}"
                ) from None
            fd, ours = _open(self.path)
            try:
                st = os.fstat(fd)
                key = (st.st_dev, st.st_ino)
                other = _held.get(key)
                if other is not None:
                    who = (
                        f"another fit in this process (pid {os.getpid()}, thread "
                        f"'{shown(other.thread_name)}', since {other.started_at})"
                    )
                    raise self._refused(who)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise self._refused(_describe(os.pread(fd, 4096, 0))) from None
                thread = threading.current_thread()
                started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
                if ours:
                    _write_holder(fd, thread.name, started)
                _held[key] = _Holder(self, fd, frame, threading.get_ident(), thread.name, started)
            except BaseException:
                os.close(fd)
                raise
            self._key = key
            if _watcher is None:
                _watcher = threading.Thread(target=_watch, name="runlens-fit-lock-watcher", daemon=True)
                _watcher.start()

    def release(self) -> None:
        """Release the lock if this :class:`FitLock` holds it (idempotent)."""
        with _registry:
            holder = _held.get(self._key) if self._key is not None else None
            if holder is not None and holder.lock is self:
                _forget(self._key)
            self._key = None

    def _refused(self, who: str) -> RunlensError:
        return RunlensError(
            f"{self.run_dir} is in use by another fit: {who} holds {self.path}. Two fits writing one "
            "run folder mix their checkpoints, history.csv and runlens.json, so this fit stopped "
            "before it began: wait until that fit ends, or pass another run_dir to "
            "runlens.keras.callbacks()"
        )


def _open(path: Path) -> tuple[int, bool]:
    """The lock file's descriptor, and whether runlens may write into it (it made the file).

    Never follows a symlink; refuses anything but a regular file with one link."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    for _ in range(3):  # a file removed between the two opens: create it again
        try:
            return _checked(os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o644), path), True
        except FileExistsError:
            pass
        except OSError as exc:
            raise _cannot_open(path, exc) from None
        try:
            fd = _checked(os.open(path, flags), path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise _cannot_open(path, exc) from None
        head = os.pread(fd, len(MARKER), 0)
        return fd, head in (b"", MARKER)
    raise RunlensError(f"cannot open the fit lock {path}: it keeps disappearing; is something deleting it?")


def _checked(fd: int, path: Path) -> int:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
        return fd
    os.close(fd)
    what = "not a regular file" if not stat.S_ISREG(st.st_mode) else f"a file with {st.st_nlink} hard links"
    raise _not_plain(path, what)


def _cannot_open(path: Path, exc: OSError) -> RunlensError:
    what = {errno.ELOOP: "a symbolic link", errno.EISDIR: "not a regular file"}.get(exc.errno)
    if what is not None:  # ELOOP: O_NOFOLLOW met a symbolic link
        return _not_plain(path, what)
    return RunlensError(f"cannot open the fit lock {path}: {exc.strerror or exc}; check the run folder")


def _not_plain(path: Path, what: str) -> RunlensError:
    return RunlensError(
        f"the fit lock {path} is {what}: runlens creates it as a plain file and never writes "
        "through links; remove it and run the fit again"
    )


def _write_holder(fd: int, thread: str, started: str) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "thread": thread,
        "started_at": started,
        "command": " ".join(sys.argv)[:500],
    }
    data = MARKER + json.dumps(info).encode() + b"\n"
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def _describe(content: bytes) -> str:
    """Who holds the lock, from what its holder wrote into the file (``content``)."""
    if not content.startswith(MARKER):
        return "a fit (it did not say which)"
    try:
        info = loads(content[len(MARKER) :].decode("utf-8", "replace").splitlines()[0])
        fields = [str(info[k]) for k in ("pid", "host", "thread", "started_at", "command")]
    except (ValueError, IndexError, KeyError, TypeError):
        return "a fit (it did not say which)"
    pid, host, thread, started, command = map(shown, fields)
    return f"pid {pid} on {host} (thread '{thread}', since {started}, running '{command}')"


def _executing(frame: FrameType, thread: int) -> bool:
    """Whether ``frame`` is on the stack of ``thread`` (whether the fit it drives still runs)."""
    top = sys._current_frames().get(thread)
    while top is not None:
        if top is frame:
            return True
        top = top.f_back
    return False


def _release_ended() -> None:
    """Release the locks of fits that are over (under ``_registry``)."""
    for key, holder in list(_held.items()):
        if not _executing(holder.frame, holder.thread):
            _forget(key)


def _forget(key: tuple[int, int]) -> None:
    holder = _held.pop(key)
    holder.lock._key = None
    os.close(holder.fd)  # releases the flock: this process opened the file once for it


def _watch() -> None:
    """Release the locks of fits that ended without on_train_end; stop once none is held."""
    global _watcher
    while True:
        time.sleep(POLL_SECONDS)
        with _registry:
            _release_ended()
            if not _held:
                _watcher = None
                return


def _after_fork_in_child() -> None:
    """A forked child drops its copies of the locks (the parent still holds them) and their state."""
    global _registry, _watcher
    _registry = threading.Lock()  # another thread may have held it at the fork
    for holder in _held.values():
        holder.lock._key = None
        with contextlib.suppress(OSError):
            os.close(holder.fd)
    _held.clear()
    _watcher = None


os.register_at_fork(after_in_child=_after_fork_in_child)
