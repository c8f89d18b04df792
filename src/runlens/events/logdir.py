"""Logdirs -> the long scalar frame: which files, read how (cached, in parallel, remotely), in
which order, and the frame built from them.

A run's files are read in the order they were written and every row is kept: this is the raw view,
duplicates from resumed runs included.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from runlens.errors import CacheWarning, DamagedDataWarning
from runlens.events.cache import LogdirCache, Lookup, ScalarCache
from runlens.events.files import ChunkRows, read_event_files
from runlens.events.found import SCALAR_PLUGINS, ReadFound, plugin_tags
from runlens.events.read_ahead import ReadAhead
from runlens.events.records import ReadState
from runlens.events.rows import TagTable
from runlens.events.sources import EventFile, find_event_files, is_url, matches, name_patterns, written_order
from runlens.events.tasks import group_files
from runlens.name_columns import names
from runlens.processes import can_start_workers, started_workers
from runlens.times import utc_from_unix_seconds

_TRIM_EVERY = 16 << 20  # while the frame is built, give freed memory back every this many bytes
_PARALLEL_MIN_BYTES = (
    8 << 20
)  # below this, worker processes (forked in ms, but results are pickled back) save nothing


def read_scalars(
    path: str | os.PathLike[str],
    *,
    runs: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    cache: bool | str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Every scalar in a logdir (or one event file) as a long DataFrame, never sampled.

    Columns: ``run`` and ``tag`` (categorical of str, categories: the runs and tags with rows),
    ``step`` (int64), ``wall_time`` (``datetime64[ns, UTC]``, the nanosecond nearest the double
    written: see :mod:`runlens.times`), ``value`` (float64, bit-identical to what was written).
    Rows are in the order written, run by run; duplicates from a resumed run are kept. Damaged files yield every intact record, one
    :class:`DamagedDataWarning` each, and are listed in ``df.attrs["problems"]`` (dicts: path,
    kind, offset, message). ``df.attrs["runs"]`` lists every run folder read, rows or not.

    Args:
        path: a logdir or one event file; a URL (``s3://``, ``gs://``, ``memory://``, ...) is read
            through fsspec, streamed.
        runs, tags: keep names equal to, or glob-matching, the given name(s).
        workers: processes (threads for URLs) reading files in parallel; default: every core once
            there is enough to read.
        executor: any ``concurrent.futures.Executor`` to read the files with instead, e.g. a Dask
            cluster's ``client.get_executor()``; results are identical to a serial read. A
            :class:`~runlens.events.read_ahead.ReadAhead` of this ``path`` and ``runs`` gives the
            files it listed and the reads it started.
        cache: True for the default cache folder (``~/.cache/runlens``), or a folder: re-reading an
            unchanged logdir then costs a fraction of the first read, and only the bytes appended
            to a growing file are parsed (see :mod:`runlens.events.cache`). A pack that is damaged
            or that others could have written is ignored with a :class:`CacheWarning`.
        storage_options: passed to the fsspec filesystem of a URL (credentials, endpoint, ...).

    Rank-0 tensors count as scalars unless their tag's first plugin metadata in the run names a
    plugin other than ``scalars`` (so text, hparams or custom plugins' rank-0 tensors are left out);
    ``simple_value`` is always a scalar.

    >>> df = read_scalars("sample_logs", tags="epoch_*")          # doctest: +SKIP
    >>> df.groupby(["run", "tag"], observed=True).size()            # doctest: +SKIP
    """
    return read_logdir(
        path,
        runs=runs,
        tags=tags,
        workers=workers,
        executor=executor,
        cache=cache,
        storage_options=storage_options,
    )[0]


def read_logdir(
    path: str | os.PathLike[str],
    *,
    runs: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    workers: int | None = None,
    executor: Executor | None = None,
    cache: bool | str | os.PathLike[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, ReadFound]:
    """:func:`read_scalars`' frame and what the read found beside it
    (:class:`~runlens.events.found.ReadFound`): one listing and one read of the files, for
    callers that need both (the report).

    >>> frame, found = read_logdir("sample_logs")                    # doctest: +SKIP
    >>> found.files_with("_hparams_/session_start_info", "hparams")   # doctest: +SKIP
    """
    files = executor.listing(path, runs) if isinstance(executor, ReadAhead) else None
    if files is None:
        files = find_event_files(path, runs=runs, storage_options=storage_options)
    pack = _cache(cache, path)
    chunks, where = _read_all(
        files,
        workers=workers,
        executor=executor,
        cache=pack,
        everything=runs is None,
        storage_options=storage_options,
    )
    for note in pack.notes if pack is not None else ():
        warnings.warn(note, CacheWarning, stacklevel=3)
    order = written_order(files, opened=[chunks[c].first_wall_times[p] for c, p in where])
    problems = [p.as_dict() for i in order for p in _state(chunks, where[i]).problems]
    for problem in problems:
        warnings.warn(str(problem["message"]), DamagedDataWarning, stacklevel=3)
    run_names = sorted({f.run for f in files})
    run_codes = {run: code for code, run in enumerate(run_names)}
    pieces, tag_names = _pieces(
        [(where[i], run_codes[files[i].run]) for i in order], chunks, name_patterns(tags)
    )
    found = ReadFound(tuple(files), plugin_tags(files, chunks, where), complete=runs is None)
    frame = _assemble(pieces, tag_names, run_names)
    frame.attrs["problems"] = problems
    frame.attrs["runs"] = run_names
    return frame, found


def _cache(cache: bool | str | os.PathLike[str] | None, path: str | os.PathLike[str]) -> LogdirCache | None:
    if cache is None or cache is False:
        return None
    return ScalarCache(None if cache is True else cache).open(path)


def _read_all(
    files: list[EventFile],
    *,
    workers: int | None,
    executor: Executor | None,
    cache: LogdirCache | None,
    everything: bool,
    storage_options: dict[str, Any] | None,
) -> tuple[list[ChunkRows], list[tuple[int, int]]]:
    """Every file's rows -- from the cache when it proves them current, else read (the new bytes
    only, when the cache proves the file just grew), in parallel when it pays -- as chunks, and
    where each file's rows are: (chunk, position in the chunk)."""
    lookups = [cache.lookup(f) for f in files] if cache is not None else [Lookup()] * len(files)
    chunks: list[ChunkRows] = []
    numbers: dict[int, int] = {}  # id(chunk) -> its index in chunks
    where: list[tuple[int, int]] = [(-1, -1)] * len(files)

    def place(i: int, chunk: ChunkRows, position: int) -> None:
        if id(chunk) not in numbers:
            numbers[id(chunk)] = len(chunks)
            chunks.append(chunk)
        where[i] = (numbers[id(chunk)], position)

    for i, look in enumerate(lookups):
        if look.chunk is not None:
            place(i, look.chunk, look.position)
    todo = [i for i, (chunk, _) in enumerate(where) if chunk < 0]
    groups = group_files([files[i].size for i in todo], todo)
    checksum = cache is not None  # the cache proves a file only grew by the CRC-32C of what was read
    tasks = [
        [lookups[i].resume or ReadState(files[i].path, track_checksum=checksum) for i in group]
        for group in groups
    ]
    # The plain function when there are no storage options: a read-ahead executor recognises it
    # (runlens.events.read_ahead).
    read = (
        read_event_files
        if storage_options is None
        else partial(read_event_files, storage_options=storage_options)
    )
    sizes = [sum(files[i].size for i in group) for group in groups]
    remote = any(is_url(f.path) for f in files)
    for group, fresh in zip(groups, _map(read, tasks, sizes, workers, executor, remote=remote)):
        _give_back_freed_memory()  # the chunk's decoding (or unpickling) left freed heap behind
        for position, i in enumerate(group):
            previous = lookups[i].previous
            if previous is None:
                place(i, fresh, position)
            else:  # a file that grew: the rows read before, then the new ones
                place(i, ChunkRows.of(previous.extended(fresh.file(position))), 0)
    if cache is not None:
        cache.save(files, [(chunks[c], p) for c, p in where], everything=everything)
    return chunks, where


def _map(
    read, tasks: list, sizes: list[int], workers: int | None, executor: Executor | None, *, remote: bool
) -> Iterable:
    if executor is not None:
        return executor.map(read, tasks)
    if workers is None:
        workers = (os.cpu_count() or 1) if remote or sum(sizes) >= _PARALLEL_MIN_BYTES else 1
    workers = max(1, min(workers, len(tasks)))
    if workers == 1 or not (remote or can_start_workers()):
        return map(read, tasks)
    # Largest first, so one big task does not end up alone at the end.
    order = sorted(range(len(tasks)), key=lambda i: -sizes[i])
    # I/O-bound remote reads: threads; processes started safely in a process running TensorFlow
    pool = ThreadPoolExecutor(workers) if remote else started_workers(workers)
    with pool:
        done = dict(zip(order, pool.map(read, [tasks[i] for i in order])))
    return [done[i] for i in range(len(tasks))]


def _state(chunks: list[ChunkRows], at: tuple[int, int]) -> ReadState:
    return chunks[at[0]].states[at[1]]


@dataclass
class _Piece:
    """Consecutive rows of one chunk bound for the frame: those of its files ``first`` to ``last``
    (exclusive), with their runs' codes; ``keep`` None for all rows."""

    chunk: ChunkRows
    recode: np.ndarray  # the chunk's tag codes -> the frame's
    first: int
    last: int
    runs: list[int]
    keep: np.ndarray | None = None

    @property
    def rows(self) -> tuple[int, int]:
        """Where its rows are in the chunk: (from, to)."""
        offsets = self.chunk.offsets
        return int(offsets[self.first]), int(offsets[self.last])

    @property
    def size(self) -> int:
        lo, hi = self.rows
        return hi - lo if self.keep is None else int(self.keep.sum())


def _pieces(
    ordered: list[tuple[tuple[int, int], int]], chunks: list[ChunkRows], tag_patterns: tuple[str, ...] | None
) -> tuple[list[_Piece], list[str]]:
    """The frame's rows as pieces of chunks, in order (``ordered``: each file's place in the
    chunks and its run's code, in the frame's order), with the global tag table. Consecutive files
    of one chunk make one piece, so a sweep of thousands of files is assembled from a few pieces.

    Tensor values of a tag owned by a non-scalar plugin are dropped: metadata may come only with a
    tag's first value, so the plugin is decided across the whole run, first file first.
    """
    names = TagTable()
    recodes = [np.array([names.code(t) for t in chunk.tags] or [0], dtype=np.int32) for chunk in chunks]
    plugins: dict[tuple[int, int], str] = {}
    pieces: list[_Piece] = []
    as_lists = [recode.tolist() for recode in recodes]  # looked up per plugin mark: plain ints
    for (number, position), run in ordered:
        recode = as_lists[number]
        for code, plugin in chunks[number].plugins[position].items():
            plugins.setdefault((run, recode[code]), plugin)
        last = pieces[-1] if pieces else None
        if last is not None and last.chunk is chunks[number] and last.last == position:
            last.last += 1
            last.runs.append(run)
        else:
            pieces.append(_Piece(chunks[number], recodes[number], position, position + 1, [run]))
    foreign = {key for key, plugin in plugins.items() if plugin not in SCALAR_PLUGINS}
    wanted = np.array(
        [tag_patterns is None or matches(t, tag_patterns) for t in names.names] or [True], dtype=bool
    )
    if tag_patterns is None and not foreign:
        return pieces, names.names
    keys = np.array([run * len(names.names) + code for run, code in foreign], dtype=np.int64)
    for piece in pieces:
        tag = piece.recode[piece.chunk.column("tag", *piece.rows)]
        keep = wanted[tag]
        if foreign:
            runs = np.repeat(piece.runs, piece.chunk.counts[piece.first : piece.last])
            keep &= ~(
                piece.chunk.column("tensor", *piece.rows)
                & np.isin(runs.astype(np.int64) * len(names.names) + tag, keys)
            )
        piece.keep = None if keep.all() else keep
    return pieces, names.names


def _assemble(pieces: list[_Piece], tag_names: list[str], run_names: list[str]) -> pd.DataFrame:
    """Build the frame column by column, releasing each column of a chunk's part as soon as the
    last piece using it is copied, so the peak stays near one copy of the data plus one column.
    Only runs and tags with rows become categories: not a folder of hparams or histograms only,
    nor a tag seen only on non-scalar values (histograms, text, ...)."""
    total = sum(piece.size for piece in pieces)
    copy = _ColumnCopier(pieces)
    run = np.empty(total, dtype=_code_dtype(len(run_names)))
    at = 0
    for piece in pieces:
        runs = np.repeat(np.array(piece.runs, dtype=run.dtype), piece.chunk.counts[piece.first : piece.last])
        runs = runs if piece.keep is None else runs[piece.keep]
        run[at : at + len(runs)] = runs
        at += len(runs)
    tag = copy("tag", np.empty(total, dtype=_code_dtype(len(tag_names))), recode=True, also_free="tensor")
    columns: dict[str, object] = {"run": _used_categories(run, run_names)}
    columns["tag"] = _used_categories(tag, tag_names)
    del tag, run
    for name, dtype in (("step", np.int64), ("wall_time", np.float64), ("value", np.float64)):
        columns[name] = copy(name, np.empty(total, dtype=dtype))
    columns["wall_time"] = utc_from_unix_seconds(columns["wall_time"])  # runlens.times' convention
    pieces.clear()
    return pd.DataFrame(columns, copy=False)


def _used_categories(codes: np.ndarray, labels: list[str]) -> pd.Categorical:
    """A categorical of ``codes`` into ``labels`` that keeps only the labels some row uses (names
    as the OS gives them: :data:`runlens.name_columns.NAME_DTYPE`)."""
    used = np.bincount(codes, minlength=len(labels)) > 0
    if not used.all():
        codes = (np.cumsum(used) - 1).astype(_code_dtype(int(used.sum())))[codes]
    return pd.Categorical.from_codes(codes, categories=names(n for n, u in zip(labels, used) if u))


class _ColumnCopier:
    """Copies one column of every piece, in order, into the frame's column, freeing that column of
    each chunk part right after the last piece that uses it."""

    def __init__(self, pieces: list[_Piece]) -> None:
        self.pieces = pieces
        self.segments = [piece.chunk.segments(*piece.rows) for piece in pieces]
        last_use: dict[tuple[int, int], int] = {}
        for k, (piece, segments) in enumerate(zip(pieces, self.segments)):
            for part, _ in segments:
                last_use[(id(piece.chunk), part)] = k
        self.frees: list[list[int]] = [[] for _ in pieces]
        for (_, part), k in last_use.items():
            self.frees[k].append(part)
        self.freed = 0  # bytes freed since memory was last given back

    def __call__(
        self, name: str, out: np.ndarray, *, recode: bool = False, also_free: str | None = None
    ) -> np.ndarray:
        at = 0
        for piece, segments, frees in zip(self.pieces, self.segments, self.frees):
            done = 0  # rows of the piece gone through
            for part, span in segments:
                values = getattr(piece.chunk.parts[part], name)[span]
                values = piece.recode[values] if recode else values
                if piece.keep is not None:
                    values = values[piece.keep[done : done + len(values)]]
                done += span.stop - span.start
                out[at : at + len(values)] = values
                at += len(values)
            for part in frees:
                for column in (name, also_free):
                    if column is not None:
                        self.freed += getattr(piece.chunk.parts[part], column).nbytes
                        setattr(
                            piece.chunk.parts[part], column, None
                        )  # free it now, not when the whole frame is built
            if self.freed >= _TRIM_EVERY:
                _give_back_freed_memory()
                self.freed = 0
        return out


def _give_back_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc keeps them otherwise: the block-sized arrays just
    freed sit in the heap while the frame's columns are fresh mappings, so the resident set would
    hold both). A no-op where there is no glibc."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _load_malloc_trim():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _load_malloc_trim() if sys.platform.startswith("linux") else None


def _code_dtype(categories: int) -> type[np.signedinteger]:
    """The integer type pandas itself would pick for a Categorical's codes."""
    for dtype in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(dtype).max:
            return dtype
    return np.int64
