"""Write a frame to csv, parquet or json, chosen by the file's extension, keeping NaN apart from "not
logged" wherever the format can:

- csv: a logged NaN is written ``nan``, a value not logged is an empty cell;
- parquet: NaN is a float NaN, not logged is null (note: ``pandas.read_parquet`` turns both into
  ``<NA>``; pyarrow keeps them apart);
- json: a list of row objects; NaN and infinities are the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"`` (JSON has no such numbers), not logged is ``null``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from runlens.errors import RunlensError

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
    if suffix == ".csv":
        frame.to_csv(target, index=False, na_rep="", float_format=None)
    elif suffix == ".parquet":
        try:
            frame.to_parquet(target, index=False)
        except ImportError as exc:
            raise RunlensError(f"{path}: writing parquet needs pyarrow (pip install pyarrow)") from exc
    else:
        rows = json_ready(frame.astype(object).to_dict("records"))
        target.write_text(json.dumps(rows, allow_nan=False) + "\n")
    return target
