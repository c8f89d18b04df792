"""The JSON report: :meth:`Report.to_dict` with NaN and infinities encoded as in ``runlens export``.

Epochs are 0-based (as in every runlens frame). JSON has no NaN or infinity, so they are the
strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (:func:`runlens.export.json_value`); ``null``
means "not logged" or "not defined". The keys are documented in docs/report.md ("JSON").

>>> import json
>>> json.loads(render_json(runlens.build_report("sample_logs")))["schema"]   # doctest: +SKIP
'runlens.report/2'
"""

from __future__ import annotations

import json
from typing import Any

from runlens.export import json_ready
from runlens.report.model import Report


def render_json(report: Report) -> str:
    """The report as a JSON document: indented, keys in a stable order, lists of numbers (the
    per-epoch curves) on one line each. Names are data, kept as they are: ``json.dumps`` (ASCII
    only) writes every other character as ``\\uXXXX``, so the document holds no control or bidi
    character, and a byte that is not UTF-8 is the lone surrogate ``\\udcXX``
    (``os.fsencode`` gives the byte back)."""
    return _dumps(json_ready(report.to_dict()), 0) + "\n"


def _dumps(value: Any, level: int) -> str:
    nested = isinstance(value, dict) or (
        isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
    )
    if not nested or not value:
        return json.dumps(value, allow_nan=False)
    pad = "  " * (level + 1)
    if isinstance(value, dict):
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * level + "}"
    items = [pad + _dumps(v, level + 1) for v in value]
    return "[\n" + ",\n".join(items) + "\n" + "  " * level + "]"
