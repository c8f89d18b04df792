"""What a logdir holds, in brief: one row per run (or per run and tag)."""

from __future__ import annotations

import pandas as pd


def summarize_scalars(scalars: pd.DataFrame, *, by_tag: bool = False) -> pd.DataFrame:
    """Points, step range and time span per run (``by_tag=True``: per run and tag).

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
    out["duration_s"] = out["end"] - out["start"]
    for column in ("start", "end"):
        out[column] = pd.to_datetime(out[column], unit="s", utc=True).dt.floor("s")
    return out.reset_index()
