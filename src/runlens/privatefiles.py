"""Files that only this user controls: folders walked and files opened without following links,
anything another user owns or can write refused, files replaced atomically.

Used for runlens' own state on disk (the scalar cache): what is read there is trusted only when no
one else could have put it there, and nothing is ever written through a link someone planted.
Each check is made on the opened descriptor (``fstat``), never on a path looked up again later,
so swapping a folder or file between the check and the use changes nothing.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> open_folder(root, ["a", "b"]) is None
True
>>> folder = make_folder(root, ["a", "b"])
>>> replace_file(folder, "x", lambda out: out.write(b"hi"))
>>> with open_file(folder, "x") as stream:
...     stream.read()
b'hi'
>>> oct((root / "a" / "b").stat().st_mode & 0o777), oct((root / "a" / "b" / "x").stat().st_mode & 0o777)
('0o700', '0o600')
>>> os.close(folder)
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

# Everything here needs POSIX: opening relative to a folder descriptor, without following links.
# (The flags are looked up with getattr so that the module imports anywhere; see SUPPORTED.)
SUPPORTED = hasattr(os, "O_NOFOLLOW") and {os.open, os.mkdir, os.rename, os.unlink} <= os.supports_dir_fd
_FOLDER_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NO_LINK = (errno.ELOOP, errno.ENOTDIR)  # what opening a link with O_NOFOLLOW (| O_DIRECTORY) gives


class Unsafe(Exception):
    """A folder or file that another user could have written (the message says which and why)."""


def open_folder(root: str | os.PathLike[str], names: Sequence[str]) -> int | None:
    """A descriptor of ``root/names[0]/names[1]/...``, or None if one of them is missing:
    ``root`` as given (it may be a link the user made), every folder below it opened without
    following links; each must be owned by this user and writable by no one else (:class:`Unsafe`
    otherwise). Other failures raise ``OSError``."""
    try:
        return _walk(root, names, create=False)
    except FileNotFoundError:
        return None


def make_folder(root: str | os.PathLike[str], names: Sequence[str]) -> int:
    """:func:`open_folder`, making the folders that are missing (mode 0700)."""
    return _walk(root, names, create=True)


def _walk(root: str | os.PathLike[str], names: Sequence[str], *, create: bool) -> int:
    try:
        fd = os.open(root, _FOLDER_FLAGS)
    except FileNotFoundError:
        if not create:
            raise
        os.makedirs(root, mode=0o700, exist_ok=True)
        fd = os.open(root, _FOLDER_FLAGS)
    path = Path(root)
    try:
        _check(os.fstat(fd), path, stat.S_ISDIR, "folder")
        for name in names:
            path = path / name
            inner = _open_below(fd, name, path, create=create)
            os.close(fd)
            fd = inner
            _check(os.fstat(fd), path, stat.S_ISDIR, "folder")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_below(folder: int, name: str, path: Path, *, create: bool) -> int:
    try:
        return _open_folder_at(folder, name, path)
    except FileNotFoundError:
        if not create:
            raise
    with contextlib.suppress(FileExistsError):  # made meanwhile by another runlens: checked all the same
        os.mkdir(name, 0o700, dir_fd=folder)
    return _open_folder_at(folder, name, path)


def _open_folder_at(folder: int, name: str, path: Path) -> int:
    try:
        return os.open(name, _FOLDER_FLAGS | os.O_NOFOLLOW, dir_fd=folder)
    except OSError as exc:
        if exc.errno in _NO_LINK:
            raise Unsafe(f"{path}: not a real folder (a symbolic link or a file)") from None
        raise


def open_file(folder: int, name: str, *, shown: str | os.PathLike[str] | None = None) -> BinaryIO | None:
    """``name`` in ``folder`` opened for reading (unbuffered), or None if there is none: never
    through a link, never blocking (a FIFO is refused, not waited on); it must be a regular file
    owned by this user that no one else can write (:class:`Unsafe` otherwise). ``shown``: the
    path to name in messages (default ``name``)."""
    path = Path(shown if shown is not None else name)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Unsafe(f"{path}: a symbolic link, not a file") from None
        raise
    try:
        _check(os.fstat(fd), path, stat.S_ISREG, "regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb", buffering=0)


def replace_file(folder: int, name: str, write: Callable[[BinaryIO], object]) -> None:
    """Make ``name`` in ``folder`` hold what ``write`` writes, atomically: written to a new
    temporary file (created exclusively, never through a link, mode 0600), synced, then renamed
    over ``name`` (a link at ``name`` is replaced, not followed). On failure ``name`` is as it
    was and the temporary file is gone."""
    temporary = f".{name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, 0o600, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        raise


def _check(st: os.stat_result, path: Path, is_kind: Callable[[int], bool], kind: str) -> None:
    if not is_kind(st.st_mode):
        raise Unsafe(f"{path}: not a {kind}")
    if st.st_uid != os.geteuid():
        raise Unsafe(f"{path}: owned by user {st.st_uid}, not by you")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise Unsafe(f"{path}: writable by other users (mode {stat.S_IMODE(st.st_mode):04o})")
