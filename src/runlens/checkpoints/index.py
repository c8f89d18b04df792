"""Find the checkpoints under a folder: one row per checkpoint, with its epoch, metrics and validity.

>>> import runlens
>>> table = runlens.read_checkpoints("runs/", template="ckpt_{epoch:02d}_{val_loss:.4f}.keras")
... # doctest: +SKIP
>>> table[["run", "epoch", "val_loss", "valid"]]          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from runlens.checkpoints.find import (
    SKIPPED_ASIDE,
    SKIPPED_NOT_CHECKPOINT,
    SKIPPED_SHARD,
    SKIPPED_SYMLINK,
    SKIPPED_UNDETERMINED,
    SKIPPED_UNREADABLE,
    Found,
    Listing,
    find_checkpoints,
    inspect_found,
    run_of,
    skip,
)
from runlens.checkpoints.folders import FolderIdentity
from runlens.checkpoints.framework_state import best_records, pins
from runlens.checkpoints.join import join_logged, layout_logdir, lightning_logdir
from runlens.checkpoints.names import (
    HF_KIND,
    KERAS_KINDS,
    ParsedName,
    Template,
    guess_name,
    hf_step,
    lightning_name,
)
from runlens.checkpoints.validate import Validity
from runlens.errors import RunlensError
from runlens.name_columns import NAME_DTYPE
from runlens.processes import Ahead, can_start_workers, started_workers
from runlens.times import utc_from_local

__all__ = [
    "SKIPPED_ASIDE",
    "SKIPPED_NOT_CHECKPOINT",
    "SKIPPED_SHARD",
    "SKIPPED_SYMLINK",
    "SKIPPED_UNDETERMINED",
    "SKIPPED_UNREADABLE",
    "read_checkpoints",
    "run_of",
]

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
    "pinned",
]
# columns only there when some row has them: a template's {batch}, the global step of Lightning and
# HF checkpoints, and the digest that is part of a checkpoint folder's identity
OPTIONAL_COLUMNS = ["batch", "step", "content_digest"]


def read_checkpoints(
    path: str | os.PathLike[str],
    *,
    template: str | Sequence[str] | None = None,
    logdir: str | os.PathLike[str] | None = None,
    epochs: pd.DataFrame | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """One row per checkpoint under ``path``: Keras files (``.keras``, ``.weights.h5``, ``.h5``),
    Lightning files (``.ckpt``) and HF Trainer folders (``checkpoint-N/``, one row per folder).

    A file or folder is a checkpoint only when its content says so
    (:mod:`runlens.checkpoints.validate`): a ``.keras`` zip holding Keras' ``metadata.json``/
    ``config.json``, an HDF5 file with the attributes or layout Keras writes, a ``torch.save`` zip
    holding Lightning's checkpoint dict (read without running its pickle), a folder whose
    ``trainer_state.json`` is the HF Trainer's. Other files with such names (``predictions_001.h5``,
    another zip, a plain ``torch.save`` of a state dict) are not in the table, and nothing runlens
    does ever touches them.

    Args:
        path: a folder (searched recursively, never through symlinks) or one checkpoint.
        template: the ModelCheckpoint ``filepath`` (or several) the files were written with, e.g.
            ``"ckpt_{epoch:02d}_{val_loss:.4f}.keras"``; names are parsed back through it. Without
            one, common patterns are recognised (:func:`runlens.checkpoints.names.guess_name`;
            Lightning's ``key=value`` names by :func:`~runlens.checkpoints.names.lightning_name`).
        logdir: TensorBoard logs of the same runs: each Keras checkpoint gets its epoch's
            full-precision metrics from ``runlens.read_epochs(logdir)``, each Lightning checkpoint
            those of the validation check it was saved after (``runlens.read_evals``). Found on its
            own for the bundled layout (``RUN/checkpoints`` next to ``RUN/train`` and
            ``RUN/validation``) and Lightning's (``version_N/checkpoints`` next to its event files).
        epochs: an epoch frame already read (``runlens.read_epochs(...)``) or an evaluation frame
            (``runlens.read_evals(...)``); used instead of logdir.
        workers: processes opening and checking the files found (a Lightning ``.ckpt`` takes a
            few ms); default: every core once :data:`PARALLEL_MIN_FILES` are found. 1: all here.
            The listing comes first either way, then every file's content and identity.

    Returns:
        Columns ``path, run, epoch`` (0-based ``Int64``, ``<NA>`` when unknown: Keras' from the
        name, Lightning's ``current_epoch`` and HF's from inside the checkpoint), ``batch`` when
        a template has ``{batch}``, ``step`` (the global step, ``Int64``) when there are
        Lightning or HF checkpoints, one ``Float64`` column per metric, ``size_bytes, mtime``
        (UTC), ``device, inode`` (``uint64``) and ``ctime`` (UTC: with size and mtime, the
        identity :func:`runlens.apply_prune` checks the file against; for a folder, its device and
        inode, the total size of its files, their newest mtime and ctime, and ``content_digest``),
        ``kind`` (``keras``/``weights``/``h5``/``lightning``/``transformers``), ``valid``,
        ``invalid_reason``, ``keras_version``, ``saved_at`` (UTC, from a ``.keras``'s metadata,
        which holds local time without a zone: read in this machine's zone), ``metrics_from``
        (``logs`` when the logs had the checkpoint's evaluation, ``trainer_state`` for an HF
        folder's own ``log_history``, ``checkpoint`` for the score Lightning's ModelCheckpoint
        stored in the file, ``name`` otherwise) and ``pinned`` (why a prune never drops it, or
        ``""``: see :mod:`runlens.checkpoints.framework_state`). ``run`` is the folder holding
        the checkpoint relative to ``path`` ('.' for ``path`` itself), or that folder's parent
        when it is named ``checkpoints``. Files with a checkpoint's name that are not in the
        table are listed in ``table.attrs["skipped"]`` as ``{"path", "reason", "category"}``
        dicts; ``category`` is one of the ``SKIPPED_*`` constants of this module (a symlink, not
        a checkpoint, damaged so that nothing proves its framework wrote it, a shard, left aside
        by a killed prune, unreadable). ``table.attrs["framework_best"]`` holds what the newest
        Lightning or HF checkpoint of each series records as best
        (:func:`runlens.checkpoints.framework_state.best_records`).

    Example:
        >>> table = read_checkpoints("runs/", logdir="runs/")            # doctest: +SKIP
        >>> table[table.epoch.isna()].path                                # names not placed # doctest: +SKIP
    """
    root = Path(path)
    listing = _inspected(find_checkpoints(root), workers)
    return checkpoints_table(root, listing, template=template, logdir=logdir, epochs=epochs)


PARALLEL_MIN_FILES = 200  # fewer candidates are checked faster here than a pool starts


def _inspected(listing: Listing, workers: int | None) -> Listing:
    """``listing`` with its files checked (:func:`inspect_found`) in worker processes, in parts
    and in order, when there are enough of them and this process may start workers; else as it
    is (``checkpoints_table`` checks them here)."""
    count = (os.cpu_count() or 1) if workers is None and len(listing.found) >= PARALLEL_MIN_FILES else workers
    if not count or count < 2 or len(listing.found) < 2 or not can_start_workers():
        return listing
    with started_workers(min(count, len(listing.found))) as pool:
        return replace(listing, found=Ahead(pool, inspect_found, listing.found, per_task=1).joined())


def checkpoints_table(
    root: Path,
    listing: Listing,
    *,
    template: str | Sequence[str] | None = None,
    logdir: str | os.PathLike[str] | None = None,
    epochs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`read_checkpoints` of ``root`` from its walk (``listing``, from
    :func:`~runlens.checkpoints.find.find_checkpoints`, which a report runs in a worker process
    while it reads): each candidate checked by content, named, pinned and joined to its logs."""
    templates = [Template(t) for t in ([template] if isinstance(template, str) else template or [])]
    skipped, rows, contents = listing.skipped, [], {}
    for found in inspect_found(listing.found):  # those a report's workers checked are not read again
        row, content = _row(found, templates)
        if "category" in row:
            skipped.append(row)
            continue
        if content is not None:
            contents[len(rows)] = content
        rows.append(row)
    table = _frame(rows)
    table["pinned"] = pins(table, contents, listing.links)
    records = best_records(table, contents)
    table = table_order(_join_logs(table, root, logdir, epochs))
    table.attrs["skipped"] = sorted(skipped, key=lambda s: s["path"])
    table.attrs["framework_best"] = records
    return table


def table_order(table: pd.DataFrame) -> pd.DataFrame:
    """The table's columns and rows in :func:`read_checkpoints`' order (metric columns by name,
    rows by run, epoch and path), e.g. after logs were joined to it
    (:func:`runlens.checkpoints.join.join_logged`)."""
    fixed = {*LEADING_COLUMNS, *OPTIONAL_COLUMNS, *TRAILING_COLUMNS}
    metrics = [c for c in table.columns if c not in fixed]
    optional = [c for c in ("batch", "step") if c in table.columns]
    digest = ["content_digest"] if "content_digest" in table.columns else []
    table = table[[*LEADING_COLUMNS, *optional, *sorted(metrics), *TRAILING_COLUMNS, *digest]]
    return table.sort_values(["run", "epoch", "path"], na_position="last", ignore_index=True)


def _join_logs(
    table: pd.DataFrame, root: Path, logdir: str | os.PathLike[str] | None, epochs: pd.DataFrame | None
) -> pd.DataFrame:
    """The logged metrics joined in (see :mod:`runlens.checkpoints.join`)."""
    if epochs is not None:
        return join_logged(table, epochs)
    lightning = table["kind"] == "lightning"
    if logdir is not None:
        logs = _read_logs(logdir, explicit=True, evals=bool(lightning.any()))
        return join_logged(table, logs) if logs is not None else table
    folder = root if root.is_dir() else root.parent
    keras = table["kind"].isin(KERAS_KINDS)
    source = layout_logdir(folder, table.loc[keras, "path"]) if keras.any() else None
    logs = _read_logs(source, explicit=False, evals=False) if source is not None else None
    table = join_logged(table, logs) if logs is not None else table
    source = lightning_logdir(folder, table.loc[lightning.to_numpy(), "path"]) if lightning.any() else None
    logs = _read_logs(source, explicit=False, evals=True) if source is not None else None
    return join_logged(table, logs) if logs is not None else table


def _row(found: Found, templates: list[Template]) -> tuple[dict[str, object], object]:
    """The table row of a checkpoint candidate (or its skipped entry, with a ``category``), and
    what runlens read from inside it (a framework's record, or None)."""
    kind = found.kind
    identity, verdict = found.inspected
    if identity is None:  # gone, or could not be opened or read
        return skip(found.path, SKIPPED_UNREADABLE, f"{verdict.reason}; never deleted"), None
    if verdict.checkpoint is False:
        return skip(found.path, SKIPPED_NOT_CHECKPOINT, f"{verdict.reason}; never touched"), None
    if verdict.checkpoint is None:
        return skip(found.path, SKIPPED_UNDETERMINED, f"{verdict.reason}; never deleted"), None
    parsed, step, metrics, source = _described(found.rel, kind, verdict, templates)
    row: dict[str, object] = {
        "path": found.path,
        "run": run_of(found.rel),
        "epoch": parsed.epoch,
        **({"batch": parsed.batch} if parsed.batch is not None else {}),
        **({"step": step} if kind not in KERAS_KINDS else {}),
        **metrics,
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
        "metrics_from": source,
        **({"content_digest": identity.digest} if isinstance(identity, FolderIdentity) else {}),
    }
    return row, verdict.content


def _described(
    rel: str, kind: str, verdict: Validity, templates: list[Template]
) -> tuple[ParsedName, int | None, dict[str, float], str | None]:
    """(epoch and name metrics, global step, metrics, where the metrics came from when not the
    name): Keras from the name; Lightning's epoch and step from inside the file, metrics from
    the name and ModelCheckpoint's stored score; HF's all from ``trainer_state.json``."""
    if kind in KERAS_KINDS:
        parsed = _parse(rel, templates)
        return parsed, None, parsed.metrics, None
    if kind == HF_KIND:
        metrics = dict(verdict.content.metrics) if verdict.content is not None else {}
        epoch = ParsedName(epoch=verdict.epoch)
        return epoch, hf_step(rel.rsplit("/", 1)[-1]), metrics, "trainer_state" if metrics else None
    named, named_step = lightning_name(rel)
    matched = next((p for p in (t.parse(rel) for t in templates) if p is not None), None)
    metrics = dict(matched.metrics if matched is not None else named.metrics)
    own = verdict.content.own_scores(rel.rsplit("/", 1)[-1]) if verdict.content is not None else {}
    metrics.update(own)
    epoch = verdict.epoch if verdict.epoch is not None else named.epoch
    step = verdict.step if verdict.step is not None else named_step
    return ParsedName(epoch=epoch), step, metrics, "checkpoint" if own else None


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
        "step": "Int64",
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
    fixed = {*LEADING_COLUMNS, *OPTIONAL_COLUMNS, *TRAILING_COLUMNS}
    metrics = [c for c in table.columns if c not in fixed]
    for column in metrics:
        table[column] = table[column].astype("Float64")
    named = table[metrics].notna().any(axis=1) if metrics else pd.Series(False, index=table.index)
    given = table["metrics_from"]
    table["metrics_from"] = given.where(given.notna(), pd.Series("name", index=table.index).where(named))
    for column in ("path", "run"):
        table[column] = table[column].astype(NAME_DTYPE)
    for column in (
        "kind",
        "invalid_reason",
        "keras_version",
        "metrics_from",
        *(["content_digest"] if "content_digest" in table.columns else []),
    ):
        table[column] = table[column].astype("str")
    return table


def _read_logs(logdir: str | os.PathLike[str], *, explicit: bool, evals: bool) -> pd.DataFrame | None:
    """The epoch frame of ``logdir`` (``evals``: its evaluation frame, which serves Lightning
    checkpoints too); None when logs found on their own hold none (``explicit``: raise)."""
    import warnings

    from runlens.epochs import read_epochs
    from runlens.errors import RunlensWarning
    from runlens.evals import read_evals

    try:
        if explicit:
            return read_evals(logdir) if evals else read_epochs(logdir)
        with warnings.catch_warnings():  # logs found on their own: runs without evaluations are no news
            warnings.simplefilter("ignore", RunlensWarning)
            return read_evals(logdir) if evals else read_epochs(logdir)
    except RunlensError:
        if explicit:
            raise
        return None  # the layout looked like logs but holds none: keep the names' metrics
