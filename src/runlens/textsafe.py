"""Text that is safe to print: run, tag, metric and file names come from files anyone can write,
and a name holding an escape sequence must not drive the reader's terminal."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters (all but newline and tab) shown as ``\\xNN``.

    >>> printable("run\\x1b[31mred")
    'run\\\\x1b[31mred'
    """
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
