"""Carry out a prune plan: the only code in runlens that deletes or moves files.

Safety rules, checked in this order; a rule that fails refuses the whole plan before anything
is removed (:class:`PruneRefused`, exit code 1), unless said otherwise:

1. Every file the plan drops must have a checkpoint's name (of its kind), lie inside ``root`` once
   its folder is resolved, and carry the identity :func:`runlens.read_checkpoints` recorded
   (device, inode, size, mtime, ctime; for a checkpoint folder also ``content_digest``); every
   run must keep a valid checkpoint; a trash folder must lie outside ``root`` and be safe to
   write in (:mod:`.trash`).
2. Every folder holding a file of a run the plan deletes from (dropped or kept) is locked, in one
   global order, all before anything is removed (:func:`runlens.checkpoints.lock.lock_folders`):
   two prunes whose folders overlap never work at once. The folders are opened one component at
   a time without following symlinks, and everything below works through their descriptors.
3. Under the locks, on disk: every dropped file must still be the very file planned (a file
   replaced -- even by one with the same size and mtime -- or swapped for a symlink makes the plan
   stale); every valid file the plan keeps in those runs is re-read and re-validated, and the
   ranked ones must be unchanged; and every such run must keep at least one valid checkpoint.
4. Each file is then removed by :func:`runlens.checkpoints.removal.remove_planned`: moved aside
   atomically, checked to be the inode held open, and only then unlinked (or moved to the trash);
   a file replaced in that window is put back and reported (``skipped``), not removed. A
   checkpoint folder goes the same way as a whole
   (:func:`~runlens.checkpoints.removal.remove_planned_folder`).

Kept files are never opened for writing, so a prune killed at any point leaves every kept file as
it was, and planning again finishes the job (the remaining files plan the same way).

>>> result = apply_prune(plan, "runs/", trash="/tmp/runlens-trash")   # doctest: +SKIP
>>> result.bytes_freed                                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from runlens.checkpoints.errors import PruneRefused
from runlens.checkpoints.folders import FolderIdentity, folder_identity
from runlens.checkpoints.index import IDENTITY_COLUMNS
from runlens.checkpoints.lock import lock_folders
from runlens.checkpoints.names import HF_KIND, checkpoint_kind, folder_kind
from runlens.checkpoints.nofollow import DIR_FLAGS, FileIdentity, open_real_dir
from runlens.checkpoints.plan import refuse_runs_left_without_valid
from runlens.checkpoints.removal import Removal, remove_planned, remove_planned_folder
from runlens.checkpoints.trash import Trash
from runlens.checkpoints.validate import inspect_entry
from runlens.errors import RunlensError

_STALE = "the plan is stale (another tool or prune changed the folder?): plan again; nothing was deleted"


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


@dataclass(frozen=True)
class _Planned:
    """One row of a run the plan deletes from: where its file is and which file it must be."""

    path: str
    folder: str  # relative to root, '/'-separated, '' for root itself
    name: str
    identity: FileIdentity  # a FolderIdentity for a checkpoint folder
    run: str
    kind: str
    keep: bool
    valid: bool
    ranked: bool  # the plan ranked it: part of the reason the others are dropped


def apply_prune(
    plan: pd.DataFrame, root: str | os.PathLike[str], *, trash: str | os.PathLike[str] | None = None
) -> PruneResult:
    """Delete (or move to ``trash``) the checkpoints ``plan`` drops, within ``root`` only.

    Args:
        plan: from :func:`runlens.plan_prune` over :func:`runlens.read_checkpoints` of ``root``
            (its ``device``, ``inode``, ``size_bytes``, ``mtime`` and ``ctime`` columns say which
            files were planned).
        root: the checkpoint folder the plan was made for; nothing outside it is touched.
        trash: a folder outside ``root`` to move dropped files into (keeping their relative
            paths) instead of deleting them; it must not be writable by other users (unless it
            is sticky and yours).

    Raises:
        PruneRefused: the plan drops something that is not a checkpoint inside ``root``, another
            prune holds a lock, or the plan is stale: a dropped file is not the one planned, a
            kept checkpoint changed or is no longer valid, or a run would keep no valid one.

    Example:
        >>> plan = plan_prune(read_checkpoints("ckpt/"), rules=[KeepBestK(3, "val_loss")])  # doctest: +SKIP
        >>> apply_prune(plan, "ckpt/").removed                                          # doctest: +SKIP
    """
    root_real = os.path.realpath(root)
    if not os.path.isdir(root_real):
        raise RunlensError(f"checkpoint folder {str(root)!r} does not exist")
    trash_dir = Trash.open(trash, root_real=root_real) if trash is not None else None
    result = PruneResult(trash=trash_dir.real if trash_dir is not None else None)
    refuse_runs_left_without_valid(plan)  # again: the plan may have been edited by hand
    keep = plan["keep"].to_numpy(dtype=bool)
    if keep.all():
        return result
    runs = plan["run"].to_numpy(dtype=object)
    rows = _locate(plan, np.isin(runs, list(set(runs[~keep]))), root_real)
    drops = [row for row in rows if not row.keep]
    folders = {row.folder for row in rows}
    root_fd = _open_root(root_real)
    try:
        with lock_folders(root_fd, root_real, sorted(folders)) as fds:
            gone = _check_drops(drops, fds)
            _check_keeps([row for row in rows if row.keep and row.valid], fds)
            if trash_dir is not None:
                for folder in sorted({p.folder for p in drops}):
                    trash_dir.prepare(folder)
            for planned in drops:
                if planned.path in gone:
                    result.skipped.append((planned.path, "already gone"))
                    continue
                remove = remove_planned_folder if planned.kind == HF_KIND else remove_planned
                done = remove(
                    fds[planned.folder],
                    planned.name,
                    planned.identity,
                    trash=trash_dir,
                    trash_folder=planned.folder,
                )
                _record(result, planned, done)
    finally:
        os.close(root_fd)
        if trash_dir is not None:
            trash_dir.close()
    return result


def _locate(plan: pd.DataFrame, rows: np.ndarray, root_real: str) -> list[_Planned]:
    """The ``rows`` (a mask) of ``plan``, located relative to ``root``; refused if one is not a
    checkpoint in it or has no identity."""
    identity_columns = ["size_bytes", "mtime", *IDENTITY_COLUMNS]
    missing = [c for c in identity_columns if c not in plan.columns]
    subset = plan.loc[rows]
    if missing or subset[identity_columns].isna().any().any():
        raise RunlensError(
            f"the plan has no file identities ({', '.join(missing) or 'empty values'} in "
            "device, inode, size_bytes, mtime, ctime): make it with plan_prune(read_checkpoints(...))"
        )
    ranked = subset["rank"].notna().tolist() if "rank" in subset.columns else [True] * len(subset)
    names = ("path", "run", "kind", "keep", "valid", "device", "inode", "size_bytes")
    columns = [subset[c].tolist() for c in names] + [_nanoseconds(subset[c]) for c in ("mtime", "ctime")]
    digests = (
        subset["content_digest"].tolist() if "content_digest" in subset.columns else [None] * len(subset)
    )
    folders: dict[str, str] = {}  # a folder resolved once, however many files it holds
    located = []
    for (path, run, kind, keep, valid, device, inode, size, mtime, ctime), judged, digest in zip(
        zip(*columns), ranked, digests
    ):
        name, verb = os.path.basename(path), "keeps" if keep else "drops"
        named = folder_kind(name) if kind == HF_KIND else checkpoint_kind(name)
        if named is None or named != kind:
            raise PruneRefused(
                f"refusing: the plan {verb} {path!r}, which is not a checkpoint file of kind {kind!r}"
            )
        parent = os.path.dirname(os.path.abspath(path))
        if parent not in folders:
            folder = os.path.realpath(parent)
            if os.path.commonpath([folder, root_real]) != root_real:
                raise PruneRefused(f"refusing: the plan {verb} {path!r}, which is outside {root_real}")
            relative = os.path.relpath(folder, root_real)
            folders[parent] = "" if relative == "." else relative
        identity = FileIdentity(int(device), int(inode), int(size), mtime, ctime)
        if kind == HF_KIND:
            if not isinstance(digest, str) or len(digest) != 64:
                raise RunlensError(
                    f"the plan has no content_digest for the checkpoint folder {path!r}: make it with "
                    "plan_prune(read_checkpoints(...))"
                )
            identity = FolderIdentity(int(device), int(inode), int(size), mtime, ctime, digest)
        located.append(
            _Planned(path, folders[parent], name, identity, run, kind, bool(keep), bool(valid), judged)
        )
    return located


def _nanoseconds(times: pd.Series) -> list[int]:
    return [pd.Timestamp(t).value for t in times]


def _open_root(root_real: str) -> int:
    try:
        return open_real_dir(root_real)
    except OSError as exc:
        raise PruneRefused(
            f"refusing: cannot open {root_real} without following a symlink ({exc.strerror or exc})"
        ) from exc


def _check_drops(drops: list[_Planned], fds: dict[str, int]) -> set[str]:
    """Refuse unless every dropped file is the very file planned; the paths already gone."""
    gone = set()
    for planned in drops:
        try:
            now = _identity_now(planned, fds[planned.folder])
        except FileNotFoundError:
            gone.add(planned.path)
            continue
        except OSError:  # a folder swapped for a symlink or a file, or one that cannot be read
            now = None
        if now != planned.identity:
            raise PruneRefused(
                f"refusing: {planned.path!r}, which the plan drops, is not the file planned "
                f"(replaced, changed or swapped for a symlink since); {_STALE}"
            )
    return gone


def _identity_now(planned: _Planned, folder_fd: int) -> FileIdentity:
    """The identity of what is at a planned name now (never through a symlink)."""
    if planned.kind != HF_KIND:
        return FileIdentity.of(os.stat(planned.name, dir_fd=folder_fd, follow_symlinks=False))
    fd = os.open(planned.name, DIR_FLAGS, dir_fd=folder_fd)
    try:
        return folder_identity(fd)
    finally:
        os.close(fd)


def _check_keeps(kept: list[_Planned], fds: dict[str, int]) -> None:
    """Re-read and re-validate the valid files kept in the runs with drops: a ranked one (the
    reason for the drops) must be unchanged and valid, and every run must keep a valid one."""
    still_valid = dict.fromkeys((row.run for row in kept), False)
    for row in kept:
        identity, verdict = inspect_entry(row.name, row.kind, dir_fd=fds[row.folder])
        ok = verdict.checkpoint is True and verdict.valid
        if row.ranked and not (ok and identity == row.identity):
            why = verdict.reason if not ok else "changed since the plan"
            raise PruneRefused(
                f"refusing: {row.path!r}, which the plan keeps, is not as planned ({why}); {_STALE}"
            )
        still_valid[row.run] |= ok
    for run, ok in sorted(still_valid.items()):
        if not ok:
            raise PruneRefused(
                f"refusing: run {run!r} would be left without a valid checkpoint on disk (the ones "
                f"the plan keeps are gone or no longer valid); {_STALE}"
            )


def _record(result: PruneResult, planned: _Planned, done: Removal) -> None:
    if done.removed:
        result.removed.append(planned.path)
        result.bytes_freed += planned.identity.size
        if done.moved_to is not None:
            result.moved_to.append(done.moved_to)
    elif done.failed is not None:
        result.failed.append((planned.path, done.failed))
    else:
        result.skipped.append((planned.path, done.skipped))
