"""Decide which checkpoints a prune keeps: the rules combined, with the safety rules on top.

:func:`plan_prune` only computes; :func:`runlens.apply_prune` is what deletes.

- Checkpoints modified within ``min_age`` (training may still be writing them) are kept, not ranked.
  A checkpoint folder's age is that of its newest file.
- Invalid checkpoints are never ranked; they are kept unless ``delete_invalid``.
- The rest is grouped into series (one run, one kind) and kept when the rules keep it (a list of
  rules is one :class:`KeepAny`), ranked by the ranking (``ranking=``, else the first rule's that
  ranks, e.g. ``KeepBestK``'s); the best of every series by that ranking is always kept.
  Lightning's ``last.ckpt`` (a copy of the latest state, the resume point) is not ranked.
- A valid checkpoint the table ``pinned`` is kept whatever the rules: the resume point, the best
  the framework itself recorded in its newest checkpoint, the target of a symlink
  (:mod:`runlens.checkpoints.framework_state`); where that best is not runlens' #1 by the same
  metric, ``plan.attrs["disagreements"]`` says so.
- A plan that would leave a run without any valid checkpoint is refused (:class:`PruneRefused`).

>>> plan = plan_prune(table, rules=[KeepBestK(2, "val_loss"), KeepLastN(1)])      # doctest: +SKIP
>>> plan = plan_prune(table, rules=[KeepLastN(2)], ranking=Ranking("val_loss"))  # doctest: +SKIP
>>> plan_summary(plan)["bytes_to_free"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Iterator, Sequence

import numpy as np
import pandas as pd

from runlens.arguments import number
from runlens.checkpoints.errors import PruneRefused
from runlens.checkpoints.framework_state import disagreements
from runlens.checkpoints.names import is_lightning_last
from runlens.checkpoints.retention import KeepAny, Ranking, RetentionRule, ranking_of
from runlens.checkpoints.retention_all import keep_all, rank_all
from runlens.errors import RunlensError
from runlens.options import CHECKPOINT_MIN_AGE as DEFAULT_MIN_AGE  # the CLI reads it there, without pandas


def plan_prune(
    table: pd.DataFrame,
    *,
    rules: RetentionRule | Sequence[RetentionRule],
    ranking: Ranking | None = None,
    min_age: float = DEFAULT_MIN_AGE,
    delete_invalid: bool = False,
    now: float | dt.datetime | pd.Timestamp | None = None,
    settled_runs: Collection[str] = (),
) -> pd.DataFrame:
    """``table`` (from :func:`runlens.read_checkpoints`) plus ``rank``, ``keep`` and ``reason``.

    Args:
        rules: a retention rule, or a list of them kept as one :class:`KeepAny` (a checkpoint is
            kept when any of them keeps it).
        ranking: how checkpoints are ranked (the ``rank`` column); the best of each series by it
            is never dropped. Default: the ranking of the first rule that has one (``KeepBestK``).
        min_age: seconds; files modified more recently are kept and not ranked.
        delete_invalid: drop invalid (damaged, truncated) checkpoints instead of keeping them.
        now: the time to judge ages against (Unix seconds or datetime; default: now).
        settled_runs: runs known to be written no more (``runlens.manifest.ended_runs``: their
            ``runlens.json`` says training ended normally); ``min_age`` does not apply to them.

    Returns:
        A copy of ``table`` with ``rank`` (1-based by the ranking metric, ``<NA>`` when unranked),
        ``keep`` (bool) and ``reason`` (why kept, or why dropped). Nothing on disk changes.
        ``plan.attrs["disagreements"]``: one line per series whose framework recorded another
        best than runlens' #1 by the same metric.

    Example:
        >>> plan = plan_prune(read_checkpoints("ckpt/"), rules=[KeepBestK(3, "val_loss")])  # doctest: +SKIP
        >>> plan.loc[~plan.keep, "path"]                                               # doctest: +SKIP
    """
    rule = KeepAny(rules) if isinstance(rules, Sequence) else rules
    ranking = ranking if ranking is not None else ranking_of(rule)
    if ranking is None:
        raise RunlensError(
            "plan_prune needs a ranking: pass ranking=Ranking(monitor) or a rule that ranks, such as "
            "KeepBestK, in rules= (the best checkpoint by it is never deleted)"
        )
    number("min_age", min_age, minimum=0)  # seconds
    now = _timestamp(now)
    plan = table.copy()
    # restored at the end: every pandas operation below would deep-copy them (a sweep's framework
    # records: thousands of dicts, copied per operation and, for a rule of the user's, per series)
    attrs, plan.attrs = plan.attrs, {}
    fresh = (plan["mtime"] > now - pd.Timedelta(seconds=min_age)) & ~plan["run"].isin(list(settled_runs))
    fresh = fresh.to_numpy(dtype=bool)
    valid = plan["valid"].to_numpy(dtype=bool)
    settled = valid & ~fresh
    _check_monitor(plan[valid], ranking)  # fresh files too: a bad monitor is an error whatever the ages
    last = np.array(
        [
            k == "lightning" and is_lightning_last(os.path.basename(p))
            for k, p in zip(plan["kind"], plan["path"])
        ],
        dtype=bool,
    )
    ranks, reasons = [pd.Series(dtype="Int64")], [pd.Series(dtype=object)]
    for ranked, kept in _series_decisions(plan[settled & ~last], rule, ranking, now):
        best = (ranked == 1).fillna(False).astype(bool) & kept.isna()  # the best is never dropped
        kept[best] = f"#1 by {ranking.monitor}: the best is never dropped"
        ranks.append(ranked)
        reasons.append(kept)
    rank = pd.concat(ranks).reindex(plan.index).astype("Int64")
    reason = pd.concat(reasons).reindex(plan.index)
    if "pinned" in plan.columns:  # kept whatever the rules: resume points, framework bests, link targets
        pinned = settled & (plan["pinned"] != "").to_numpy(dtype=bool)
        reason[pinned] = [
            f"{r}; kept: {why}" if isinstance(r, str) else f"kept: {why}"
            for r, why in zip(reason[pinned], plan.loc[pinned, "pinned"])
        ]
    plan["rank"] = rank
    plan["keep"] = reason.notna().to_numpy(dtype=bool)
    plan["reason"] = reason.fillna("").to_numpy(dtype=object)
    dropped = settled & ~plan["keep"].to_numpy(dtype=bool)
    why = [
        f"#{r} by {ranking.monitor}" if pd.notna(r) else f"no {ranking.monitor} value" for r in rank[dropped]
    ]
    plan.loc[dropped, "reason"] = [f"kept by no rule ({w})" for w in why]
    plan.loc[fresh, "keep"] = True
    plan.loc[fresh, "reason"] = f"modified within min-age ({min_age:g}s): may still be written"
    invalid = ~valid & ~fresh
    plan.loc[invalid, "keep"] = not delete_invalid
    plan.loc[invalid, "reason"] = [
        f"invalid ({why}): {'delete-invalid given' if delete_invalid else 'kept, never ranked'}"
        for why in plan.loc[invalid, "invalid_reason"]
    ]
    plan["keep"] = plan["keep"].astype(bool)
    plan["reason"] = plan["reason"].astype("str")
    refuse_runs_left_without_valid(plan)
    plan.attrs = attrs
    plan.attrs["monitor"] = ranking.monitor
    plan.attrs["disagreements"] = disagreements(plan, ranking.monitor)
    return plan


def _series_decisions(
    rows: pd.DataFrame, rule: RetentionRule, ranking: Ranking, now: pd.Timestamp
) -> Iterator[tuple[pd.Series, pd.Series]]:
    """(rank, reason to keep) of the rows of every series (one run, one kind): of all series at
    once where the ranking and the rules allow (:mod:`runlens.checkpoints.retention_all`, a
    sweep's thousands of series), else series by series."""
    codes = rows.groupby(["run", "kind"], sort=False).ngroup()
    if isinstance(ranking, Ranking) and codes.notna().all():
        groups = codes.to_numpy(dtype=np.int64)
        kept = keep_all(rule, rows, groups, now=now)
        if kept is not None:
            ranked = pd.Series(rank_all(ranking, rows, groups), index=rows.index).astype("Int64")
            yield ranked, pd.Series(kept, index=rows.index, dtype=object)
            return
    for _, series in rows.groupby(["run", "kind"], sort=False):
        yield ranking.rank(series), rule.keep(series, now=now).astype(object)


def plan_summary(plan: pd.DataFrame) -> dict[str, int]:
    """Counts and bytes of a plan: ``files, keep, drop, invalid, bytes_total, bytes_to_free``.

    >>> plan_summary(plan)        # doctest: +SKIP
    {'files': 12, 'keep': 4, 'drop': 8, 'invalid': 1, 'bytes_total': 255324, 'bytes_to_free': 170216}
    """
    drop = ~plan["keep"].to_numpy(dtype=bool)
    return {
        "files": len(plan),
        "keep": int((~drop).sum()),
        "drop": int(drop.sum()),
        "invalid": int((~plan["valid"].to_numpy(dtype=bool)).sum()),
        "bytes_total": int(plan["size_bytes"].sum()),
        "bytes_to_free": int(plan.loc[drop, "size_bytes"].sum()),
    }


def _timestamp(now: float | dt.datetime | pd.Timestamp | None) -> pd.Timestamp:
    if now is None:
        return pd.Timestamp.now(tz="UTC")
    if isinstance(now, (int, float)):
        return pd.Timestamp(now, unit="s", tz="UTC")
    stamp = pd.Timestamp(now)
    return stamp.tz_localize("UTC") if stamp.tz is None else stamp


def _check_monitor(settled: pd.DataFrame, ranking: Ranking) -> None:
    """Refuse a ranking metric that no checkpoint has a value for (bad usage, not a refusal)."""
    if settled.empty:
        return
    if ranking.monitor in settled.columns and settled[ranking.monitor].notna().any():
        return
    metrics = [c for c in settled.columns if str(settled[c].dtype) == "Float64" and settled[c].notna().any()]
    known = f"metrics found: {', '.join(metrics)}" if metrics else "no metrics found in the names"
    raise RunlensError(
        f"no checkpoint has a {ranking.monitor!r} value to rank by ({known}); pass the "
        "ModelCheckpoint filepath as --template (template=), the run's logs as --logdir (logdir=), "
        "or another --monitor"
    )


def refuse_runs_left_without_valid(plan: pd.DataFrame) -> None:
    """Raise :class:`PruneRefused` if a run with drops would keep no valid checkpoint."""
    keep, valid = plan["keep"].to_numpy(dtype=bool), plan["valid"].to_numpy(dtype=bool)
    runs = plan["run"].to_numpy(dtype=object)
    emptied = sorted(set(runs[~keep]) - set(runs[keep & valid]))
    if emptied:
        run = emptied[0]
        raise PruneRefused(
            f"refusing: run {run!r} would be left without a valid checkpoint "
            f"({int((~keep & (runs == run)).sum())} to drop, none valid to keep); nothing was deleted"
        )
