"""One prune per checkpoint folder at a time: an advisory ``flock`` on ``DIR/.runlens-prune.lock``.

The lock dies with its process (a prune killed with ``kill -9`` releases it), so a stale lock file
never blocks the next prune. The file itself stays; it is not a checkpoint and is never pruned.

>>> with prune_lock("runs/exp1/checkpoints"):     # doctest: +SKIP
...     ...                                        # delete safely here
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from runlens.checkpoints.errors import PruneLocked, PruneRefused

LOCK_NAME = ".runlens-prune.lock"


@contextmanager
def prune_lock(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``folder``'s prune lock, or raise :class:`PruneLocked` at once if another prune has it."""
    path = os.path.join(folder, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise PruneRefused(f"cannot open the prune lock {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise PruneLocked(
                f"another runlens prune (pid {holder}) is working on {folder} and holds {path}; "
                "wait for it to finish, then run this again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
