"""Find the checkpoints under a folder: one row per file, with its epoch, metrics and validity.

>>> import runlens
>>> table = runlens.read_checkpoints("runs/", template="ckpt_{epoch:02d}_{val_loss:.4f}.keras")
... # doctest: +SKIP
>>> table[["run", "epoch", "val_loss", "valid"]]          # doctest: +SKIP
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from runlens.checkpoints.join import join_epoch_metrics, layout_logdir
from runlens.checkpoints.names import ParsedName, Template, checkpoint_kind, guess_name
from runlens.checkpoints.removal import aside_original
from runlens.checkpoints.validate import inspect_file
from runlens.errors import RunlensError
from runlens.name_columns import NAME_DTYPE
from runlens.times import utc_from_local

LEADING_COLUMNS = ["path", "run", "epoch"]
IDENTITY_COLUMNS = ["device", "inode", "ctime"]  # with size_bytes and mtime: which file, unchanged
TRAILING_COLUMNS = [
    "size_bytes",
    "mtime",
    *IDENTITY_COLUMNS,
    "kind",
    "valid",
    "invalid_reason",
    "keras_version",
    "saved_at",
    "metrics_from",
]
CHECKPOINTS_FOLDER = "checkpoints"  # RUN/checkpoints/ holds RUN's checkpoints (bundled callbacks)

# table.attrs["skipped"] categories: files with a checkpoint's name that are not in the table
SKIPPED_SYMLINK = "symlink"  # never followed
SKIPPED_NOT_CHECKPOINT = "not a checkpoint"  # by content: another zip, an HDF5 data file, ...
SKIPPED_UNDETERMINED = "cannot tell"  # damaged so that nothing proves Keras wrote it
SKIPPED_SHARD = "shard"  # one part of a sharded .weights.json checkpoint: not indexed
SKIPPED_ASIDE = "left aside"  # moved aside by a prune that was killed before it removed it
SKIPPED_UNREADABLE = "unreadable"  # a folder that cannot be listed, a FIFO, a file gone meanwhile
_SHARD = re.compile(r"(?P<base>.+)_\d{5}\.weights\.h5")  # saving_lib.ShardedH5IOStore's shard names


def read_checkpoints(
    path: str | os.PathLike[str],
    *,
    template: str | Sequence[str] | None = None,
    logdir: str | os.PathLike[str] | None = None,
    epochs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per Keras checkpoint (``.keras``, ``.weights.h5``, ``.h5``) under ``path``.

    A file is a checkpoint only when its content says so (:mod:`runlens.checkpoints.validate`):
    a ``.keras`` zip holding Keras' ``metadata.json``/``config.json``, an HDF5 file with the
    attributes or layout Keras writes. Other files with such names (``predictions_001.h5``, another
    zip) are not in the table, and nothing runlens does ever touches them.

    Args:
        path: a folder (searched recursively, never through symlinks) or one checkpoint file.
        template: the ModelCheckpoint ``filepath`` (or several) the files were written with, e.g.
            ``"ckpt_{epoch:02d}_{val_loss:.4f}.keras"``; names are parsed back through it. Without
            one, common patterns are recognised (:func:`runlens.checkpoints.names.guess_name`).
        logdir: TensorBoard logs of the same runs; each checkpoint gets its epoch's full-precision
            metrics from ``runlens.read_epochs(logdir)``. Found on its own for the bundled layout
            (``RUN/checkpoints`` next to ``RUN/train`` and ``RUN/validation``).
        epochs: an epoch frame already read (``runlens.read_epochs(...)``); used instead of logdir.

    Returns:
        Columns ``path, run, epoch`` (0-based ``Int64``, ``<NA>`` when the name could not be
        placed), ``batch`` when a template has ``{batch}``, one ``Float64`` column per metric,
        ``size_bytes, mtime`` (UTC), ``device, inode`` (``uint64``) and ``ctime`` (UTC: with
        size and mtime, the identity :func:`runlens.apply_prune` checks the file against),
        ``kind`` (``keras``/``weights``/``h5``), ``valid``, ``invalid_reason``, ``keras_version``,
        ``saved_at`` (UTC, from a ``.keras``'s metadata, which holds local time without a zone: read in
        this machine's zone) and ``metrics_from`` (``logs`` when the
        epoch was found in the logs, ``name`` otherwise). ``run`` is the folder holding the file
        relative to ``path`` ('.' for ``path`` itself), or that folder's parent when it is named
        ``checkpoints``. Files with a checkpoint's name that are not in the table are listed in
        ``table.attrs["skipped"]`` as ``{"path", "reason", "category"}`` dicts; ``category`` is
        one of the ``SKIPPED_*`` constants of this module (a symlink, not a checkpoint, damaged
        so that nothing proves Keras wrote it, a shard, left aside by a killed prune, unreadable).

    Example:
        >>> table = read_checkpoints("runs/", logdir="runs/")            # doctest: +SKIP
        >>> table[table.epoch.isna()].path                                # names not placed # doctest: +SKIP
    """
    root = Path(path)
    if not root.exists():
        raise RunlensError(f"checkpoint path {str(root)!r} does not exist; pass a checkpoint folder")
    templates = [Template(t) for t in ([template] if isinstance(template, str) else template or [])]
    files, skipped = _find(root)
    rows = []
    for file, rel in files:
        row = _row(file, rel, templates)
        if "category" in row:
            skipped.append(row)
        else:
            rows.append(row)
    table = _frame(rows)
    if epochs is None:
        folder = root if root.is_dir() else root.parent
        source = logdir if logdir is not None else layout_logdir(folder, table["path"])
        epochs = _read_epochs(source, explicit=logdir is not None) if source is not None else None
    if epochs is not None:
        table = join_epoch_metrics(table, epochs)
    metrics = [c for c in table.columns if c not in {*LEADING_COLUMNS, "batch", *TRAILING_COLUMNS}]
    batch = ["batch"] if "batch" in table.columns else []
    table = table[[*LEADING_COLUMNS, *batch, *sorted(metrics), *TRAILING_COLUMNS]]
    table = table.sort_values(["run", "epoch", "path"], na_position="last", ignore_index=True)
    table.attrs["skipped"] = sorted(skipped, key=lambda s: s["path"])
    return table


def _skip(path: str, category: str, reason: str) -> dict[str, str]:
    return {"path": path, "reason": reason, "category": category}


def _find(root: Path) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """(path, path relative to root) of every regular file with a checkpoint's name; symlinks,
    shards, files a killed prune left aside and other file types go to skipped."""
    if not root.is_dir():
        kind = checkpoint_kind(root.name)
        if kind is None or not stat.S_ISREG(root.lstat().st_mode):
            raise RunlensError(f"{str(root)!r} is not a checkpoint folder or checkpoint file")
        return [(str(root), root.name)], []
    files, skipped = [], []
    pending = [(str(root), "")]
    while pending:
        folder, rel = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            skipped.append(_skip(folder, SKIPPED_UNREADABLE, f"cannot list folder: {exc.strerror or exc}"))
            continue
        names = {entry.name for entry in entries}
        for entry in entries:
            entry_rel = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                if entry.is_dir() or checkpoint_kind(entry.name):
                    skipped.append(_skip(entry.path, SKIPPED_SYMLINK, "symlink: never followed"))
            elif entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, entry_rel))
            elif (original := aside_original(entry.name)) is not None:
                skipped.append(
                    _skip(
                        entry.path,
                        SKIPPED_ASIDE,
                        f"moved aside by a prune that was killed while removing {original!r}: "
                        f"delete it, or rename it back to {original!r} to keep it",
                    )
                )
            elif not checkpoint_kind(entry.name):
                continue
            elif not entry.is_file(follow_symlinks=False):
                skipped.append(_skip(entry.path, SKIPPED_UNREADABLE, "not a regular file: never opened"))
            elif (shard := _SHARD.fullmatch(entry.name)) and {
                f"{shard['base']}.weights.json",
                f"{shard['base']}.json",
            } & names:
                skipped.append(
                    _skip(
                        entry.path,
                        SKIPPED_SHARD,
                        f"a shard of the sharded checkpoint {shard['base']}.weights.json: not indexed, never deleted",
                    )
                )
            else:
                files.append((entry.path, entry_rel))
    return sorted(files), skipped


def run_of(rel: str) -> str:
    """The run a checkpoint at ``rel`` (relative to the root, '/'-separated) belongs to.

    >>> run_of("exp1/checkpoints/e_03.keras"), run_of("e_03.keras"), run_of("a/b/e_03.keras")
    ('exp1', '.', 'a/b')
    """
    parts = rel.split("/")[:-1]
    if parts and parts[-1] == CHECKPOINTS_FOLDER:
        parts = parts[:-1]
    return "/".join(parts) or "."


def _row(path: str, rel: str, templates: list[Template]) -> dict[str, object]:
    """The table row of the checkpoint at ``path``, or its skipped entry (with a ``category``)."""
    kind = checkpoint_kind(rel)
    identity, verdict = inspect_file(path, kind)
    if identity is None:  # gone, or could not be opened or read
        return _skip(path, SKIPPED_UNREADABLE, f"{verdict.reason}; never deleted")
    if verdict.checkpoint is False:
        return _skip(path, SKIPPED_NOT_CHECKPOINT, f"{verdict.reason}; never touched")
    if verdict.checkpoint is None:
        return _skip(path, SKIPPED_UNDETERMINED, f"{verdict.reason}; never deleted")
    parsed = _parse(rel, templates)
    return {
        "path": path,
        "run": run_of(rel),
        "epoch": parsed.epoch,
        **({"batch": parsed.batch} if parsed.batch is not None else {}),
        **parsed.metrics,
        "size_bytes": identity.size,
        "mtime": pd.Timestamp(identity.mtime_ns, unit="ns", tz="UTC"),
        "device": identity.device,
        "inode": identity.inode,
        "ctime": pd.Timestamp(identity.ctime_ns, unit="ns", tz="UTC"),
        "kind": kind,
        "valid": verdict.valid,
        "invalid_reason": verdict.reason,
        "keras_version": verdict.keras_version,
        "saved_at": verdict.saved_at,
    }


def _parse(rel: str, templates: list[Template]) -> ParsedName:
    for template in templates:
        parsed = template.parse(rel)
        if parsed is not None:
            return parsed
    if templates:
        return ParsedName(epoch=None)  # the user's templates are the truth: no guessing
    return guess_name(rel)


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    # dtype=object first: paths and run names are kept as the OS gives them (runlens.textsafe),
    # which pandas' default (Arrow) strings cannot hold when a name is not UTF-8
    table = pd.DataFrame(rows, columns=list(dict.fromkeys(k for r in rows for k in r)) or None, dtype=object)
    for column in LEADING_COLUMNS + TRAILING_COLUMNS:
        if column not in table.columns:
            table[column] = pd.Series(dtype=object)
    typed = {
        "epoch": "Int64",
        "batch": "Int64",
        "size_bytes": "int64",
        "device": "uint64",
        "inode": "uint64",
        "valid": "bool",
    }
    for column, dtype in typed.items():
        if column in table.columns:
            table[column] = table[column].astype(dtype)
    for column in ("mtime", "ctime"):
        table[column] = pd.to_datetime(table[column], utc=True)
    table["saved_at"] = pd.to_datetime([utc_from_local(t) for t in table["saved_at"]], utc=True).as_unit("ns")
    metrics = [c for c in table.columns if c not in {*LEADING_COLUMNS, "batch", *TRAILING_COLUMNS}]
    for column in metrics:
        table[column] = table[column].astype("Float64")
    named = table[metrics].notna().any(axis=1) if metrics else pd.Series(False, index=table.index)
    table["metrics_from"] = pd.Series("name", index=table.index).where(named)
    for column in ("path", "run"):
        table[column] = table[column].astype(NAME_DTYPE)
    for column in ("kind", "invalid_reason", "keras_version", "metrics_from"):
        table[column] = table[column].astype("str")
    return table


def _read_epochs(logdir: str | os.PathLike[str], *, explicit: bool) -> pd.DataFrame | None:
    from runlens.epochs import read_epochs

    try:
        return read_epochs(logdir)
    except RunlensError:
        if explicit:
            raise
        return None  # the layout looked like logs but holds none: keep the names' metrics
