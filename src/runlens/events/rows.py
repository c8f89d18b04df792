"""Scalar rows as columns (:class:`Rows`), their tags as small integer codes (:class:`TagTable`).

What decoding a batch of records gives (one *part* of a chunk's rows, see :mod:`runlens.events`),
what the cache stores, and what the frame is assembled from.

>>> tags = TagTable()
>>> tags.code("loss"), tags.code("acc"), tags.code("loss"), tags.names
(0, 1, 0, ['loss', 'acc'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TagTable:
    """Tag name <-> small integer code, shared by every block of one read."""

    names: list[str] = field(default_factory=list)
    codes: dict[str, int] = field(default_factory=dict)

    def code(self, name: str) -> int:
        found = self.codes.get(name)
        if found is None:
            found = self.codes[name] = len(self.names)
            self.names.append(name)
        return found


@dataclass
class Rows:
    """Scalar rows in the order written. ``tensor`` marks values that came from a tensor (their
    tag's plugin decides whether they are scalars)."""

    tag: np.ndarray  # codes into a TagTable
    step: np.ndarray  # int64
    wall_time: np.ndarray  # float64
    value: np.ndarray  # float64
    tensor: np.ndarray  # bool

    def take(self, index: np.ndarray | slice) -> Rows:
        """The rows at ``index`` (an order, a mask or a slice), every column alike."""
        return Rows(*(getattr(self, column)[index] for column in _ROW_COLUMNS))

    @classmethod
    def concat(cls, parts: list[Rows]) -> Rows:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, column) for p in parts]) for column in _ROW_COLUMNS))

    @classmethod
    def empty(cls) -> Rows:
        return cls(
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros(0, np.float64),
            np.zeros(0, bool),
        )


_ROW_COLUMNS = ("tag", "step", "wall_time", "value", "tensor")
