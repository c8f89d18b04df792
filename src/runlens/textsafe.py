"""Names from disk -- logdir and run folders, event and checkpoint files, tags, metric and hparam
names -- come from files anyone can write. runlens keeps them as they are in data and shows them
escaped in text, so a name can neither drive a terminal nor forge a line of output.

**Held as they are.** A name is the ``str`` the OS gives: a byte that is not UTF-8 is a lone
surrogate (Python's ``surrogateescape``; ``os.fsencode(name)`` gives back the bytes). pandas'
default Arrow-backed strings cannot hold such a surrogate, so frames keep names as
:data:`runlens.name_columns.NAME_DTYPE` (``str`` held in Python objects). This module imports
nothing heavy: the CLI prints through it before any pandas is loaded.

**Shown escaped.** :func:`shown` is the one rule for text: every character ``str.isprintable()``
rejects (C0/C1 controls incl. line breaks, tab, ESC, DEL, NEL; bidi controls such as U+202E and
U+2066; U+2028/U+2029; other format, private-use, unassigned characters and spaces other than
" ") becomes ``\\xNN`` (below U+0100, and each byte that is not UTF-8), ``\\uNNNN`` or
``\\UNNNNNNNN``, as Python writes them in a string literal. A backslash itself is left alone (paths
and messages stay readable), so ``\\x1b`` in a name and an escaped ESC look alike.

Output is built as lines and joined by :func:`text_lines`, which applies :func:`shown` to every line:
whatever a line holds, the only line breaks in runlens' output are the ones it puts between lines.

>>> import os
>>> shown("run\\n== forged\\x1b[31m\\u202e")
'run\\\\x0a== forged\\\\x1b[31m\\\\u202e'
>>> shown(os.fsdecode(b"caf\\xe9"))
'caf\\\\xe9'
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape


def shown(text: object) -> str:
    """``text`` as one printable line: every character ``str.isprintable()`` rejects, escaped.

    >>> shown("tab\\there"), shown("ok: 1.5 µs")
    ('tab\\\\x09here', 'ok: 1.5 µs')
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def html_text(text: object) -> str:
    """``text`` :func:`shown`, then escaped for HTML (quotes too): safe as element content or a
    quoted attribute value.

    >>> html_text('<b a="1">\x1b')
    '&lt;b a=&quot;1&quot;&gt;\\\\x1b'
    """
    return escape(shown(text))


def text_lines(lines: Iterable[str]) -> str:
    """``lines`` as text, each line made :func:`shown` and ended by a newline.

    >>> text_lines(["== run a\\n== forged", "done"])
    '== run a\\\\x0a== forged\\ndone\\n'
    """
    return "".join(shown(line) + "\n" for line in lines)


def utf8(name: str) -> str:
    """``name`` if it is valid UTF-8 text, else :func:`shown` (for formats whose strings must be
    UTF-8, such as Parquet/Arrow).

    >>> import os
    >>> utf8("a\\nb"), utf8(os.fsdecode(b"b\\xff"))
    ('a\\nb', 'b\\\\xff')
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return shown(name)
    return name


def tag_list(tags: Iterable[str], *, most: int = 12) -> str:
    """Tag names for a message: sorted, each quoted as Python writes it (so escaped, as
    :func:`shown` escapes), at most ``most``, then how many more.

    >>> tag_list(["b", "a"]), tag_list([]), tag_list(map(str, range(5)), most=2)
    ("'a', 'b'", 'none', "'0', '1' and 3 more")
    """
    names = sorted(set(tags))
    if not names:
        return "none"
    listed = ", ".join(map(repr, names[:most]))
    return listed if len(names) <= most else f"{listed} and {len(names) - most} more"
