"""Reading a local logdir's event files in worker processes while the caller is still busy.

``runlens report`` spends its first 0.4 s importing pandas and the library, on one core. A
:class:`ReadAhead` made before those imports (this module imports neither numpy nor the decoder:
its workers do) lists the event files and starts reading them in worker processes at once;
:func:`runlens.read_scalars` given it as its ``executor`` then takes its listing and the reads it
already started instead of listing and reading again. On the 2,000-run benchmark sweep that
overlaps most of the read with the imports (see docs/report-at-scale.md).

What it reads is exactly what :func:`runlens.read_scalars` would: the same listing
(:func:`~runlens.events.sources.find_event_files`, with the same ``runs``; the read takes it,
:meth:`ReadAhead.listing`), the same tasks (:func:`~runlens.events.tasks.group_files`) of fresh
read states, the same function. A read it did not list for (another path or ``runs=``) or whose
tasks it did not start (a cached read's: its pack proves most files current) is read by its
workers as any executor's would be; a listing that fails here (no such folder) is left for the
read to report in its own words.

>>> with ReadAhead("sample_logs") as ahead:                      # doctest: +SKIP
...     import runlens                                           # meanwhile, the files are read
...     frame = runlens.read_scalars("sample_logs", executor=ahead)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from runlens.errors import RunlensError
from runlens.events.sources import EventFile, find_event_files
from runlens.events.tasks import group_files
from runlens.processes import started_workers


def _load_decoder() -> None:
    """A worker's start: the decoder imported (numpy, protobuf, CRC-32C), while the caller goes
    on importing pandas."""
    import runlens.events.files  # noqa: F401


def _read_fresh(paths: tuple[str, ...]) -> Any:
    """:func:`~runlens.events.files.read_event_files` of ``paths``, each from its start."""
    from runlens.events.files import read_event_files
    from runlens.events.records import ReadState

    return read_event_files([ReadState(path) for path in paths])


def _fresh(task: Sequence[Any]) -> tuple[str, ...] | None:
    """The paths of a task of fresh read states (each file from its start, nothing found yet),
    or None for a task that goes on from somewhere (a cached read's)."""
    fresh = all(
        s.offset == 0 and s.ordinal == 0 and not s.stopped and not s.track_checksum and not s.problems
        for s in task
    )
    return tuple(s.path for s in task) if fresh else None


class ReadAhead(Executor):
    """An executor that started reading the event files of ``path`` when it was made.

    Args:
        path: a local logdir or event file.
        runs: the run names or globs the read will select (``runs=`` of the read).
        workers: worker processes; default: one per core.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        runs: str | Sequence[str] | None = None,
        workers: int | None = None,
    ) -> None:
        self._asked = (os.fspath(path), runs)
        count = max(1, workers or os.cpu_count() or 1)
        # The decoder imported while the files are listed here: once, then forked into the other
        # workers where this process may fork (runlens.processes.started_workers).
        self._pool = started_workers(count, _load_decoder)
        self._files: list[EventFile] | None
        try:
            self._files = find_event_files(path, runs=runs)
        except RunlensError:
            self._files = None  # the read lists again and reports it, where it always did
        files = self._files or []
        groups = group_files([f.size for f in files])
        tasks = [tuple(files[i].path for i in group) for group in groups]
        sizes = [sum(files[i].size for i in group) for group in groups]
        self._started: dict[tuple[str, ...], Future] = {}
        for at in sorted(range(len(tasks)), key=lambda i: -sizes[i]):  # largest first
            self._started[tasks[at]] = self._pool.submit(_read_fresh, tasks[at])

    def listing(
        self, path: str | os.PathLike[str], runs: str | Sequence[str] | None
    ) -> list[EventFile] | None:
        """The event files it listed when made, if that was for this ``path`` and ``runs``: the
        read goes by them (listing again would cost a sweep 0.1 s, and what it reads was read
        after this listing in any case); None when it was made for others or the listing failed.
        """
        return self._files if self._asked == (os.fspath(path), runs) else None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn`` in a worker; a read of a task started ahead gives that read's future."""
        from runlens.events.files import read_event_files  # imported by the read asking

        if fn is read_event_files and len(args) == 1 and not kwargs and (paths := _fresh(args[0])):
            started = self._started.pop(paths, None)
            if started is not None:
                return started
        return self._pool.submit(fn, *args, **kwargs)

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """``fn`` over the items, in order, as :meth:`Executor.map`, through :meth:`submit`."""
        futures = [self.submit(fn, *items) for items in zip(*iterables)]
        return (future.result(timeout) for future in futures)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers; reads started ahead and never asked for are cancelled."""
        for future in self._started.values():
            future.cancel()
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)
