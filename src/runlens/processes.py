"""Worker processes runlens starts (reading files, drawing figures), and when forking is safe.

Forking copies only the calling thread: a process whose libraries run threads of their own --
TensorFlow, torch, JAX, loaded in a notebook that trained a model or in a test session -- can leave
a forked child holding a lock no thread will release (Python 3.12 warns about it; a worker drawing
figures crashed so here). Where the platform forks by default, such a process starts its workers
from a clean server process instead (``forkserver``: each worker then imports what it runs).

>>> fork_is_safe() in (True, False)
True
"""

from __future__ import annotations

import multiprocessing
import sys
from multiprocessing.context import BaseContext

#: Modules that run threads of their own once imported: with one loaded, this process is not forked.
THREADED = ("tensorflow", "torch", "jax")


def fork_is_safe() -> bool:
    """Whether none of :data:`THREADED` is loaded in this process."""
    return not any(name in sys.modules for name in THREADED)


def worker_context() -> BaseContext:
    """The start method for worker processes: the platform's default, except ``forkserver`` for a
    process that :func:`fork_is_safe` says not to fork."""
    if multiprocessing.get_start_method() == "fork" and not fork_is_safe():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context()
