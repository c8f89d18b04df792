"""Write a frame to csv, parquet or json, chosen by the file's extension (or given), to a file or a
stream such as standard output, keeping NaN apart from "not logged" wherever the format can:

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
import importlib.util
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pandas as pd

from runlens.arguments import choice
from runlens.atomic import atomic_output
from runlens.errors import RunlensError
from runlens.options import FRAME_FORMATS, FRAME_SUFFIXES, format_from_name, install_hint
from runlens.textsafe import shown, utf8


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
    module docstring), whole or not at all (:func:`runlens.atomic.atomic_output`). ``path`` may
    also be an open text stream (e.g. ``sys.stdout``) for ``csv`` or ``json`` (default ``csv``);
    parquet is binary and goes to files only. On a terminal, names are shown escaped
    (:func:`runlens.textsafe.shown`), as every command prints them; piped, they are written as
    they are.

    >>> import sys
    >>> _ = write_frame(pd.DataFrame({"epoch": [0, 1], "loss": [0.5, 0.25]}), sys.stdout, format="json")
    [{"epoch": 0, "loss": 0.5}, {"epoch": 1, "loss": 0.25}]
    """
    stream = not isinstance(path, (str, os.PathLike))
    if format is None:
        format = "csv" if stream else output_format(path)
    else:
        choice("format", format, FRAME_FORMATS)
    if stream:
        if format == "parquet":
            raise RunlensError("parquet is a binary format: write it to a file (a name ending in .parquet)")
        terminal = getattr(path, "isatty", lambda: False)()
        _write_stream(path, _text(_mapped_names(frame, shown) if terminal else frame, format))
        return path
    check_writable(format, path)
    target = Path(path)
    with atomic_output(target, what=f"the {format} file") as partial:
        if format == "parquet":
            _mapped_names(frame, utf8).to_parquet(partial, index=False)  # Arrow strings must be UTF-8
        elif format == "csv":  # streamed by pandas; a byte that is not UTF-8 is written as that byte
            frame.to_csv(partial, **_csv_options(frame), encoding="utf-8", errors="surrogateescape")
        else:
            partial.write_text(_text(frame, format), encoding="ascii")
    return target


def _text(frame: pd.DataFrame, format: str) -> str:
    """``frame`` as csv or json text (json is ASCII: ``json.dumps`` escapes the rest)."""
    if format == "csv":
        return frame.to_csv(**_csv_options(frame))
    return json.dumps(json_ready(frame.astype(object).to_dict("records")), allow_nan=False) + "\n"


def _write_stream(stream: IO[str], text: str) -> None:
    """Write ``text`` to a text stream; to its bytes (``buffer``) when it has them, so a name that
    is not UTF-8 goes out as the bytes it was."""
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
        return
    stream.flush()
    buffer.write(text.encode("utf-8", "surrogateescape"))
    buffer.flush()


def _csv_options(frame: pd.DataFrame) -> dict[str, Any]:
    """``to_csv`` options: no index, "not logged" as an empty cell, and ``csv.QUOTE_MINIMAL`` --
    or ``QUOTE_NONNUMERIC`` when a string holds a ``\\r`` (the minimal quoting of Python's csv
    writer leaves a lone carriage return unquoted, and readers end the row there)."""
    texts = [str(c) for c in frame.columns] + [t for c in frame.columns for t in _texts(frame[c])]
    quoting = csv.QUOTE_NONNUMERIC if any("\r" in text for text in texts) else csv.QUOTE_MINIMAL
    return {"index": False, "na_rep": "", "quoting": quoting}


def _mapped_names(frame: pd.DataFrame, show: Callable[[str], str]) -> pd.DataFrame:
    """``frame`` with every string ``show(name)`` (:func:`runlens.textsafe.utf8` for Arrow, whose
    strings must be UTF-8; :func:`runlens.textsafe.shown` for a terminal); unchanged, not copied,
    when no string changes."""
    fixed = {
        column: frame[column].map(lambda v: show(v) if isinstance(v, str) else v)
        for column in frame.columns
        if any(show(text) != text for text in _texts(frame[column]))
    }
    return frame.assign(**fixed) if fixed else frame


def _texts(values: pd.Series) -> list[str]:
    """The strings a column holds (a categorical's categories; none in a numeric column)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.categories
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return []
    return [v for v in values if isinstance(v, str)]
