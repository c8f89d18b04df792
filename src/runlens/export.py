"""Write a frame to csv, parquet or json, chosen by the file's extension, keeping NaN apart from "not
logged" wherever the format can:

- csv: a logged NaN is written ``nan``, a value not logged is an empty cell; a field holding a
  comma, quote or line break is quoted (when some name holds a carriage return, which Python's csv
  writer would not quote, every string field is: that empty cell is then ``""``);
- parquet: NaN is a float NaN, not logged is null (note: ``pandas.read_parquet`` turns both into
  ``<NA>``; pyarrow keeps them apart);
- json: a list of row objects; NaN and infinities are the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"`` (JSON has no such numbers), not logged is ``null``.

Names (runs) are data, kept as they are (:mod:`runlens.textsafe`): csv holds their bytes as on
disk (UTF-8, and a byte that is not UTF-8 as that byte; a line break inside a quoted field), json
escapes them (ASCII only; such a byte is the lone surrogate ``\\udcXX``, which ``os.fsencode``
turns back into it). Parquet strings must be UTF-8: a name that is not is written as runlens shows
it (``\\xNN``), the one place where a name is not kept byte for byte.

The file is written whole or not at all (:func:`runlens.atomic.atomic_output`): a failure midway
leaves what was at ``path`` untouched.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from runlens.atomic import atomic_output
from runlens.errors import RunlensError
from runlens.textsafe import utf8

FORMATS = (".csv", ".parquet", ".json")


def json_value(value: Any) -> Any:
    """A JSON-safe form of one cell: NA -> None, NaN/inf -> strings, numpy scalars -> Python.

    >>> [json_value(x) for x in (1.5, float("nan"), float("-inf"), pd.NA)]
    [1.5, 'NaN', '-Infinity', None]
    """
    if value is pd.NA or value is None:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def json_ready(value: Any) -> Any:
    """``value`` (nested dicts, lists and tuples of cells) with every cell made JSON-safe by
    :func:`json_value` and every key a string.

    >>> json_ready({"a": [float("nan"), 1], 2: (pd.NA,)})
    {'a': ['NaN', 1], '2': [None]}
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return json_value(value)


def output_format(path: str | os.PathLike[str]) -> str:
    """The format a file name asks for, checked before any work is done.

    >>> output_format("out.xlsx")
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: out.xlsx: unknown output format '.xlsx'; use a name ending in .csv, .parquet or .json
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise RunlensError(
            f"{path}: unknown output format '{suffix}'; use a name ending in {', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
        )
    return suffix


def write_frame(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``frame`` to ``path`` in the format its extension names (see the module docstring)."""
    target = Path(path)
    suffix = output_format(path)
    with atomic_output(target, what=f"the {suffix[1:]} file") as partial:
        if suffix == ".csv":
            frame.to_csv(
                partial,
                index=False,
                na_rep="",
                quoting=_csv_quoting(frame),
                encoding="utf-8",
                errors="surrogateescape",  # a byte that is not UTF-8 written as that byte
            )
        elif suffix == ".parquet":
            try:
                _utf8_names(frame).to_parquet(partial, index=False)
            except ImportError as exc:
                raise RunlensError(f"{path}: writing parquet needs pyarrow (pip install pyarrow)") from exc
        else:
            rows = json_ready(frame.astype(object).to_dict("records"))
            partial.write_text(json.dumps(rows, allow_nan=False) + "\n", encoding="ascii")
    return target


def _csv_quoting(frame: pd.DataFrame) -> int:
    """``csv.QUOTE_MINIMAL``, or ``QUOTE_NONNUMERIC`` when a string holds a ``\\r`` (the minimal
    quoting of Python's csv writer leaves a lone carriage return unquoted, and readers end the row
    there)."""
    texts = [str(c) for c in frame.columns] + [t for c in frame.columns for t in _texts(frame[c])]
    return csv.QUOTE_NONNUMERIC if any("\r" in text for text in texts) else csv.QUOTE_MINIMAL


def _utf8_names(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with names that are not UTF-8 written as runlens shows them (Arrow strings must be
    UTF-8); unchanged, not copied, when every name is."""
    fixed = {
        column: frame[column].map(lambda v: utf8(v) if isinstance(v, str) else v)
        for column in frame.columns
        if any(utf8(text) != text for text in _texts(frame[column]))
    }
    return frame.assign(**fixed) if fixed else frame


def _texts(values: pd.Series) -> list[str]:
    """The strings a column holds (a categorical's categories; none in a numeric column)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.categories
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return []
    return [v for v in values if isinstance(v, str)]
