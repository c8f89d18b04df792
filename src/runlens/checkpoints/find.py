"""Walk a folder for checkpoints: files with a checkpoint's name, HF Trainer ``checkpoint-N/``
folders, and everything left out on the way (symlinks, shards, what a killed prune left aside).

The walk never follows a symlink: a symlinked file or folder is listed as skipped, and where it
points (read as text, resolved without touching the target) is recorded, so that the checkpoint a
``last.ckpt`` link names is never dropped. An HF folder is judged while walking: one that is not
an HF checkpoint by content is searched like any other folder.

>>> listing = find_checkpoints(Path("runs"))            # doctest: +SKIP
>>> [(f.rel, f.kind) for f in listing.found][:2]          # doctest: +SKIP
[('exp1/checkpoints/epoch_001.keras', 'keras'), ('out/checkpoint-500', 'transformers')]
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from runlens.checkpoints.hf_folder import inspect_hf_folder
from runlens.checkpoints.names import HF_KIND, checkpoint_kind, folder_kind
from runlens.checkpoints.removal import aside_original
from runlens.checkpoints.validate import inspect_file
from runlens.errors import RunlensError

CHECKPOINTS_FOLDER = "checkpoints"  # RUN/checkpoints/ holds RUN's checkpoints (bundled callbacks)

# table.attrs["skipped"] categories: files with a checkpoint's name that are not in the table
SKIPPED_SYMLINK = "symlink"  # never followed
SKIPPED_NOT_CHECKPOINT = "not a checkpoint"  # by content: another zip, an HDF5 data file, ...
SKIPPED_UNDETERMINED = "cannot tell"  # damaged so that nothing proves Keras wrote it
SKIPPED_SHARD = "shard"  # one part of a sharded save: not indexed
SKIPPED_ASIDE = "left aside"  # moved aside by a prune that was killed before it removed it
SKIPPED_UNREADABLE = "unreadable"  # a folder that cannot be listed, a FIFO, a file gone meanwhile
_SHARD = re.compile(r"(?P<base>.+)_\d{5}\.weights\.h5")  # saving_lib.ShardedH5IOStore's shard names


@dataclass(frozen=True)
class Found:
    """One checkpoint candidate: its path, path relative to the root ('/'-separated), kind, and
    (for a folder, judged while walking) its ``(identity, verdict)``."""

    path: str
    rel: str
    kind: str
    inspected: tuple[Any, Any] | None = None


@dataclass
class Listing:
    """What the walk found: candidates, skipped entries, and ``links`` (absolute, normalised
    target path -> the symlink pointing there)."""

    found: list[Found] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    links: dict[str, str] = field(default_factory=dict)


def skip(path: str, category: str, reason: str) -> dict[str, str]:
    """A ``table.attrs["skipped"]`` entry."""
    return {"path": path, "reason": reason, "category": category}


def run_of(rel: str) -> str:
    """The run a checkpoint at ``rel`` (relative to the root, '/'-separated) belongs to.

    >>> run_of("exp1/checkpoints/e_03.keras"), run_of("e_03.keras"), run_of("a/b/e_03.keras")
    ('exp1', '.', 'a/b')
    """
    parts = rel.split("/")[:-1]
    if parts and parts[-1] == CHECKPOINTS_FOLDER:
        parts = parts[:-1]
    return "/".join(parts) or "."


def inspect_found(found: list[Found]) -> list[Found]:
    """``found`` with each file not yet judged opened and checked
    (:func:`~runlens.checkpoints.validate.inspect_file`): what
    :func:`~runlens.checkpoints.index.checkpoints_table` does first, and a report's workers do
    to the walk's files while it replays the runs. Imports no pandas either
    (:func:`find_checkpoints`).

    >>> inspect_found([Found("no/such.keras", "no/such.keras", "keras")])[0].inspected[1].reason
    'cannot open: No such file or directory'
    """
    return [
        f if f.inspected is not None else replace(f, inspected=inspect_file(f.path, f.kind)) for f in found
    ]


def find_checkpoints(root: Path) -> Listing:
    """Every checkpoint candidate under ``root`` (a folder, or one checkpoint file or folder).

    The walk imports no pandas (nor does this module): a report runs it in a worker process.

    >>> find_checkpoints(Path("no/such/folder"))
    Traceback (most recent call last):
    runlens.errors.RunlensError: checkpoint path 'no/such/folder' does not exist; pass a checkpoint folder
    """
    if not root.exists():
        raise RunlensError(f"checkpoint path {str(root)!r} does not exist; pass a checkpoint folder")
    listing = Listing()
    if not root.is_dir() or (folder_kind(root.name) and not root.is_symlink()):
        _single(root, listing)
        return listing
    pending = [(str(root), "")]
    while pending:
        folder, rel = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            listing.skipped.append(
                skip(folder, SKIPPED_UNREADABLE, f"cannot list folder: {exc.strerror or exc}")
            )
            continue
        names = {entry.name for entry in entries}
        for entry in entries:
            entry_rel = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                _symlink(entry, listing)
            elif entry.is_dir(follow_symlinks=False):
                if _folder(entry, entry_rel, listing):
                    pending.append((entry.path, entry_rel))
            else:
                _file(entry, entry_rel, names, listing)
    listing.found.sort(key=lambda f: f.path)
    return listing


def _single(root: Path, listing: Listing) -> None:
    kind = folder_kind(root.name) if root.is_dir() else checkpoint_kind(root.name)
    if kind is None or root.is_symlink() or not (root.is_dir() or stat.S_ISREG(root.lstat().st_mode)):
        raise RunlensError(f"{str(root)!r} is not a checkpoint folder or checkpoint file")
    inspected = inspect_hf_folder(str(root)) if kind == HF_KIND else None
    listing.found.append(Found(str(root), root.name, kind, inspected))


def _symlink(entry: os.DirEntry, listing: Listing) -> None:
    try:
        target = os.readlink(entry.path)
    except OSError:
        target = None
    if target is not None:
        resolved = os.path.abspath(os.path.join(os.path.dirname(entry.path), target))
        listing.links.setdefault(resolved, entry.path)
    if entry.is_dir() or checkpoint_kind(entry.name) or folder_kind(entry.name):
        listing.skipped.append(skip(entry.path, SKIPPED_SYMLINK, "symlink: never followed"))


def _folder(entry: os.DirEntry, rel: str, listing: Listing) -> bool:
    """Record a folder that is a candidate or left out; True when it is to be searched."""
    original = aside_original(entry.name)
    if original is not None:
        listing.skipped.append(skip(entry.path, SKIPPED_ASIDE, _aside_folder_reason(entry.path, original)))
        return False
    if folder_kind(entry.name):
        identity, verdict = inspect_hf_folder(entry.path)
        if identity is not None and verdict.checkpoint is False:
            return True  # someone's folder that happens to be named checkpoint-N: look inside
        listing.found.append(Found(entry.path, rel, HF_KIND, (identity, verdict)))
        return False
    if checkpoint_kind(entry.name) == "lightning":
        listing.skipped.append(
            skip(
                entry.path,
                SKIPPED_SHARD,
                "a folder named like a Lightning checkpoint (a sharded DeepSpeed/FSDP save): not "
                "indexed, never deleted",
            )
        )
        return False
    return True


def _file(entry: os.DirEntry, rel: str, names: set[str], listing: Listing) -> None:
    if (original := aside_original(entry.name)) is not None:
        listing.skipped.append(
            skip(
                entry.path,
                SKIPPED_ASIDE,
                f"moved aside by a prune that was killed while removing {original!r}: "
                f"delete it, or rename it back to {original!r} to keep it",
            )
        )
        return
    kind = checkpoint_kind(entry.name)
    if not kind:
        return
    if not entry.is_file(follow_symlinks=False):
        listing.skipped.append(skip(entry.path, SKIPPED_UNREADABLE, "not a regular file: never opened"))
    elif (shard := _SHARD.fullmatch(entry.name)) and {
        f"{shard['base']}.weights.json",
        f"{shard['base']}.json",
    } & names:
        listing.skipped.append(
            skip(
                entry.path,
                SKIPPED_SHARD,
                f"a shard of the sharded checkpoint {shard['base']}.weights.json: not indexed, never deleted",
            )
        )
    else:
        listing.found.append(Found(entry.path, rel, kind))


def _aside_folder_reason(path: str, original: str) -> str:
    _, verdict = inspect_hf_folder(path)
    if verdict.checkpoint is True and verdict.valid:
        return (
            f"moved aside by a prune that was killed before it removed {original!r}: delete it, "
            f"or rename it back to {original!r} to keep it (it is whole)"
        )
    return (
        f"moved aside by a prune that was killed while removing {original!r}: partly removed, "
        "no longer a whole checkpoint; delete it"
    )
