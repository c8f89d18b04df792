"""Checkpoint folders (an HF Trainer ``checkpoint-N/``) as one thing: their identity, and removal.

Everything goes through descriptors opened with ``O_NOFOLLOW``: a symlink inside a folder is an
entry like any other (its own identity, its link text), never followed, and a sub-folder swapped
for a symlink while runlens works is refused instead of entered.

A folder's identity (:class:`FolderIdentity`) is the device and inode of the folder, the total size
of its files, the newest modification and change time among its entries (what ``--min-age``
looks at: the last file a trainer wrote) and a digest of every entry's path, type, device, inode,
size and times. Any file added, removed, renamed, replaced or written below it changes the
identity; renaming the folder itself does not (so it can be checked again after it is moved aside).

>>> fd = os.open("out/checkpoint-12", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)  # doctest: +SKIP
>>> folder_identity(fd).size                                                        # doctest: +SKIP
27446
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from runlens.checkpoints.nofollow import DIR_FLAGS, FileIdentity

MAX_DEPTH = 16  # sub-folders nested deeper: not a checkpoint layout runlens walks (or removes)


@dataclass(frozen=True)
class FolderIdentity(FileIdentity):
    """A folder's :class:`FileIdentity` (its ``size`` the total of its files, its times the
    newest of its entries) plus ``digest``, which changes with any entry below it."""

    digest: str = ""


class FolderTooDeep(OSError):
    """Sub-folders nested deeper than :data:`MAX_DEPTH`."""


def entries(fd: int) -> Iterator[tuple[str, os.stat_result]]:
    """``(relative path, lstat)`` of every entry below the folder open at ``fd``, sub-folders
    before their contents, nothing followed (``OSError`` if a sub-folder cannot be opened)."""
    pending = [(os.dup(fd), "", 0)]
    try:
        while pending:
            folder_fd, prefix, depth = pending.pop()
            try:
                for name in sorted(os.listdir(folder_fd)):
                    info = os.lstat(name, dir_fd=folder_fd)
                    yield prefix + name, info
                    if stat.S_ISDIR(info.st_mode):
                        if depth + 1 >= MAX_DEPTH:
                            raise FolderTooDeep(errno.ELOOP, f"folders nested more than {MAX_DEPTH} deep")
                        pending.append(
                            (os.open(name, DIR_FLAGS, dir_fd=folder_fd), f"{prefix}{name}/", depth + 1)
                        )
            finally:
                os.close(folder_fd)
    finally:
        for folder_fd, _, _ in pending:
            os.close(folder_fd)


def folder_identity(fd: int) -> FolderIdentity:
    """The identity of the folder open at ``fd`` (see the module docstring)."""
    own = os.fstat(fd)
    digest = hashlib.sha256()
    size, mtime, ctime = 0, own.st_mtime_ns, own.st_ctime_ns
    newest_m = newest_c = None
    for path, info in entries(fd):
        digest.update(
            f"{path}\0{info.st_mode:o}\0{info.st_dev}\0{info.st_ino}\0{info.st_size}\0"
            f"{info.st_mtime_ns}\0{info.st_ctime_ns}\n".encode("utf-8", "surrogateescape")
        )
        if stat.S_ISREG(info.st_mode):
            size += info.st_size
        newest_m = info.st_mtime_ns if newest_m is None else max(newest_m, info.st_mtime_ns)
        newest_c = info.st_ctime_ns if newest_c is None else max(newest_c, info.st_ctime_ns)
    return FolderIdentity(
        own.st_dev,
        own.st_ino,
        size,
        mtime if newest_m is None else newest_m,
        ctime if newest_c is None else newest_c,
        digest.hexdigest(),
    )


def remove_contents(fd: int, *, first: tuple[str, ...] = (), depth: int = 0) -> None:
    """Remove everything below the folder open at ``fd`` (files and symlinks unlinked, sub-folders
    entered without following links and removed once empty), the names in ``first`` before the
    others; ``OSError`` on the first failure."""
    if depth >= MAX_DEPTH:
        raise FolderTooDeep(errno.ELOOP, f"folders nested more than {MAX_DEPTH} deep")
    for name in sorted(os.listdir(fd), key=lambda n: (n not in first, n)):
        info = os.lstat(name, dir_fd=fd)
        if stat.S_ISDIR(info.st_mode):
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                os.unlink(name, dir_fd=fd)  # swapped for a symlink or a file meanwhile: its name goes
                continue
            try:
                if (os.fstat(child).st_dev, os.fstat(child).st_ino) != (info.st_dev, info.st_ino):
                    raise OSError(errno.EAGAIN, f"sub-folder {name!r} was replaced while being removed")
                remove_contents(child, depth=depth + 1)
            finally:
                os.close(child)
            os.rmdir(name, dir_fd=fd)
        else:
            os.unlink(name, dir_fd=fd)
