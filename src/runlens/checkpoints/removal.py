"""Remove one planned file, and only that file: the last step of :func:`runlens.apply_prune`.

POSIX has no "unlink this name if it still is this inode", so between the last check of a name
and its removal another process could put a different file there. The removal closes that window:

1. the file is opened (``O_NOFOLLOW``) and the descriptor's identity -- device, inode, size,
   mtime, ctime -- must be the planned one; holding it open keeps its inode number from being
   reused;
2. whatever is at the name is moved aside atomically (``rename`` to ``.NAME.runlens-pruning-XXXX``
   in the same folder, through the folder's descriptor), and the inode moved must be the one held
   open; if it is not, it is put back (a hard link, which never replaces a file that appeared
   there meanwhile) and left alone;
3. only the verified file is unlinked (or moved into the trash, :mod:`.trash`).

A prune killed between 2 and 3 leaves the planned file under its aside name (it is reported by
:func:`runlens.read_checkpoints`, category "left aside"). What stays open: another process may
open the file and read it, or write into it through a descriptor it already holds, up to the
unlink.

A checkpoint folder (an HF Trainer ``checkpoint-N/``) goes the same way as a whole
(:func:`remove_planned_folder`): opened without following links and held open, its identity
(:mod:`.folders`: device, inode and a digest of every entry) checked, renamed aside atomically,
checked again through the descriptor held, and only then emptied through descriptors -- never
entering a symlinked sub-folder -- and removed, ``trainer_state.json`` first (the file the Trainer
writes last), so a folder only partly emptied is never a whole checkpoint again. Killed while it
is emptied, it stays under its aside name, which the HF Trainer never resumes from (it looks for
``checkpoint-<digits>``) and runlens lists as "left aside", saying whether it is still whole.

>>> remove_planned(folder_fd, "e_03.keras", identity)     # doctest: +SKIP
Removal(removed=True, moved_to=None, skipped=None, failed=None)
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runlens.checkpoints.folders import FolderIdentity, folder_identity, remove_contents
from runlens.checkpoints.hf_folder import TRAINER_STATE
from runlens.checkpoints.nofollow import DIR_FLAGS, FileIdentity, open_regular

if TYPE_CHECKING:
    from runlens.checkpoints.trash import Trash

_ASIDE_MARK = ".runlens-pruning-"
_ASIDE = re.compile(r"\.(?P<name>.+)\.runlens-pruning-[0-9a-f]{8}")
_NAME_ROOM = 200  # an aside name stays within NAME_MAX (255) for any checkpoint name


@dataclass(frozen=True)
class Removal:
    """What happened to one planned file: ``removed`` (and ``moved_to`` in the trash), or why it
    was ``skipped`` (left in place, unchanged) or ``failed``."""

    removed: bool = False
    moved_to: str | None = None
    skipped: str | None = None
    failed: str | None = None


def aside_original(name: str) -> str | None:
    """The name a file moved aside by a prune had (None if ``name`` is not an aside name).

    >>> aside_original(".e_03.keras.runlens-pruning-0a1b2c3d"), aside_original("e_03.keras")
    ('e_03.keras', None)
    """
    match = _ASIDE.fullmatch(name)
    return match["name"] if match else None


def aside_name(name: str) -> str:
    """A fresh name to move ``name`` aside to, in the same folder."""
    return f".{name[:_NAME_ROOM]}{_ASIDE_MARK}{secrets.token_hex(4)}"


def remove_planned(
    folder_fd: int, name: str, planned: FileIdentity, *, trash: Trash | None = None, trash_folder: str = ""
) -> Removal:
    """Unlink ``name`` in the folder ``folder_fd`` is open on -- or move it to ``trash_folder``
    of ``trash`` -- if and only if it is the file ``planned`` describes (see the module docstring)."""
    try:
        fd, info = open_regular(name, dir_fd=folder_fd)
    except FileNotFoundError:
        return Removal(skipped="already gone")
    except OSError:
        return Removal(skipped="no longer a regular file (a symlink?): left alone")
    try:
        if FileIdentity.of(info) != planned:
            return Removal(skipped="changed since the plan: left alone")
        return _remove_held(folder_fd, name, fd, info, trash, trash_folder)
    finally:
        os.close(fd)


def _remove_held(
    folder_fd: int, name: str, fd: int, info: os.stat_result, trash: Trash | None, trash_folder: str
) -> Removal:
    copy = None
    try:
        if trash is not None and not trash.same_device(info, trash_folder):
            copy = trash.copy_in(fd, info, trash_folder, name)  # before the source is touched
        aside = aside_name(name)
        os.rename(name, aside, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except OSError as exc:
        if copy is not None:
            trash.discard(copy)
        return Removal(failed=exc.strerror or str(exc))
    try:
        moved = os.lstat(aside, dir_fd=folder_fd)
    except OSError as exc:  # someone removed it in the microseconds since the rename
        if copy is not None:
            trash.discard(copy)
        return Removal(failed=f"vanished right after it was moved aside ({exc.strerror or exc})")
    if (moved.st_dev, moved.st_ino) != (info.st_dev, info.st_ino):
        if copy is not None:
            trash.discard(copy)
        problem = _put_back(folder_fd, aside, name)
        if problem is not None:
            return Removal(failed=f"replaced by another file while being removed; {problem}")
        return Removal(skipped="replaced by another file while being removed: put back, left alone")
    try:
        target = None
        if trash is not None:
            target = (
                trash.publish(copy)
                if copy is not None
                else trash.move_in(folder_fd, aside, fd, info, trash_folder, name)
            )
        os.unlink(aside, dir_fd=folder_fd)
    except OSError as exc:
        problem = _put_back(folder_fd, aside, name)
        return Removal(failed=(exc.strerror or str(exc)) + (f"; {problem}" if problem else ""))
    return Removal(removed=True, moved_to=target)


def _put_back(folder_fd: int, aside: str, name: str) -> str | None:
    """Give the file at ``aside`` its name back without replacing anything; None when done."""
    try:
        os.link(aside, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd, follow_symlinks=False)
    except FileExistsError:
        return f"a new {name!r} appeared meanwhile, so the file found there was left as {aside!r}"
    except OSError as exc:
        return f"it could not be put back ({exc.strerror or exc}) and was left as {aside!r}"
    os.unlink(aside, dir_fd=folder_fd)
    return None


def remove_planned_folder(
    parent_fd: int, name: str, planned: FolderIdentity, *, trash: Trash | None = None, trash_folder: str = ""
) -> Removal:
    """Remove the checkpoint folder ``name`` in the folder ``parent_fd`` is open on -- or move it
    to ``trash_folder`` of ``trash`` -- if and only if it is the folder ``planned`` describes."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        return Removal(skipped="already gone")
    except OSError:
        return Removal(skipped="no longer a folder (a symlink?): left alone")
    try:
        try:
            now = folder_identity(fd)
        except OSError as exc:
            return Removal(failed=f"cannot read it: {exc.strerror or exc}")
        if now != planned:
            return Removal(skipped="changed since the plan: left alone")
        return _remove_held_folder(parent_fd, name, fd, planned, trash, trash_folder)
    finally:
        os.close(fd)


def _remove_held_folder(
    parent_fd: int, name: str, fd: int, planned: FolderIdentity, trash: Trash | None, trash_folder: str
) -> Removal:
    held, copy = os.fstat(fd), None
    try:
        if trash is not None and not trash.same_device(held, trash_folder):
            copy = trash.copy_folder_in(fd, trash_folder, name)  # before the source is touched
        aside = aside_name(name)
        os.rename(name, aside, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except OSError as exc:
        if copy is not None:
            trash.discard_folder(copy)
        return Removal(failed=exc.strerror or str(exc))
    try:
        moved = os.lstat(aside, dir_fd=parent_fd)
        unchanged = (moved.st_dev, moved.st_ino) == (held.st_dev, held.st_ino) and folder_identity(
            fd
        ) == planned
    except OSError as exc:
        unchanged, moved = False, None
        why = f"vanished or changed right after it was moved aside ({exc.strerror or exc})"
    if not unchanged:
        if copy is not None:
            trash.discard_folder(copy)
        if moved is None:
            return Removal(failed=why)
        problem = _put_back_folder(parent_fd, aside, name)
        if problem is not None:
            return Removal(failed=f"replaced or written to while being removed; {problem}")
        return Removal(skipped="replaced or written to while being removed: put back, left alone")
    target = None
    try:
        if trash is not None:
            target = (
                trash.publish_folder(copy)
                if copy is not None
                else trash.move_folder_in(parent_fd, aside, trash_folder, name)
            )
            if copy is None:
                return Removal(removed=True, moved_to=target)
        remove_contents(fd, first=(TRAINER_STATE,))  # the file a save writes last: gone, no longer whole
        os.rmdir(aside, dir_fd=parent_fd)
    except OSError as exc:
        why = exc.strerror or str(exc)
        if target is None and trash is not None:  # not in the trash: the whole folder is still aside
            problem = _put_back_folder(parent_fd, aside, name)
            return Removal(failed=why + (f"; {problem}" if problem else ""))
        return Removal(failed=f"{why}; what is left of it is {aside!r} (delete it)")
    return Removal(removed=True, moved_to=target)


def _put_back_folder(parent_fd: int, aside: str, name: str) -> str | None:
    """Give the folder at ``aside`` its name back unless something took the name; None when done.
    (``rename`` would replace an empty folder that appeared under the name in between: no data.)"""
    try:
        os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass
    else:
        return f"a new {name!r} appeared meanwhile, so the folder found there was left as {aside!r}"
    try:
        os.rename(aside, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except OSError as exc:
        return f"it could not be put back ({exc.strerror or exc}) and was left as {aside!r}"
    return None
