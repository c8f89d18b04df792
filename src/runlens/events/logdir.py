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
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from runlens.errors import DamagedDataWarning
from runlens.events.cache import ScalarCache
from runlens.events.decode import Rows, TagTable
from runlens.events.files import FileRows, Resume, read_event_files
from runlens.events.sources import EventFile, find_event_files, is_url, matches, name_patterns, written_order

_PARALLEL_MIN_BYTES = 32 << 20  # below this, starting worker processes costs more than it saves
# Plugins whose rank-0 tensors are scalars; tensors of tags owned by any other plugin are not.
_SCALAR_PLUGINS = frozenset({"scalars"})


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

    Columns: ``run`` and ``tag`` (categorical of str), ``step`` (int64), ``wall_time`` (float64,
    seconds since the epoch), ``value`` (float64). Rows are in the order written, run by run;
    duplicates from a resumed run are kept. Damaged files yield every intact record, one
    :class:`DamagedDataWarning` each, and are listed in ``df.attrs["problems"]`` (dicts: path,
    kind, offset, message).

    Args:
        path: a logdir or one event file; a URL (``s3://``, ``gs://``, ``memory://``, ...) is read
            through fsspec, streamed.
        runs, tags: keep names equal to, or glob-matching, the given name(s).
        workers: processes (threads for URLs) reading files in parallel; default: every core once
            there is enough to read.
        executor: any ``concurrent.futures.Executor`` to read the files with instead, e.g. a Dask
            cluster's ``client.get_executor()``; results are identical to a serial read.
        cache: True for the default cache folder (``~/.cache/runlens``), or a folder: re-reading an
            unchanged logdir then costs a fraction of the first read, and only the bytes appended
            to a growing file are parsed (see :mod:`runlens.events.cache`).
        storage_options: passed to the fsspec filesystem of a URL (credentials, endpoint, ...).

    Rank-0 tensors count as scalars unless their tag's first plugin metadata in the run names a
    plugin other than ``scalars`` (so text, hparams or custom plugins' rank-0 tensors are left out);
    ``simple_value`` is always a scalar.

    >>> df = read_scalars("sample_logs", tags="epoch_*")          # doctest: +SKIP
    >>> df.groupby(["run", "tag"], observed=True).size()            # doctest: +SKIP
    """
    files = find_event_files(path, runs=runs, storage_options=storage_options)
    store = _cache(cache)
    results = _read_all(files, workers=workers, executor=executor, cache=store, storage_options=storage_options)
    files, results = _in_written_order(files, results)
    tag_patterns = name_patterns(tags)

    names = TagTable()
    run_names: list[str] = []
    pieces: list[_Piece] = []
    problems: list[dict[str, object]] = []
    for run, group in _by_run(files, results):
        run_names.append(run)
        pieces.extend(_run_pieces(len(run_names) - 1, group, names, tag_patterns))
        for result in group:
            problems.extend(p.as_dict() for p in result.problems)
    del results

    for problem in problems:
        warnings.warn(str(problem["message"]), DamagedDataWarning, stacklevel=2)
    frame = _assemble(pieces, run_names, names.names)
    frame.attrs["problems"] = problems
    return frame


def _cache(cache: bool | str | os.PathLike[str] | None) -> ScalarCache | None:
    if cache is None or cache is False:
        return None
    return ScalarCache(None if cache is True else cache)


def _read_all(
    files: list[EventFile],
    *,
    workers: int | None,
    executor: Executor | None,
    cache: ScalarCache | None,
    storage_options: dict[str, Any] | None,
) -> list[FileRows]:
    """Every file's rows: from the cache when it proves them current, else read (the new bytes only,
    when the cache proves the file just grew), in parallel when it pays."""
    lookups = [cache.lookup(f) for f in files] if cache is not None else [None] * len(files)
    results: list[FileRows | None] = [look.rows if look is not None else None for look in lookups]
    todo = [i for i, result in enumerate(results) if result is None]
    chunks = _chunks(todo, [files[i].size for i in todo])
    tasks = [[(files[i].path, lookups[i].resume if lookups[i] is not None else None) for i in chunk] for chunk in chunks]
    read = partial(_read_chunk, checksum=cache is not None, storage_options=storage_options)
    sizes = [sum(files[i].size for i in chunk) for chunk in chunks]
    remote = any(is_url(f.path) for f in files)
    for chunk, fresh_rows in zip(chunks, _map(read, tasks, sizes, workers, executor, remote=remote)):
        for i, fresh in zip(chunk, fresh_rows):
            previous = lookups[i].previous if lookups[i] is not None else None
            results[i] = previous.extended(fresh) if previous is not None else fresh
            if cache is not None:
                cache.store(files[i], results[i])
    return results  # type: ignore[return-value]


def _chunks(indices: list[int], sizes: list[int], *, max_bytes: int = 8 << 20, max_files: int = 512) -> list[list[int]]:
    """Consecutive files grouped into tasks of up to ``max_bytes`` / ``max_files``: one task per
    big file, many small files per task (their records are then decoded together)."""
    chunks: list[list[int]] = []
    size = 0
    for index, file_size in zip(indices, sizes):
        if not chunks or size + file_size > max_bytes or len(chunks[-1]) >= max_files:
            chunks.append([])
            size = 0
        chunks[-1].append(index)
        size += file_size
    return chunks


def _read_chunk(
    task: list[tuple[str, Resume | None]], *, checksum: bool, storage_options: dict[str, Any] | None
) -> list[FileRows]:
    return read_event_files(task, checksum=checksum, storage_options=storage_options)


def _map(read, tasks: list, sizes: list[int], workers: int | None, executor: Executor | None, *, remote: bool) -> Iterable:
    if executor is not None:
        return executor.map(read, tasks)
    if workers is None:
        workers = (os.cpu_count() or 1) if remote or sum(sizes) >= _PARALLEL_MIN_BYTES else 1
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        return map(read, tasks)
    # Largest first, so one big task does not end up alone at the end.
    order = sorted(range(len(tasks)), key=lambda i: -sizes[i])
    pool_type = ThreadPoolExecutor if remote else ProcessPoolExecutor  # I/O-bound remote reads: threads
    with pool_type(max_workers=workers) as pool:
        done = dict(zip(order, pool.map(read, [tasks[i] for i in order])))
    return [done[i] for i in range(len(tasks))]


def _in_written_order(files: list[EventFile], results: list[FileRows]) -> tuple[list[EventFile], list[FileRows]]:
    """Within each run, order files by when their writer opened them (the wall_time of their first
    record), falling back on the name: two files created in the same second by one process are
    told apart by the first record, not by how their names sort."""

    def key(i: int) -> tuple:
        stamp, natural = written_order(files[i].path)
        opened = results[i].first_wall_time
        return (files[i].run, opened if opened is not None else float(stamp), stamp, natural)

    order = sorted(range(len(files)), key=key)
    return [files[i] for i in order], [results[i] for i in order]


def _by_run(files: list[EventFile], results: list[FileRows]) -> Iterable[tuple[str, list[FileRows]]]:
    start = 0
    for end in range(1, len(files) + 1):
        if end == len(files) or files[end].run != files[start].run:
            yield files[start].run, results[start:end]
            start = end


@dataclass
class _Piece:
    """One block's rows bound for the frame, tag codes already global; ``keep`` None for all."""

    run: int
    rows: Rows
    keep: np.ndarray | None

    @property
    def size(self) -> int:
        return len(self.rows.tag) if self.keep is None else int(self.keep.sum())


def _run_pieces(run: int, group: list[FileRows], names: TagTable, tag_patterns: tuple[str, ...] | None) -> list[_Piece]:
    """A run's blocks with tags recoded into ``names``; tensor values of tags owned by a non-scalar
    plugin are dropped (metadata may come only with a tag's first value, so the plugin is decided
    across the whole run, first file first)."""
    codes = [[names.code(t) for t in result.tags] for result in group]
    recodes = [np.array(c, dtype=np.int16 if len(names.names) < 2**15 else np.int32) for c in codes]
    plugins: dict[int, str] = {}
    for result, recode in zip(group, recodes):
        for code, plugin in result.plugins.items():
            plugins.setdefault(int(recode[code]), plugin)
    foreign = np.zeros(len(names.names), dtype=bool)
    foreign[[code for code, plugin in plugins.items() if plugin not in _SCALAR_PLUGINS]] = True
    wanted = np.array([tag_patterns is None or matches(t, tag_patterns) for t in names.names], dtype=bool)

    pieces = []
    for result, recode in zip(group, recodes):
        for rows in result.parts:
            rows.tag = recode[rows.tag]
            keep = wanted[rows.tag] & ~(rows.tensor & foreign[rows.tag])
            rows.tensor = np.empty(0, dtype=bool)  # decided; free it
            pieces.append(_Piece(run, rows, None if keep.all() else keep))
    return pieces


def _assemble(pieces: list[_Piece], run_names: list[str], tag_names: list[str]) -> pd.DataFrame:
    """Build the frame column by column, releasing each column of the pieces as soon as it is
    copied, so the peak stays near one copy of the data plus one column. Tags seen only on
    non-scalar values (histograms, text, ...) do not become categories."""
    sizes = [piece.size for piece in pieces]
    total = sum(sizes)
    run = np.empty(total, dtype=_code_dtype(len(run_names)))
    tag = np.empty(total, dtype=_code_dtype(len(tag_names)))
    used = np.zeros(len(tag_names), dtype=bool)
    at = 0
    for piece, size in zip(pieces, sizes):
        run[at : at + size] = piece.run
        codes = piece.rows.tag if piece.keep is None else piece.rows.tag[piece.keep]
        tag[at : at + size] = codes
        used[np.unique(codes)] = True
        piece.rows.tag = None
        at += size
    if not used.all():
        tag = (np.cumsum(used) - 1).astype(_code_dtype(int(used.sum())))[tag]
    columns: dict[str, object] = {
        "run": pd.Categorical.from_codes(run, categories=run_names),
        "tag": pd.Categorical.from_codes(tag, categories=[n for n, u in zip(tag_names, used) if u]),
    }
    del tag
    for name, dtype in (("step", np.int64), ("wall_time", np.float64), ("value", np.float64)):
        out = np.empty(total, dtype=dtype)
        at = 0
        for piece, size in zip(pieces, sizes):
            column = getattr(piece.rows, name)
            out[at : at + size] = column if piece.keep is None else column[piece.keep]
            setattr(piece.rows, name, None)  # free it now, not when the whole frame is built
            at += size
        columns[name] = out
        _give_back_freed_memory()
    pieces.clear()
    return pd.DataFrame(columns, copy=False)


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


