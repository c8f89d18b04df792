"""Real checkpoints damaged at random (hypothesis), written alone into a folder of their own.

>>> damaged, folder = write_damaged(data, tmp_path_factory, "m.keras", content, flips=(1, 30))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st


def write_damaged(
    data, tmp_path_factory, name: str, content: bytes, *, flips: tuple[int, int]
) -> tuple[bytes, Path]:
    """``content`` with a drawn number of random bytes overwritten (within ``flips``), maybe cut
    short, written as ``name`` into a new folder: (the bytes written, the folder)."""
    damaged = bytearray(content)
    for _ in range(data.draw(st.integers(*flips))):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[: data.draw(st.integers(0, len(damaged)))]
    folder = tmp_path_factory.mktemp("damaged")
    (folder / name).write_bytes(bytes(damaged))
    return bytes(damaged), folder
