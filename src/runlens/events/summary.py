"""What a logdir holds, in brief: one row per run (or per run and tag)."""

from __future__ import annotations

import pandas as pd


def summarize_scalars(scalars: pd.DataFrame, *, by_tag: bool = False) -> pd.DataFrame:
    """Points, step range and time span per run (``by_tag=True``: per run and tag).

    Columns: ``run`` (and ``tag``), ``tags`` (per run only), ``points``, ``first_step``,
    ``last_step``, ``start`` and ``end`` (the first and last ``wall_time``, ``datetime64[ns, UTC]``),
    ``duration_s`` (float64 seconds).

    >>> import runlens
    >>> runlens.summarize_scalars(runlens.read_scalars("sample_logs"))   # doctest: +SKIP
    """
    keys = ["run", "tag"] if by_tag else ["run"]
    grouped = scalars.groupby(keys, observed=True, sort=True)
    out = grouped.agg(
        points=("value", "size"),
        first_step=("step", "min"),
        last_step=("step", "max"),
        start=("wall_time", "min"),
        end=("wall_time", "max"),
    )
    if not by_tag:
        out.insert(0, "tags", grouped["tag"].nunique())
    out["duration_s"] = (out["end"] - out["start"]).dt.total_seconds()
    return out.reset_index()
