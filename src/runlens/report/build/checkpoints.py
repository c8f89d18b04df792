"""The report's checkpoints part: per run, what exists and what a keep-best/keep-last plan keeps.

A run's checkpoints are the files under ``RUN/checkpoints/`` or, when there are none, directly in
the run folder (``runlens.read_checkpoints`` gives both the run's name). The plan is a dry run of
:func:`runlens.plan_prune` with ``KeepBestK(keep_best, monitor)`` and ``KeepLastN(keep_last)``;
a plan the checkpoint layer refuses (or cannot make) becomes a note on that run, never a failure
of the report. Files modified within ``min_age`` are kept unranked, except in runs whose
``runlens.json`` says training ended (:func:`runlens.manifest.ended_runs`). Files named like
checkpoints that are not Keras checkpoints by content (a ``predictions_001.h5``) are named in one
warning line; other skipped files get a warning each.

>>> summaries, warnings = checkpoint_summaries("sample_logs", epochs, runs=["overfits"],
...     rules=[KeepBestK(3, "val_loss"), KeepLastN(1)], min_age=300,
...     restored={"overfits": 6})                                      # doctest: +SKIP
>>> summaries["overfits"].bytes_to_free                                # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from runlens.checkpoints.errors import PruneRefused
from runlens.checkpoints.index import CHECKPOINTS_FOLDER, SKIPPED_NOT_CHECKPOINT, read_checkpoints
from runlens.checkpoints.plan import plan_prune, plan_summary
from runlens.checkpoints.retention import RetentionRule
from runlens.errors import RunlensError
from runlens.manifest import ended_runs
from runlens.name_columns import as_names
from runlens.report.model import CheckpointSummary

_NAMED = 5  # non-checkpoint files named in the report's one line about them


def checkpoint_summaries(
    root: str | os.PathLike[str],
    epochs: pd.DataFrame,
    *,
    runs: Sequence[str],
    rules: Sequence[RetentionRule],
    min_age: float,
    restored: dict[str, int | None],
) -> tuple[dict[str, CheckpointSummary], list[str]]:
    """``{run: CheckpointSummary}`` for the runs with checkpoints, and warnings for the report."""
    try:
        table = read_checkpoints(root, epochs=epochs)
    except RunlensError as exc:
        return {}, [f"checkpoints not read: {exc}"]
    warnings = _skipped_notes(table.attrs.get("skipped", []), root)
    others = sorted(set(table["run"]) - set(runs))
    if others:
        count = int(table["run"].isin(others).sum())
        warnings.append(
            f"{count} checkpoint file(s) in folders that hold no logged run, left out: {', '.join(others)}"
        )
    now = pd.Timestamp.now(tz="UTC")
    settled = ended_runs(root, runs)  # after the listing: see ended_runs
    out = {}
    # The rows of each run, grouped once (a sweep of 2,000 runs: no mask over the table per run).
    by_run = {str(run): rows for run, rows in table.groupby(as_names(table["run"]), sort=False)}
    for run in runs:
        rows = by_run.get(run)
        if rows is None:
            continue
        in_folder = rows["path"].map(lambda p: Path(p).parent.name == CHECKPOINTS_FOLDER)
        if in_folder.any():
            rows = rows[in_folder]
        out[run] = _summary(rows, root, rules, 0.0 if run in settled else min_age, now, restored.get(run))
    return out, warnings


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


def _summary(
    rows: pd.DataFrame,
    root: str | os.PathLike[str],
    rules: Sequence[RetentionRule],
    min_age: float,
    now: pd.Timestamp,
    restored: int | None,
) -> CheckpointSummary:
    folder = os.path.relpath(os.path.commonpath([os.path.dirname(p) for p in rows["path"]]), root)
    valid = rows["valid"].to_numpy(dtype=bool)
    summary = CheckpointSummary(
        folder=Path(folder).as_posix(),
        files=len(rows),
        valid=int(valid.sum()),
        invalid=int((~valid).sum()),
        bytes_total=int(rows["size_bytes"].sum()),
    )
    try:
        plan = plan_prune(rows, rules=rules, min_age=min_age, now=now)
    except (PruneRefused, RunlensError) as exc:  # PruneRefused is a RunlensError; both become notes
        summary.note = str(exc)
        return summary
    counts = plan_summary(plan)
    keep = plan["keep"].to_numpy(dtype=bool)
    fresh = (plan["mtime"] > now - pd.Timedelta(seconds=min_age)).to_numpy(dtype=bool)
    summary.keep, summary.drop = counts["keep"], counts["drop"]
    summary.bytes_to_free = counts["bytes_to_free"]
    summary.kept_epochs = [None if pd.isna(e) else int(e) for e in plan.loc[keep, "epoch"]]
    summary.kept_unranked = int((keep & valid & ~fresh & plan["rank"].isna().to_numpy(dtype=bool)).sum())
    summary.fresh = int(fresh.sum())
    if restored is not None:
        at = (plan["epoch"] == restored).fillna(False).to_numpy(dtype=bool)
        summary.restored = "none" if not at.any() else ("kept" if keep[at].any() else "dropped")
    return summary
