"""The report's checkpoints part: per run, what exists and what a keep-best/keep-last plan keeps.

A run's checkpoints are the files under ``RUN/checkpoints/`` or, when there are none, directly in
the run folder (``runlens.read_checkpoints`` gives both the run's name). The plan is a dry run of
:func:`runlens.plan_prune` with ``KeepBestK(keep_best, monitor)`` and ``KeepLastN(keep_last)``;
a plan the checkpoint layer refuses (or cannot make) becomes a note on that run, never a failure
of the report. Files modified within ``min_age`` are kept unranked, except in runs whose
``runlens.json`` says training ended (:func:`runlens.manifest.ended_runs`). Files named like
checkpoints that are not Keras checkpoints by content (a ``predictions_001.h5``) are named in one
warning line; other skipped files get a warning each. Lightning ``.ckpt`` files and HF
``checkpoint-N/`` folders are planned the same way; where the framework's own best (in its newest
checkpoint) is not the plan's #1 by the same metric, a warning says so.

>>> summaries, warnings = checkpoint_summaries("sample_logs", epochs, runs=["overfits"],
...     rules=[KeepBestK(3, "val_loss"), KeepLastN(1)], min_age=300,
...     restored={"overfits": 6})                                      # doctest: +SKIP
>>> summaries["overfits"].bytes_to_free                                # doctest: +SKIP
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from runlens.checkpoints.find import CHECKPOINTS_FOLDER
from runlens.checkpoints.index import (
    SKIPPED_NOT_CHECKPOINT,
    checkpoints_table,
    read_checkpoints,
    table_order,
)
from runlens.checkpoints.join import join_logged
from runlens.checkpoints.names import HF_KIND
from runlens.checkpoints.plan import plan_prune
from runlens.checkpoints.retention import RetentionRule
from runlens.errors import RunlensError
from runlens.manifest import ended_runs
from runlens.name_columns import NAME_DTYPE, as_names
from runlens.processes import Ahead
from runlens.report.model import CheckpointSummary

_NAMED = 5  # non-checkpoint files named in the report's one line about them


def read_report_checkpoints(
    root: str | os.PathLike[str], walk: Future | None = None, inspected: Ahead | None = None
) -> pd.DataFrame | str:
    """Every checkpoint under ``root`` as :func:`runlens.read_checkpoints` gives it without logs
    (one listing and one validation of every checkpoint for the whole report: each framework part
    joins its own runs' logs in :func:`checkpoint_summaries`), or the report's note saying why
    none could be read. ``walk``: the walk of ``root``
    (:func:`~runlens.checkpoints.find.find_checkpoints`) started in a worker, else it is walked here;
    ``inspected``: its files checked in the workers (:func:`~runlens.checkpoints.find.
    inspect_found` over parts of the walk's ``found``, in order), else they are checked here.

    >>> read_report_checkpoints("no/such/folder")
    "checkpoints not read: checkpoint path 'no/such/folder' does not exist; pass a checkpoint folder"
    """
    try:
        if walk is None:
            return read_checkpoints(root, epochs=_NO_LOGS)
        listing = walk.result()
        if inspected is not None:
            listing = replace(listing, found=inspected.joined())
        return checkpoints_table(Path(root), listing, epochs=_NO_LOGS)
    except RunlensError as exc:
        return f"checkpoints not read: {exc}"


# An epoch frame without rows: read_checkpoints joins nothing (and does not look for logs itself).
_NO_LOGS = pd.DataFrame({"run": pd.Series([], dtype=object), "epoch": pd.Series([], dtype="Int64")})


def checkpoint_summaries(
    root: str | os.PathLike[str],
    epochs: pd.DataFrame,
    *,
    runs: Sequence[str],
    rules: Sequence[RetentionRule],
    min_age: float,
    restored: dict[str, int | None],
    elsewhere: Sequence[str] = (),
    note_skipped: bool = True,
    listed: pd.DataFrame | str | None = None,
    ended: dict[str, bool] | None = None,
) -> tuple[dict[str, CheckpointSummary], list[str]]:
    """``{run: CheckpointSummary}`` for the runs with checkpoints, and warnings for the report.

    ``elsewhere``: runs of the logdir reported apart (another framework's part of the report):
    their checkpoints are theirs, not "in folders that hold no logged run". ``note_skipped``: say
    which files were skipped (once per report: its first part). ``listed``: what
    :func:`read_report_checkpoints` gave for ``root`` (read here when None), shared by the parts
    of one report; ``epochs`` (this part's frame) is joined to it as
    ``read_checkpoints(root, epochs=epochs)`` would have."""
    if listed is None:
        listed = read_report_checkpoints(root)
    if isinstance(listed, str):
        return {}, [listed]
    if listed.empty and not listed.attrs.get("skipped"):
        return {}, []  # nothing found, nothing skipped: nothing to plan or say (a sweep's logs alone)
    table = _with_logs(listed, epochs)
    warnings = _skipped_notes(table.attrs.get("skipped", []), root) if note_skipped else []
    owners = hf_logged_runs(table, [*runs, *elsewhere], epochs)
    # by hand, not Series.map: a dict's keys would become an Arrow index, which cannot hold a
    # name that is not UTF-8 (runlens.textsafe)
    table["run"] = pd.array([owners[run] for run in table["run"]], dtype=NAME_DTYPE)
    for record in table.attrs.get("framework_best", []):  # compared with the plan run by run
        record["run"] = owners.get(record["run"], record["run"])
    others = sorted(set(table["run"]) - set(runs) - set(elsewhere))
    if others:
        count = int(table["run"].isin(others).sum())
        warnings.append(
            f"{count} checkpoint file(s) in folders that hold no logged run, left out: {', '.join(others)}"
        )
    now = pd.Timestamp.now(tz="UTC")
    selected, codes, names = _own_rows(table, runs)
    present = set(names)
    # after the listing (see ended_runs); only runs with checkpoints can be settled
    wanted, known = [run for run in runs if run in present], ended or {}
    settled = {run for run in wanted if known.get(run)} | ended_runs(
        root, [r for r in wanted if r not in known]
    )
    min_ages = {run: 0.0 if run in settled else min_age for run in wanted}
    # Lightning's and the HF Trainer's records of their best, compared with the plan: the runs',
    # in their order (the order each run's own plan names them in)
    records: dict[str, list[dict]] = {}
    for record in selected.attrs.get("framework_best", []):
        records.setdefault(record["run"], []).append(record)
    selected.attrs = {"framework_best": [record for run in wanted for record in records.get(run, [])]}
    combined = _plan_at_once(selected, len(wanted), rules, min_age, now, settled)
    if combined is not None:
        return _summaries(combined, root, min_ages, now, restored), warnings + _disagreements(combined)
    out = {}
    # each run's plan compares its own records (a frame per run inheriting every run's records
    # costs a sweep's plans a copy of them per pandas operation)
    selected.attrs = {}
    by_run = {names[code]: rows for code, rows in selected.groupby(codes, sort=False)}
    for run in wanted:
        rows = by_run[run]
        rows.attrs = {"framework_best": records.get(run, [])}
        try:
            plan = plan_prune(rows, rules=rules, min_age=min_ages[run], now=now)
        except RunlensError as exc:  # PruneRefused too: the plan becomes a note
            out[run] = _summaries(rows, root, min_ages, now, restored)[run]
            out[run].note = str(exc)
            continue
        out[run] = _summaries(plan, root, min_ages, now, restored)[run]
        warnings += _disagreements(plan)
    return out, warnings


def _own_rows(table: pd.DataFrame, runs: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """The rows of ``runs``' checkpoints: a run's files in its ``checkpoints/`` folder when it has
    any there, else all of its files; with each row's run as a code into the names of the runs
    that have rows. One pass over the table (a sweep's 2,000 runs: no frame per run)."""
    codes, names = pd.factorize(as_names(table["run"]).astype(object), sort=False)
    in_folder = np.array(
        [os.path.basename(os.path.dirname(path)) == CHECKPOINTS_FOLDER for path in table["path"]], dtype=bool
    )
    has_folder = np.bincount(codes, weights=in_folder, minlength=len(names)) > 0
    wanted = np.isin(names, list(runs))
    keep = wanted[codes] & (in_folder | ~has_folder[codes])
    kept_codes, kept_names = pd.factorize(names[codes[keep]], sort=False)
    return table[keep], kept_codes, [str(name) for name in kept_names]


def _disagreements(plan: pd.DataFrame) -> list[str]:
    return [f"checkpoints of {line}" for line in plan.attrs.get("disagreements", [])]


def _plan_at_once(
    rows: pd.DataFrame,
    runs: int,
    rules: Sequence[RetentionRule],
    min_age: float,
    now: pd.Timestamp,
    settled: set[str],
) -> pd.DataFrame | None:
    """The plan of every run's ``rows`` (``runs`` of them), from one :func:`plan_prune` (a sweep's
    2,000 runs: one plan, not 2,000; Lightning's and the HF Trainer's recorded bests, in
    ``rows.attrs``, compared series by series inside it); None where that might not be what each
    run's own plan gives: a file dated after ``now`` in a run that ended (a plan of its own, with
    min-age 0, keeps it as fresh), a refused plan (each run's own says which)."""
    if runs < 2:
        return None
    ended = rows["run"].isin(list(settled)).to_numpy(dtype=bool)
    future = (rows["mtime"] > now).to_numpy(dtype=bool)
    if (ended & future).any():
        return None
    try:
        return plan_prune(rows, rules=rules, min_age=min_age, now=now, settled_runs=settled)
    except RunlensError:  # PruneRefused too
        return None


def _with_logs(listed: pd.DataFrame, logs: pd.DataFrame) -> pd.DataFrame:
    """A copy of the table read once (its attrs too: this part changes their runs) with ``logs``
    joined to it, in read_checkpoints' order. Without rows nothing is joined: no summary comes
    of it either way."""
    attrs = copy.deepcopy(listed.attrs)
    table = table_order(join_logged(listed.copy(), logs)) if len(listed) else listed.copy()
    table.attrs = attrs
    return table


def hf_logged_runs(table: pd.DataFrame, runs: Sequence[str], logs: pd.DataFrame) -> dict[str, str]:
    """Checkpoint run -> the logged run it is reported under: itself, except an HF Trainer output
    dir that is no logged run of its own, whose checkpoints belong to the run its TensorBoard logs
    are in (``OUTPUT/runs/<date>_<host>``, the Trainer's default ``logging_dir``): the only one,
    or, after resumes wrote several, the one logged last (the checkpoints hold its state).

    >>> hf_logged_runs(table, ["out/runs/May01_10-00-00_host"], evals)     # doctest: +SKIP
    {'out': 'out/runs/May01_10-00-00_host'}
    """
    logged = set(runs)
    owners = {run: run for run in table["run"].astype(object).unique()}
    hf = table.loc[table["kind"] == HF_KIND, "run"].astype(object).unique()
    last: dict[str, float] = {}
    if "wall_time" in logs.columns and len(logs):
        ends = logs.groupby("run", observed=True)["wall_time"].max()
        last = {str(r): t.timestamp() for r, t in ends.items() if pd.notna(t)}
    for run in (r for r in hf if r not in logged):
        prefix = "runs/" if run == "." else f"{run}/runs/"
        below = [r for r in runs if r.startswith(prefix) and "/" not in r[len(prefix) :]]
        if below:
            owners[run] = max(below, key=lambda r: (last.get(r, float("-inf")), r))
    return owners


def _skipped_notes(skipped: list[dict[str, str]], root: str | os.PathLike[str]) -> list[str]:
    """One warning per file left out for a reason worth a look (a symlink, a damaged file nothing
    proves Keras wrote, ...), and one line for all the files that are simply not checkpoints."""
    others = [s for s in skipped if s.get("category") == SKIPPED_NOT_CHECKPOINT]
    notes = [f"checkpoint {s['path']} skipped: {s['reason']}" for s in skipped if s not in others]
    if others:
        names = [os.path.relpath(s["path"], root) for s in others]
        shown = ", ".join(names[:_NAMED]) + (
            f" and {len(names) - _NAMED} more" if len(names) > _NAMED else ""
        )
        notes.append(
            f"{len(names)} file(s) named like checkpoints are not Keras checkpoints (by content) "
            f"and were left out: {shown}"
        )
    return notes


def _summaries(
    plan: pd.DataFrame,
    root: str | os.PathLike[str],
    min_ages: dict[str, float],
    now: pd.Timestamp,
    restored: dict[str, int | None],
) -> dict[str, CheckpointSummary]:
    """Each run's summary from its rows of ``plan`` (:func:`plan_prune`'s; without its ``keep``
    column, a table: only the files' counts), in a few array operations for all the runs."""
    runs = [str(run) for run in as_names(plan["run"])]
    codes, names = pd.factorize(pd.Series(runs, dtype=object), sort=False)
    names = [str(name) for name in names]
    n = len(names)
    valid = plan["valid"].to_numpy(dtype=bool)
    size = plan["size_bytes"].to_numpy(dtype=np.int64)

    def per_run(weights: np.ndarray) -> list[int]:
        return np.bincount(codes, weights=weights, minlength=n).astype(np.int64).tolist()

    folders: list[list[str]] = [[] for _ in names]
    for code, path in zip(codes.tolist(), plan["path"]):
        folders[code].append(os.path.dirname(path))
    files, valids, totals = per_run(np.ones(len(plan))), per_run(valid), per_run(size)
    out = {
        name: CheckpointSummary(
            folder=Path(os.path.relpath(os.path.commonpath(folders[k]), root)).as_posix(),
            files=files[k],
            valid=valids[k],
            invalid=files[k] - valids[k],
            bytes_total=totals[k],
        )
        for k, name in enumerate(names)
    }
    if "keep" not in plan.columns:
        return out
    keep = plan["keep"].to_numpy(dtype=bool)
    limit = np.array([now - pd.Timedelta(seconds=min_ages[name]) for name in names], dtype=object)[codes]
    fresh = (plan["mtime"].to_numpy(dtype=object) > limit).astype(bool)
    unranked = keep & valid & ~fresh & plan["rank"].isna().to_numpy(dtype=bool)
    kept, frees = per_run(keep), per_run(np.where(keep, 0, size))
    unranked_runs, fresh_runs = per_run(unranked), per_run(fresh)
    epochs = plan["epoch"].astype(object).tolist()
    for k, name in enumerate(names):
        summary = out[name]
        summary.keep, summary.drop, summary.bytes_to_free = kept[k], files[k] - kept[k], frees[k]
        summary.kept_unranked, summary.fresh = unranked_runs[k], fresh_runs[k]
    found: dict[str, list[bool]] = {}  # run -> keep of each row of its restored epoch
    for code, epoch, kept_row in zip(codes.tolist(), epochs, keep.tolist()):
        name, known = names[code], not pd.isna(epoch)
        if kept_row:
            out[name].kept_epochs.append(int(epoch) if known else None)
        if known and epoch == restored.get(name):
            found.setdefault(name, []).append(kept_row)
    for name in names:
        if restored.get(name) is not None:
            rows = found.get(name, [])
            out[name].restored = "none" if not rows else ("kept" if any(rows) else "dropped")
    return out
