"""JSON from files anyone can write, parsed so that every kind of damage is a ``ValueError``.

``json.loads`` raises ``ValueError`` for text that is not JSON (``UnicodeDecodeError`` for bytes
that are not UTF-8 is one), but ``RecursionError`` for arrays or objects nested thousands deep:
a few KB of ``[[[[...`` crashed runlens in five places that caught only the first. Every file
runlens parses as JSON goes through :func:`loads`, which makes the nesting a ``ValueError`` too
(:class:`NestedTooDeep`), so a reader that treats ``ValueError`` as damage handles both;
``tests/test_layering.py`` keeps ``json.loads`` out of the rest of the package.

>>> loads(b'{"epoch": 3}')
{'epoch': 3}
>>> loads("[" * 100_000)
Traceback (most recent call last):
...
runlens.jsondata.NestedTooDeep: nested too deeply to parse
"""

from __future__ import annotations

import json
from typing import Any


class NestedTooDeep(ValueError):
    """JSON whose arrays or objects nest deeper than Python's recursion limit lets it parse."""


def loads(data: str | bytes) -> Any:
    """``json.loads(data)``; arrays or objects nested too deeply raise :class:`NestedTooDeep` (a
    ``ValueError``), not ``RecursionError``."""
    try:
        return json.loads(data)
    except RecursionError:
        raise NestedTooDeep("nested too deeply to parse") from None
