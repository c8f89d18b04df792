"""What went wrong reading an event file, as data: every damaged or unreadable file gives
:class:`Problem` records (``df.attrs["problems"]`` holds them as dicts), and the reader goes on.

>>> Problem("x", "truncated", 10, "x: cut short").as_dict()["kind"]
'truncated'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from runlens.textsafe import shown


class ProblemKind(str, Enum):
    """The kinds of problem, by the strings ``df.attrs["problems"]`` and JSON hold
    (see docs/reading.md, "Damaged input")."""

    TRUNCATED = "truncated"  # the last record cut short, or a length past the end of the file
    BAD_PAYLOAD_CRC = "bad-payload-crc"  # records skipped, reading went on (one problem, counted)
    BAD_LENGTH_CRC = "bad-length-crc"  # nothing after it can be framed: the file stops there
    EMPTY = "empty"
    UNREADABLE = "unreadable"  # the OS refused to open or read it
    NOT_A_FILE = "not-a-file"  # a FIFO, socket, device or folder named like an event file
    UNDECODABLE = "undecodable"  # CRC-valid records protobuf cannot parse (skipped, counted)


@dataclass(frozen=True)
class Problem:
    """Something in a file that could not be read; everything intact around it was kept.

    ``path`` is the file as the OS names it (data); ``message`` is for people: one printable line,
    the path in it shown escaped (:func:`runlens.textsafe.shown`), whoever builds the problem.
    """

    path: str
    kind: ProblemKind  # a string of ProblemKind is taken as that kind
    offset: int | None
    message: str
    count: int = 1  # records it concerns, where counted (bad-payload-crc)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ProblemKind(self.kind))
        object.__setattr__(self, "message", shown(self.message))

    def as_dict(self) -> dict[str, object]:
        """The problem as ``df.attrs["problems"]`` lists it (``kind`` a plain string)."""
        return {"path": self.path, "kind": self.kind.value, "offset": self.offset, "message": self.message}
