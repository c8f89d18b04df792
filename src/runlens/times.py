"""Time in runlens' frames, one convention: an instant is a ``datetime64[ns, UTC]`` column (``wall_time``,
``start``/``end``, ``mtime``, ``saved_at``), a duration is float64 seconds named ``*_s``
(``duration_s``, ``time_saved_s``).

pandas' own type for instants: resampling, date arithmetic and plotting work as they are, and a
checkpoint's ``mtime`` keeps the file's nanoseconds (a prune compares it with the file's). Event
files store ``wall_time`` as float64 seconds: it becomes the nanosecond nearest the double written,
and :func:`unix_seconds` gives that double back exactly (for any time after February 1970, where a
double's resolution is coarser than a nanosecond).

>>> utc_from_unix_seconds(np.array([1_700_000_000.25]))
<DatetimeArray>
['2023-11-14 22:13:20.250000+00:00']
Length: 1, dtype: datetime64[ns, UTC]
>>> unix_seconds(pd.Series(utc_from_unix_seconds(np.array([1_700_000_000.25, np.nan])))).tolist()
[1700000000.25, nan]
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

_NAT = np.datetime64("NaT").view(np.int64)  # NaT's integer
_BLOCK = 1 << 20  # values converted at a time, so converting a column in place needs no second copy


def utc_from_unix_seconds(seconds: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``seconds`` (float64 Unix seconds, NaN for none) as a ``datetime64[ns, UTC]`` array.

    A float64 array is converted in its own memory, block by block (it is overwritten), so a
    column of 10M points costs one more copy of itself at most (pandas' UTC array), not two.
    (``pd.to_datetime(seconds, unit="s", utc=True)`` is 35x slower and off by up to 128 ns.)
    """
    seconds = np.ascontiguousarray(seconds, dtype=np.float64)
    if not seconds.flags.writeable:  # e.g. a read-only view pandas handed out
        seconds = seconds.copy()
    nanoseconds = seconds.view(np.int64)
    for start in range(0, len(seconds), _BLOCK):
        block = seconds[start : start + _BLOCK]
        with np.errstate(invalid="ignore"):  # NaN -> int: replaced by NaT right below
            # Whole seconds and the fraction apart (both exact): block * 1e9 in float64 would be
            # off by up to 128 ns; this is the nanosecond nearest the double written.
            whole = np.floor(block)
            converted = whole.astype(np.int64) * 1_000_000_000 + np.rint((block - whole) * 1e9).astype(
                np.int64
            )
        nanoseconds[start : start + _BLOCK] = np.where(np.isfinite(block), converted, _NAT)
    return pd.array(nanoseconds.view("datetime64[ns]"), dtype="datetime64[ns]").tz_localize("UTC")


def unix_seconds(column: pd.Series) -> np.ndarray:
    """float64 Unix seconds of a time column (tz-aware, naive = UTC, or already numbers); NaN for none."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column.dtype):
        values = column.array  # a tz-aware array's integers count from the Unix epoch in UTC already
        if values.unit != "ns":
            values = values.as_unit("ns")
        nanoseconds = values.asi8
        whole, fraction = np.divmod(nanoseconds, 1_000_000_000)  # exact, unlike nanoseconds / 1e9
        seconds = whole.astype(np.float64) + fraction / 1e9
        return np.where(nanoseconds == _NAT, np.nan, seconds)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def utc_from_local(naive: object) -> pd.Timestamp:
    """A naive local time (as Keras' ``metadata.json`` stores ``date_saved``) as a UTC Timestamp,
    read in this machine's zone (daylight saving included, as ``datetime.timestamp`` does);
    NaT for none."""
    if not isinstance(naive, (dt.datetime, pd.Timestamp)) or pd.isna(naive):
        return pd.NaT
    local = naive.to_pydatetime() if isinstance(naive, pd.Timestamp) else naive
    return (
        pd.Timestamp(local.timestamp(), unit="s", tz="UTC")
        if local.tzinfo is None
        else pd.Timestamp(local).tz_convert("UTC")
    )


__all__ = ["unix_seconds", "utc_from_local", "utc_from_unix_seconds"]
