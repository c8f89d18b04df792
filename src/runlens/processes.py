"""Worker processes runlens starts (reading files, drawing figures), when forking is safe, and
work handed to them ahead of need (:class:`Ahead`).

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
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from multiprocessing.context import BaseContext
from typing import Any

#: Modules that run threads of their own once imported: with one loaded, this process is not forked.
THREADED = ("tensorflow", "torch", "jax")


def fork_is_safe() -> bool:
    """Whether none of :data:`THREADED` is loaded in this process."""
    return not any(name in sys.modules for name in THREADED)


def can_start_workers() -> bool:
    """Whether this process may start worker processes: not when it is itself a daemonic one
    (a ``multiprocessing.Pool``'s worker, where starting a child raises "daemonic processes are
    not allowed to have children"): runlens then does that work in this process.

    >>> can_start_workers()
    True
    """
    return not multiprocessing.current_process().daemon


def worker_context() -> BaseContext:
    """The start method for worker processes: the platform's default, except ``forkserver`` for a
    process that :func:`fork_is_safe` says not to fork."""
    if multiprocessing.get_start_method() == "fork" and not fork_is_safe():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context()


class Ahead:
    """``fn`` over consecutive parts of ``items`` in ``executor``'s workers, started when made
    (about two tasks a core, at least ``per_task`` items each): :meth:`results` waits for them and
    gives each part's result in order; :meth:`cancel` drops the tasks no worker has started.

    What a report reads of every run besides its event files (hparams files, ``runlens.json``)
    is read so by the workers that read the event files, while the report is built.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     Ahead(pool, sum, list(range(10)), per_task=4).results()
    [6, 22, 17]
    """

    def __init__(
        self, executor: Executor, fn: Callable[[list[Any]], Any], items: Sequence[Any], *, per_task: int
    ) -> None:
        size = max(-(-len(items) // (2 * (os.cpu_count() or 1))), per_task, 1)
        self._futures = [
            executor.submit(fn, list(items[at : at + size])) for at in range(0, len(items), size)
        ]

    def results(self) -> list[Any]:
        """Each part's result, in order (waiting for the workers)."""
        return [future.result() for future in self._futures]

    def joined(self) -> list[Any]:
        """The parts' results (lists) as one list, in order: ``fn`` applied to every item."""
        return [item for part in self.results() for item in part]

    def cancel(self) -> None:
        """Drop the tasks not started (a caller that turned out not to need them)."""
        for future in self._futures:
            future.cancel()
