"""Carry out a prune plan: the only code in runlens that deletes or moves files.

Safety rules, checked in this order:

1. Before anything is touched, every file the plan drops must be a checkpoint (by its name) inside
   ``root`` once its folder is resolved, every run must keep a valid checkpoint, and a trash
   folder must lie outside ``root``. Else the whole plan is refused.
2. Only one prune works on ``root`` at a time (:func:`runlens.checkpoints.lock.prune_lock`).
3. Under the lock, every valid checkpoint the plan keeps must still be there as a regular file;
   a stale plan is refused.
4. Right before each removal the file is ``lstat``-ed again: a file that is gone, is no longer a
   regular file (a symlink is never followed, moved or deleted) or changed since the plan (size or
   mtime) is left alone and reported.

Kept files are never opened for writing, so a prune killed at any point leaves every kept file as
it was, and planning again finishes the job (the remaining files plan the same way).

>>> result = apply_prune(plan, "runs/", trash="/tmp/runlens-trash")   # doctest: +SKIP
>>> result.bytes_freed                                                 # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass, field

import pandas as pd

from runlens.checkpoints.errors import PruneRefused
from runlens.checkpoints.lock import prune_lock
from runlens.checkpoints.names import CHECKPOINT_SUFFIXES, checkpoint_kind
from runlens.checkpoints.plan import refuse_runs_left_without_valid
from runlens.errors import RunlensError


@dataclass
class PruneResult:
    """What :func:`apply_prune` did: ``removed`` paths (moved to ``trash`` when one was given,
    at ``moved_to``), ``skipped`` and ``failed`` ``(path, why)`` pairs, ``bytes_freed`` in ``root``."""

    removed: list[str] = field(default_factory=list)
    moved_to: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes_freed: int = 0
    trash: str | None = None


def apply_prune(
    plan: pd.DataFrame, root: str | os.PathLike[str], *, trash: str | os.PathLike[str] | None = None
) -> PruneResult:
    """Delete (or move to ``trash``) the checkpoints ``plan`` drops, within ``root`` only.

    Args:
        plan: from :func:`runlens.plan_prune` over :func:`runlens.read_checkpoints` of ``root``.
        root: the checkpoint folder the plan was made for; nothing outside it is touched.
        trash: a folder outside ``root`` to move dropped files into (keeping their relative
            paths) instead of deleting them.

    Raises:
        PruneRefused: the plan drops something that is not a checkpoint inside ``root``, another
            prune holds the lock, or a kept checkpoint has disappeared since the plan.

    Example:
        >>> plan = plan_prune(read_checkpoints("ckpt/"), rules=[KeepBestK(3, "val_loss")])  # doctest: +SKIP
        >>> apply_prune(plan, "ckpt/").removed                                          # doctest: +SKIP
    """
    root_real = os.path.realpath(root)
    if not os.path.isdir(root_real):
        raise RunlensError(f"checkpoint folder {str(root)!r} does not exist")
    trash_real = _trash_folder(trash, root_real)
    refuse_runs_left_without_valid(plan)  # again: the plan may have been edited by hand
    drops = plan[~plan["keep"].to_numpy(dtype=bool)]
    targets = [_inside(path, root_real) for path in drops["path"]]
    result = PruneResult(trash=trash_real)
    with prune_lock(root_real):
        _refuse_stale(plan)
        for location, (_, row) in zip(targets, drops.iterrows()):
            _remove_one(location, row, root_real, trash_real, result)
    return result


def _trash_folder(trash: str | os.PathLike[str] | None, root_real: str) -> str | None:
    if trash is None:
        return None
    trash_real = os.path.realpath(trash)
    if _within(trash_real, root_real):
        raise RunlensError(
            f"--trash {str(trash)!r} is inside the checkpoint folder; choose a folder outside it"
        )
    return trash_real


def _within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _inside(path: str, root_real: str) -> str:
    """``path`` with its folder resolved, if it names a checkpoint inside ``root``; else refuse."""
    name = os.path.basename(path)
    location = os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), name)
    if checkpoint_kind(name) is None:
        raise PruneRefused(f"refusing: the plan drops {path!r}, which is not a checkpoint file")
    if location == root_real or not _within(location, root_real):
        raise PruneRefused(f"refusing: the plan drops {path!r}, which is outside {root_real}")
    return location


def _refuse_stale(plan: pd.DataFrame) -> None:
    kept = plan[plan["keep"].to_numpy(dtype=bool) & plan["valid"].to_numpy(dtype=bool)]
    for path in kept["path"]:
        try:
            regular = stat.S_ISREG(os.lstat(path).st_mode)
        except FileNotFoundError:
            regular = False
        if not regular:
            raise PruneRefused(
                f"refusing: {path!r}, which the plan keeps, is gone or no longer a regular file; "
                "the plan is stale (another tool is changing the folder?): plan again"
            )


def _remove_one(
    location: str, row: pd.Series, root_real: str, trash_real: str | None, result: PruneResult
) -> None:
    path = row["path"]
    try:
        info = os.lstat(location)
    except FileNotFoundError:
        result.skipped.append((path, "already gone"))
        return
    if not stat.S_ISREG(info.st_mode):
        result.skipped.append((path, "no longer a regular file (a symlink?): left alone"))
        return
    if info.st_size != row["size_bytes"] or info.st_mtime_ns != pd.Timestamp(row["mtime"]).value:
        result.skipped.append((path, "changed since the plan: left alone"))
        return
    try:
        if trash_real is None:
            os.unlink(location)
        else:
            result.moved_to.append(_move(location, root_real, trash_real))
    except OSError as exc:
        result.failed.append((path, exc.strerror or str(exc)))
        return
    result.removed.append(path)
    result.bytes_freed += info.st_size


def _move(location: str, root_real: str, trash_real: str) -> str:
    """Move a checkpoint to the same relative path under the trash (a free name if taken)."""
    target = os.path.join(trash_real, os.path.relpath(location, root_real))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    target = _free_name(target)
    try:
        os.rename(location, target)  # atomic within one filesystem
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        partial = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.partial")
        shutil.copyfile(location, partial)  # a kill here leaves only this partial copy
        os.replace(partial, target)
        os.unlink(location)
    return target


def _free_name(target: str) -> str:
    if not os.path.lexists(target):
        return target
    folder, name = os.path.split(target)
    kind_suffix = next(s for s in CHECKPOINT_SUFFIXES if name.endswith(s))
    stem, n = name[: -len(kind_suffix)], 2
    while os.path.lexists(os.path.join(folder, f"{stem} ({n}){kind_suffix}")):
        n += 1
    return os.path.join(folder, f"{stem} ({n}){kind_suffix}")
