"""Real checkpoints damaged at random (hypothesis), each written alone into a folder of its own and
read back with ``read_checkpoints``.

>>> table, path, intact = read_damaged(data, tmp_path_factory, saves, flips=(1, 30))  # doctest: +SKIP
>>> listed(table) == [str(path)]  # doctest: +SKIP
True
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hypothesis import strategies as st

import runlens


def read_damaged(
    data, tmp_path_factory, saves: list[tuple[str, bytes]], *, flips: tuple[int, int]
) -> tuple[pd.DataFrame, Path, bool]:
    """One of ``saves`` (``(name, content)`` pairs) drawn, a drawn number of its bytes overwritten
    at random (within ``flips``), maybe cut short, written as ``name`` into a new folder and read
    with ``read_checkpoints``: (the table, the file's path, whether the bytes are the original)."""
    name, content = data.draw(st.sampled_from(saves))
    damaged = bytearray(content)
    for _ in range(data.draw(st.integers(*flips))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    folder = tmp_path_factory.mktemp("damaged")
    (folder / name).write_bytes(bytes(damaged))
    return runlens.read_checkpoints(folder), folder / name, bytes(damaged) == content


def listed(table: pd.DataFrame) -> list[str]:
    """Every path ``read_checkpoints`` answered for: the table's rows, then the skipped ones."""
    return list(table["path"]) + [s["path"] for s in table.attrs["skipped"]]
