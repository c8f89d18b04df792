"""Event files grouped into read tasks: what one worker reads, and decodes together, at a time.

Pure Python: :mod:`runlens.events.read_ahead` plans its tasks with it before numpy is imported.
"""

from __future__ import annotations


def group_files(
    sizes: list[int], indices: list[int] | None = None, *, max_bytes: int = 8 << 20, max_files: int = 512
) -> list[list[int]]:
    """Consecutive files (their ``sizes``; ``indices``: what to call them, default 0, 1, ...)
    grouped into tasks of up to ``max_bytes`` / ``max_files``, each read into one chunk by
    :func:`read_event_files`: one task per big file, many small files per task (their records are
    then decoded together).

    >>> group_files([5 << 20, 5 << 20, 100, 100])
    [[0], [1, 2, 3]]
    """
    tasks: list[list[int]] = []
    size = 0
    for index, file_size in zip(range(len(sizes)) if indices is None else indices, sizes):
        if not tasks or size + file_size > max_bytes or len(tasks[-1]) >= max_files:
            tasks.append([])
            size = 0
        tasks[-1].append(index)
        size += file_size
    return tasks
