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

import contextlib
import itertools
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import connection
from multiprocessing.connection import Connection
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


def started_workers(count: int, initializer: Callable[[], object] | None = None) -> Executor:
    """``count`` worker processes, started now, ready once each has run ``initializer``: a
    :class:`ForkedPool` (``initializer`` run once, then forked; Ctrl-C left to this process) where
    this process may fork (Linux, :func:`fork_is_safe`), else a ``ProcessPoolExecutor`` of
    :func:`worker_context` that runs it in each worker. Every pool of worker processes runlens
    starts comes from here."""
    if sys.platform == "linux" and fork_is_safe():
        return ForkedPool(count, initializer)
    pool = ProcessPoolExecutor(count, mp_context=worker_context(), initializer=initializer)
    for _ in range(count):
        pool.submit(int)  # workers start on the first jobs: start them now
    return pool


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


class ForkedPool(Executor):
    """``count`` worker processes that share one start: a first worker runs ``initializer``
    (imports, a warm-up), then forks itself into the others, so that what it loaded is loaded
    once, not once per worker (matplotlib: ~0.7 s of a core each, on a 2-core machine the time of
    a figure or two). Jobs are sent in the order submitted and taken by whichever worker is free;
    :meth:`submit` gives a :class:`~concurrent.futures.Future` and never waits.

    Linux only: it forks (see :func:`fork_is_safe` for when this process may be). A worker that
    dies fails every job not yet done (:class:`~concurrent.futures.process.BrokenProcessPool`);
    the workers exit when this process does, however it ends. Jobs and results travel pickled
    between this process and its own children, never through a file. (The example is not run
    as a doctest: the test session may not be forked; tests/test_forked_pool.py runs it in fresh
    processes.)

    >>> with ForkedPool(2) as pool:  # doctest: +SKIP
    ...     [f.result() for f in [pool.submit(sum, [1, 2]), pool.submit(max, 3, 9)]]
    [3, 9]
    """

    def __init__(self, count: int, initializer: Callable[[], object] | None = None) -> None:
        context = multiprocessing.get_context("fork")
        self._jobs, jobs_writer = context.Pipe(duplex=False)
        self._take = context.Lock()  # the workers' turns at the jobs' pipe
        self._cancelled = context.Event()
        # One pipe per worker for its results, its write end held by that worker alone: the end
        # of the file is the end of the worker, even one killed halfway through sending.
        pipes = [context.Pipe(duplex=False) for _ in range(count)]
        first = context.Process(target=self._serve, args=(count, initializer, [w for _, w in pipes]))
        first.daemon = True  # ended at this process' exit; its forks end on their own (_serve)
        first.start()
        for _, writer in pipes:
            writer.close()
        self._jobs.close()
        self._futures: dict[int, Future] = {}
        self._keys = itertools.count()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self._broken: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._send, args=(jobs_writer, count), daemon=True),
            threading.Thread(target=self._collect, args=([r for r, _ in pipes],), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """``fn(*args, **kwargs)`` in a worker; its result (or exception) in the future."""
        if self._broken is not None:
            raise self._broken
        if self._closed:
            raise RuntimeError("cannot submit to a ForkedPool after shutdown")
        future: Future = Future()
        key = next(self._keys)
        self._futures[key] = future
        self._outbox.put((key, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No more jobs; ``cancel_futures``: the jobs not done are dropped (their futures
        cancelled); ``wait``: until every worker has exited."""
        if cancel_futures:
            self._cancelled.set()
            for future in list(self._futures.values()):  # the collector lets go of them meanwhile
                future.cancel()
        if not self._closed:
            self._closed = True
            self._outbox.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _send(self, writer: Connection, count: int) -> None:
        """Each job to the workers' pipe as submitted (a thread of this process: a large job waits
        until a worker reads it), then one stop per worker."""
        while (job := self._outbox.get()) is not None:
            try:
                writer.send(job)
            except Exception as error:  # a job that does not pickle, or no worker left to read it
                self._settle(job[0], False, error)
        with contextlib.suppress(OSError):  # no worker left: nothing to stop
            for _ in range(count):
                writer.send(None)
        writer.close()

    def _collect(self, results: list[Connection]) -> None:
        """Each result into its future (a thread of this process), until every worker has exited
        (``results``: each worker's pipe); a worker gone before :meth:`shutdown` fails every job
        not done."""
        while results:
            for pipe in connection.wait(results):
                try:  # no name here holds the result: the caller's future is all that does
                    self._settle(*pipe.recv())
                except (EOFError, OSError):  # its worker has exited (OSError: halfway through a result)
                    results.remove(pipe)
                    pipe.close()
                    if not self._closed:
                        self._fail(BrokenProcessPool("a worker process ended before its jobs were done"))

    def _settle(self, key: int, ok: bool, value: Any) -> None:
        """Job ``key``'s future: its result (``ok``) or exception, unless cancelled or settled;
        the pool lets go of it (a read's result is the caller's to keep or drop, not the pool's)."""
        future = self._futures.pop(key, None)
        if future is not None and not future.done() and future.set_running_or_notify_cancel():
            (future.set_result if ok else future.set_exception)(value)

    def _fail(self, error: BaseException) -> None:
        self._broken = error
        for key in list(self._futures):
            self._settle(key, False, error)

    def _serve(self, count: int, initializer: Callable[[], object] | None, results: list[Connection]) -> None:
        """A worker: started once, forked into ``count`` workers, each running jobs until a stop
        or until the process that made the pool has ended, and sending the results down its own
        pipe (``results[i]``). Ctrl-C is left to that process (the workers ignore SIGINT: no
        traceback of theirs under its one line; they end after it)."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if initializer is not None:
            initializer()
        index = next((i for i in range(1, count) if os.fork() == 0), 0)
        for i, pipe in enumerate(results):
            if i != index:
                pipe.close()
        self._results = results[index]
        ended = multiprocessing.parent_process().sentinel  # type: ignore[union-attr]  # never None here
        try:
            while ended not in connection.wait([self._jobs, ended]):
                with self._take:  # both workers woke: one reads the job, the other waits again
                    job = self._jobs.recv() if self._jobs.poll() else ()
                if job is None:
                    break
                if job and not self._cancelled.is_set():
                    self._run(*job)
        finally:
            if index:  # a fork of the first worker: none of its exit to run again
                os._exit(0)

    def _run(self, key: int, fn: Callable[..., Any], args: tuple, kwargs: dict) -> None:
        try:
            reply = (key, True, fn(*args, **kwargs))
        except BaseException as error:  # sent to the future, raised where its result is asked for
            reply = (key, False, error)
        try:
            self._results.send(reply)
        except Exception as error:  # a result or exception that does not pickle
            self._results.send((key, False, RuntimeError(f"{fn.__name__}: {error!r}")))
