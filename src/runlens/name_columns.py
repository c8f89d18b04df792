"""Columns of names from disk (runs, files, tags) in pandas frames, held exactly as the OS gives them.

A byte that is not UTF-8 is a lone surrogate in the ``str`` (Python's ``surrogateescape``), which
pandas' default Arrow-backed strings cannot hold; :data:`NAME_DTYPE` can. Showing such a name is
:func:`runlens.textsafe.shown`'s job.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["NAME_DTYPE", "as_names", "name_codes", "names"]


def _name_dtype() -> object:
    try:
        return pd.StringDtype("python", na_value=np.nan)  # pandas >= 2.3: "str" kept in Python objects
    except TypeError:  # older pandas: strings are Python objects anyway
        return object


#: The pandas dtype of name columns: ``str`` that can hold any name the OS gives.
NAME_DTYPE = _name_dtype()


def names(values: Iterable[object]) -> pd.Index:
    """Names as an index of :data:`NAME_DTYPE` (e.g. a Categorical's categories).

    >>> import os
    >>> names(["a", os.fsdecode(b"b\\xff")]).tolist()[1] == "b\\udcff"
    True
    """
    return pd.Index(list(values), dtype=NAME_DTYPE)


def as_names(column: pd.Series) -> pd.Series:
    """A column of names (categorical or not) as plain :data:`NAME_DTYPE` strings."""
    return column.astype(NAME_DTYPE)


def name_codes(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Each row's position in the column's names, sorted (-1: no name), and those names.

    A categorical column (as :func:`runlens.read_scalars` gives ``run`` and ``tag``) costs no work
    per row beyond renumbering its codes; any other column is factorized. Sorting by the codes
    sorts by name.

    >>> name_codes(pd.Series(["b", "a", None, "b"]))
    (array([ 1,  0, -1,  1]), ['a', 'b'])
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy(dtype=np.int64)
        labels = [str(name) for name in column.cat.categories.tolist()]  # tolist: not item by item
    else:
        codes, uniques = pd.factorize(as_names(column))
        labels = [str(name) for name in uniques]
    order = sorted(range(len(labels)), key=labels.__getitem__)
    position = np.full(len(labels) + 1, -1, dtype=np.int64)  # the last entry: code -1 stays -1
    position[order] = np.arange(len(labels))
    return position[codes], [labels[i] for i in order]
