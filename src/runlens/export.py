"""Write a frame to csv, parquet or json, chosen by the file's extension (or given), to a file or a
stream such as standard output, keeping NaN apart from "not logged" wherever the format can:

- csv: a logged NaN is written ``nan``, a value not logged is an empty cell;
- parquet: NaN is a float NaN, not logged is null (note: ``pandas.read_parquet`` turns both into
  ``<NA>``; pyarrow keeps them apart);
- json: a list of row objects; NaN and infinities are the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"`` (JSON has no such numbers), not logged is ``null``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from pathlib import Path
from typing import IO, Any

import pandas as pd

from runlens.errors import RunlensError
from runlens.options import FRAME_FORMATS, FRAME_SUFFIXES, format_from_name, install_hint


def json_value(value: Any) -> Any:
    """A JSON-safe form of one cell: NA -> None, NaN/inf -> strings, numpy scalars -> Python.

    >>> [json_value(x) for x in (1.5, float("nan"), float("-inf"), pd.NA)]
    [1.5, 'NaN', '-Infinity', None]
    """
    if value is pd.NA or value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):  # runlens' times are UTC: ISO 8601 with its offset
        return value.isoformat()
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
    """The format a file name asks for (``csv``, ``parquet`` or ``json``), checked before any work is done.

    >>> output_format("out.xlsx")
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: out.xlsx: no output format has the extension '.xlsx'; name the file .csv, .parquet or .json, or pass --format
    """
    return format_from_name(path, FRAME_SUFFIXES)


def check_writable(format: str, path: str | os.PathLike[str]) -> None:
    """Raise :class:`RunlensError` before any reading when ``format`` cannot be written here:
    parquet needs pyarrow (or fastparquet), an optional dependency (the ``parquet`` extra)."""
    if format == "parquet" and not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
        raise RunlensError(f"{os.fspath(path)}: writing parquet needs pyarrow ({install_hint('parquet')})")


def write_frame(
    frame: pd.DataFrame, path: str | os.PathLike[str] | IO[str], *, format: str | None = None
) -> Path | IO[str]:
    """Write ``frame`` to ``path`` in ``format`` (default: the one its extension names; see the
    module docstring). ``path`` may also be an open text stream (e.g. ``sys.stdout``) for ``csv``
    or ``json`` (default ``csv``); parquet is binary and goes to files only.

    >>> import sys
    >>> _ = write_frame(pd.DataFrame({"epoch": [0, 1], "loss": [0.5, 0.25]}), sys.stdout, format="json")
    [{"epoch": 0, "loss": 0.5}, {"epoch": 1, "loss": 0.25}]
    """
    stream = not isinstance(path, (str, os.PathLike))
    if format is None:
        format = "csv" if stream else output_format(path)
    elif format not in FRAME_FORMATS:
        raise RunlensError(f"format must be one of {', '.join(FRAME_FORMATS)}, got {format!r}")
    if format == "csv":
        frame.to_csv(path, index=False, na_rep="", float_format=None)
    elif format == "parquet":
        if stream:
            raise RunlensError("parquet is a binary format: write it to a file (a name ending in .parquet)")
        check_writable(format, path)
        frame.to_parquet(path, index=False)
    else:
        rows = json.dumps(json_ready(frame.astype(object).to_dict("records")), allow_nan=False) + "\n"
        if stream:
            path.write(rows)
        else:
            Path(path).write_text(rows)
    return path if stream else Path(path)
