"""File operations that never follow a symlink, and the identity that says a file is the one planned.

Every path runlens deletes from, moves into or locks is opened one component at a time with
``O_DIRECTORY | O_NOFOLLOW`` and used through the folder's descriptor (``dir_fd=``), so a folder
swapped for a symlink after it was checked is refused instead of followed. Files are opened with
``O_NOFOLLOW | O_NONBLOCK`` (a FIFO planted under a checkpoint name never blocks) and checked to be
regular files on the open descriptor itself.

>>> identity = FileIdentity.of(os.stat("."))
>>> identity.same_file(FileIdentity.of(os.stat(".")))
True
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class FileIdentity:
    """Which file, in which state: device, inode, size and the modification and change times (ns).

    Two identities are equal only for the very same file (device + inode) unchanged in between:
    any write moves ``mtime`` and ``ctime``; ``mtime`` can be set back (``os.utime``), ``ctime``
    cannot (setting times changes it).
    """

    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileIdentity:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    def same_file(self, other: FileIdentity) -> bool:
        """The same inode (its content may have changed)."""
        return (self.device, self.inode) == (other.device, other.inode)


def open_dir(parts: Iterable[str], *, dir_fd: int | None = None) -> int:
    """A descriptor of the folder reached from ``dir_fd`` (or ``/`` for absolute use) through the
    path components ``parts``, none of which may be a symlink (``OSError`` ``ELOOP``/``ENOTDIR``).

    >>> fd = open_dir(["usr", "lib"], dir_fd=open_dir([]))   # /usr/lib   # doctest: +SKIP
    """
    fd = os.open("/", DIR_FLAGS) if dir_fd is None else os.dup(dir_fd)
    try:
        for part in parts:
            if part in ("", "."):
                continue
            if part == ".." or "/" in part:
                raise OSError(f"unexpected path component {part!r}")
            child = os.open(part, DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_real_dir(path: str) -> int:
    """A descriptor of the absolute, symlink-free ``path`` (e.g. from ``os.path.realpath``),
    opened component by component: a component swapped for a symlink since is refused."""
    return open_dir(path.split("/"))


def open_regular(name: str, *, dir_fd: int | None = None) -> tuple[int, os.stat_result]:
    """``(descriptor, fstat)`` of the regular file ``name`` (``OSError`` for a symlink, and
    ``NotRegularFile`` for a FIFO, socket, device or folder)."""
    fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(name)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


class NotRegularFile(OSError):
    """The path names a FIFO, socket, device or folder, not a regular file."""


def resolve_trusted(path: str) -> str:
    """``os.path.realpath(path)`` for an absolute ``path``, following only symlinks owned by this
    user or root: a symlink another user planted (``/tmp/old -> /home/me/precious``) raises
    ``PermissionError`` instead. Components that do not exist are kept as written.

    >>> resolve_trusted("/usr/../usr/lib/.")       # doctest: +SKIP
    '/usr/lib'
    """
    me, hops = os.geteuid(), 0
    resolved, pending = "/", [p for p in path.split("/") if p not in ("", ".")]
    while pending:
        part = pending.pop(0)
        if part == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, part)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            return os.path.normpath(os.path.join(candidate, *pending))
        if not stat.S_ISLNK(info.st_mode):
            resolved = candidate
            continue
        if info.st_uid not in (me, 0):
            raise PermissionError(
                f"{candidate} is a symlink owned by another user (uid {info.st_uid}): not followed"
            )
        hops += 1
        if hops > 40:
            raise OSError(f"{path}: too many levels of symbolic links")
        target = os.readlink(candidate)
        pending = [p for p in target.split("/") if p not in ("", ".")] + pending
        if target.startswith("/"):
            resolved = "/"
    return resolved


def writable_by_others(info: os.stat_result) -> bool:
    """Whether users other than this one (or root) can create, rename or remove entries in the
    folder ``info`` describes: it belongs to someone else, or is group/world-writable and not
    sticky-and-ours (in a sticky folder only an entry's owner may rename or remove it)."""
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        return True
    shared = bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
    return shared and not (info.st_mode & stat.S_ISVTX and info.st_uid == me)
