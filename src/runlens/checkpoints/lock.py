"""One prune per folder at a time: an advisory ``flock`` on ``FOLDER/.runlens-prune.lock``.

:func:`runlens.apply_prune` locks every folder that holds a file of a run it deletes from (the
files it drops and the files it keeps), all before it removes anything, in one global order (the
folders' real paths, sorted), so two prunes whose folders overlap -- ``runs/`` and
``runs/exp1/checkpoints`` -- never work on the same folder at once, and at least one of them goes
ahead. A folder that is locked already makes the prune stop at once (:class:`PruneLocked`), having
removed nothing.

The lock file is created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``) and opened read-only,
never through a symlink; runlens never writes to it, truncates it or removes it, so a lock file
that is really a hard link to some other file cannot damage that file. An existing lock file is
used only if it is a regular file with one link owned by this user; anything else is refused.
No pid is stored (it would mean writing into a file runlens may not have created); the message
names the folder instead. The lock dies with its process (a prune killed with ``kill -9``
releases it), so a lock file left behind never blocks the next prune.

>>> with prune_lock("runs/exp1/checkpoints"):     # doctest: +SKIP
...     ...                                        # delete safely here
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager

from runlens.checkpoints.errors import PruneLocked, PruneRefused
from runlens.checkpoints.nofollow import open_dir, open_real_dir

LOCK_NAME = ".runlens-prune.lock"


@contextmanager
def prune_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``folder``'s prune lock, or raise :class:`PruneLocked` at once if another prune has it."""
    real = os.path.realpath(folder)
    with _opened(real) as folder_fd, ExitStack() as held:
        held.callback(os.close, _take(folder_fd, real))
        yield


@contextmanager
def lock_folders(root_fd: int, root_real: str, folders: Sequence[str]) -> Iterator[dict[str, int]]:
    """Lock every folder in ``folders`` ('/'-separated, relative to the root ``root_fd`` is open on,
    '' for the root itself) and yield ``{folder: descriptor}``; the descriptors (opened without
    following symlinks) are the ones to work in. Locks are taken in the sorted order of the
    folders' real paths; all are released on exit."""
    with ExitStack() as stack:
        fds: dict[str, int] = {}
        for folder in sorted(set(folders), key=lambda f: os.path.join(root_real, f)):
            shown = os.path.join(root_real, folder) if folder else root_real
            try:
                fd = open_dir(folder.split("/"), dir_fd=root_fd)
            except OSError as exc:
                raise PruneRefused(
                    f"refusing: cannot open the folder {shown} without following a symlink "
                    f"({exc.strerror or exc}); nothing was deleted"
                ) from exc
            stack.callback(os.close, fd)
            stack.callback(os.close, _take(fd, shown))
            fds[folder] = fd
        yield fds


@contextmanager
def _opened(real: str) -> Iterator[int]:
    try:
        fd = open_real_dir(real)
    except OSError as exc:
        raise PruneRefused(f"cannot open the folder {real} to lock it: {exc.strerror or exc}") from exc
    try:
        yield fd
    finally:
        os.close(fd)


def _take(folder_fd: int, shown: str) -> int:
    """The descriptor of ``shown``'s lock file, locked; :class:`PruneRefused` if it is not safe to
    use, :class:`PruneLocked` if another prune holds it."""
    path = os.path.join(shown, LOCK_NAME)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(LOCK_NAME, flags | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=folder_fd)
    except FileExistsError:
        fd = _existing(folder_fd, path, flags)
    except OSError as exc:
        raise PruneRefused(f"cannot create the prune lock {path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PruneLocked(
                f"another runlens prune is working on {shown} and holds {path}; "
                "wait for it to finish, then run this again"
            ) from None
        held, named = os.fstat(fd), os.lstat(LOCK_NAME, dir_fd=folder_fd)
        if (held.st_dev, held.st_ino) != (named.st_dev, named.st_ino):
            raise PruneLocked(f"the prune lock {path} was replaced while it was being taken; run this again")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _existing(folder_fd: int, path: str, flags: int) -> int:
    """Open a lock file that exists, if it is a regular file with one link owned by this user."""
    try:
        fd = os.open(LOCK_NAME, flags, dir_fd=folder_fd)
    except OSError as exc:
        what = "a symlink" if exc.errno == errno.ELOOP else f"not usable ({exc.strerror or exc})"
        raise PruneRefused(
            f"refusing: the prune lock {path} is {what}; remove it and run this again"
        ) from exc
    info = os.fstat(fd)
    problem = None
    if not stat.S_ISREG(info.st_mode):
        problem = "is not a regular file"
    elif info.st_nlink != 1:
        problem = f"has {info.st_nlink} links (a hard link to another file?)"
    elif info.st_uid != os.geteuid():
        problem = f"belongs to another user (uid {info.st_uid})"
    if problem is not None:
        os.close(fd)
        raise PruneRefused(
            f"refusing: the prune lock {path} {problem}; runlens only uses a lock file it could have "
            "created: remove it and run this again"
        )
    return fd
