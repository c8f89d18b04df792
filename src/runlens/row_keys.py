"""Rows keyed by several integer columns (run and tag codes, steps), handled as one int64 per row.

Sorting or searching one int64 column that is mostly in order already is several times faster
than hashing tuples or sorting by several columns: how the frames of a sweep are grouped without
Python work per row.

>>> packed(np.array([1, 0, 0]), np.array([5, 7, 5])).tolist()  # orders as the pairs do
[3, 2, 0]
>>> last_written(np.array([1, 0, 0]), np.array([5, 5, 5])).tolist()  # keys (1, 5), (0, 5), (0, 5)
[2, 0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["last_written", "packed"]

_ROOM = 2**62  # packed keys stay below this: int64, with room to spare


def packed(*keys: np.ndarray) -> np.ndarray:
    """One int64 per row that orders as the tuple of ``keys`` does (integer arrays of one length;
    equal tuples give equal numbers). Keys are packed by their ranges; where two ranges together
    would not fit, the values packed so far (then the next key) are first replaced by their rank
    among the distinct values, which always fits below 2**62 rows of 2**31."""
    result: np.ndarray | None = None
    room = 1
    for key in keys:
        column = np.asarray(key, dtype=np.int64)
        if not len(column):
            return column
        span = int(column.max()) - int(column.min()) + 1  # Python ints: exact
        if room * span >= _ROOM and result is not None:
            result, room = _ranks(result)
        if room * span >= _ROOM:
            column, span = _ranks(column)
        else:
            column = column - column.min()
        result = column if result is None else result * span + column
        room *= span
    return np.zeros(0, dtype=np.int64) if result is None else result


def _ranks(column: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's rank among the distinct values, and how many there are."""
    distinct, rank = np.unique(column, return_inverse=True)
    return rank.astype(np.int64).reshape(-1), len(distinct)


def last_written(*keys: np.ndarray) -> np.ndarray:
    """The positions of the rows that are the last (in row order) of the rows with their key, in
    key order (the first key sorts first): a resumed run's repeated step keeps its later value.

    A stable sort of the packed keys keeps equal keys in row order, so the last of each run of
    equal keys is the one written last.
    """
    key = packed(*keys)
    order = np.argsort(key, kind="stable")
    in_order = key[order]
    return order[np.append(in_order[1:] != in_order[:-1], True)] if len(order) else order
