"""The retention rules applied to every series of a table at once, with the same answers as each
series asked on its own (:mod:`runlens.checkpoints.retention`).

:func:`runlens.plan_prune` asks a rule series by series (one run, one kind); a sweep of 2,000
runs is 2,000 series, and a few pandas operations per series per rule took a report on such a
sweep most of a minute. :func:`rank_all` and :func:`keep_all` give the ranks and reasons of every
series in a few array operations, for the ranking and the rules whose logic is the same over
each series (:class:`Ranking`, :class:`KeepBestK`, :class:`KeepLastN`, :class:`KeepAny` of
those); any other rule (a user's own, one that needs a series' run) is asked series by series
as before. ``tests/test_checkpoint_plan.py`` checks both ways give the same plan, over generated
tables (hypothesis).

>>> table = pd.DataFrame({"epoch": pd.array([0, 1, 0], dtype="Int64"), "val_loss": [0.5, 0.4, 0.3]})
>>> groups = np.array([0, 0, 1])
>>> rank_all(Ranking("val_loss"), table, groups).tolist()
[2.0, 1.0, 1.0]
>>> keep_all(KeepBestK(1, "val_loss"), table, groups, now=pd.Timestamp.now(tz="UTC")).tolist()
[None, '#1 by val_loss (best 1)', '#1 by val_loss (best 1)']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from runlens.checkpoints.retention import KeepAny, KeepBestK, KeepLastN, Ranking, RetentionRule


def rank_all(ranking: Ranking, table: pd.DataFrame, groups: np.ndarray) -> np.ndarray:
    """:meth:`Ranking.rank` of every series (``groups``: each row's series, rows of a series in
    their order in the table) as floats, NaN where a row is not ranked."""
    ranks = np.full(len(table), np.nan)
    if ranking.monitor not in table.columns:
        return ranks
    values = table[ranking.monitor].astype("Float64")
    has = values.notna().to_numpy(dtype=bool)
    floats = values.to_numpy(dtype=float, na_value=np.nan)[has]
    signed = floats if ranking.direction == "min" else -floats
    epochs = table["epoch"].astype("Float64").to_numpy(dtype=float, na_value=np.inf)[has]
    group = groups[has]
    # as Ranking.rank within each series (NaN last, ties to the earlier epoch, then the table's
    # order: lexsort is stable), the series the first key
    order = np.lexsort((epochs, np.nan_to_num(signed, nan=np.inf), np.isnan(signed), group))
    ranks[np.flatnonzero(has)[order]] = _position_in_group(group[order]) + 1
    return ranks


def keep_all(
    rule: RetentionRule, table: pd.DataFrame, groups: np.ndarray, *, now: pd.Timestamp
) -> np.ndarray | None:
    """``rule.keep`` of every series at once: an object array, the reason each row is kept or
    None; None when the rule has no such form (then ask it series by series)."""
    if isinstance(rule, KeepAny):
        parts = [keep_all(r, table, groups, now=now) for r in rule.rules]
        if any(part is None for part in parts):
            return None
        joined = ["; ".join(r for r in row if r is not None) or None for row in zip(*parts)]
        return np.array(joined if parts else [None] * len(table), dtype=object)
    if isinstance(rule, KeepBestK):
        return _best_k(rule, table, groups)
    if isinstance(rule, KeepLastN):
        return _last_n(rule, table, groups)
    return None


def _best_k(rule: KeepBestK, table: pd.DataFrame, groups: np.ndarray) -> np.ndarray:
    ranks = rank_all(rule.ranking, table, groups)
    reasons = np.full(len(table), None, dtype=object)
    if rule.keep_unranked:
        reasons[np.isnan(ranks)] = f"no {rule.monitor} value to rank it by"
    best = np.flatnonzero(ranks <= rule.k)  # NaN compares False
    reasons[best] = [f"#{int(r)} by {rule.monitor} (best {rule.k})" for r in ranks[best]]
    return reasons


def _last_n(rule: KeepLastN, table: pd.DataFrame, groups: np.ndarray) -> np.ndarray:
    reasons = np.full(len(table), None, dtype=object)
    unknown = table["epoch"].isna().to_numpy(dtype=bool)
    reasons[unknown] = "epoch unknown (keep-last cannot place it)"
    keys = [c for c in ("epoch", "step", "batch", "mtime") if c in table.columns]
    placed = table.loc[~unknown, keys].reset_index(drop=True)  # the columns' own dtypes
    placed.insert(0, " series", groups[~unknown])  # a name no table column has
    placed[" row"] = np.flatnonzero(~unknown)
    # KeepLastN sorts each series by ``keys`` (pandas' multi-key sort: missing last, stable):
    # sorted by series first, the same order within each
    ordered = placed.sort_values([" series", *keys])
    group = ordered[" series"].to_numpy()
    from_end = _position_in_group(group[::-1])[::-1]
    reasons[ordered[" row"].to_numpy()[from_end < rule.n]] = f"one of the last {rule.n}"
    return reasons


def _position_in_group(sorted_groups: np.ndarray) -> np.ndarray:
    """Each element's position among the equal ones before it (``sorted_groups`` grouped).

    >>> _position_in_group(np.array([3, 3, 3, 1, 1])).tolist()
    [0, 1, 2, 0, 1]
    """
    n = len(sorted_groups)
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]]) if n else np.zeros(0, int)
    return np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
