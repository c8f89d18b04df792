"""Find the checkpoints under a folder: one row per file, with its epoch, metrics and validity.

>>> import runlens
>>> table = runlens.read_checkpoints("runs/", template="ckpt_{epoch:02d}_{val_loss:.4f}.keras")
... # doctest: +SKIP
>>> table[["run", "epoch", "val_loss", "valid"]]          # doctest: +SKIP
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from runlens.checkpoints.join import join_epoch_metrics, layout_logdir
from runlens.checkpoints.names import ParsedName, Template, checkpoint_kind, guess_name
from runlens.checkpoints.validate import check_checkpoint
from runlens.errors import RunlensError
from runlens.name_columns import NAME_DTYPE
from runlens.times import utc_from_local

LEADING_COLUMNS = ["path", "run", "epoch"]
TRAILING_COLUMNS = [
    "size_bytes",
    "mtime",
    "kind",
    "valid",
    "invalid_reason",
    "keras_version",
    "saved_at",
    "metrics_from",
]
CHECKPOINTS_FOLDER = "checkpoints"  # RUN/checkpoints/ holds RUN's checkpoints (bundled callbacks)


def read_checkpoints(
    path: str | os.PathLike[str],
    *,
    template: str | Sequence[str] | None = None,
    logdir: str | os.PathLike[str] | None = None,
    epochs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per checkpoint file (``.keras``, ``.weights.h5``, ``.h5``) under ``path``.

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
        ``size_bytes, mtime`` (UTC), ``kind`` (``keras``/``weights``/``h5``), ``valid``,
        ``invalid_reason``, ``keras_version``, ``saved_at`` (UTC, from a ``.keras``'s metadata, which
        holds local time without a zone: read in this machine's zone) and
        ``metrics_from`` (``logs`` when the epoch was found in the logs, ``name`` otherwise).
        ``run`` is the folder holding the file relative to ``path`` ('.' for ``path`` itself), or
        that folder's parent when it is named ``checkpoints``. Symlinks are never followed; they
        are listed in ``table.attrs["skipped"]`` as ``{"path", "reason"}`` dicts.

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
        try:
            rows.append(_row(file, rel, templates))
        except FileNotFoundError:  # deleted or renamed since the folder was listed
            skipped.append({"path": file, "reason": "disappeared while reading"})
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
    table.attrs["skipped"] = skipped
    return table


def _find(root: Path) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """(path, path relative to root) of every regular checkpoint file; symlinks go to skipped."""
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
            skipped.append({"path": folder, "reason": f"cannot list folder: {exc.strerror or exc}"})
            continue
        for entry in entries:
            entry_rel = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_symlink():
                if entry.is_dir() or checkpoint_kind(entry.name):
                    skipped.append({"path": entry.path, "reason": "symlink: never followed"})
            elif entry.is_dir(follow_symlinks=False):
                pending.append((entry.path, entry_rel))
            elif entry.is_file(follow_symlinks=False) and checkpoint_kind(entry.name):
                files.append((entry.path, entry_rel))
    return sorted(files), sorted(skipped, key=lambda s: s["path"])


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
    info = os.lstat(path)
    kind = checkpoint_kind(rel)
    parsed = _parse(rel, templates)
    verdict = check_checkpoint(path, kind)
    return {
        "path": path,
        "run": run_of(rel),
        "epoch": parsed.epoch,
        **({"batch": parsed.batch} if parsed.batch is not None else {}),
        **parsed.metrics,
        "size_bytes": info.st_size,
        "mtime": pd.Timestamp(info.st_mtime_ns, unit="ns", tz="UTC"),
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
    typed = {"epoch": "Int64", "batch": "Int64", "size_bytes": "int64", "valid": "bool"}
    for column, dtype in typed.items():
        if column in table.columns:
            table[column] = table[column].astype(dtype)
    table["mtime"] = pd.to_datetime(table["mtime"], utc=True)
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
