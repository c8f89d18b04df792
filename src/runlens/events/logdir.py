"""Logdirs -> the long scalar frame: run discovery, file order, (parallel) reading, problems.

A *run* is a folder holding event files (any file whose name contains ``tfevents``), named by its
path relative to the logdir with '/' separators, '.' for the logdir itself -- as TensorBoard names
runs. A run's files are read in the order they were written (the creation time in their names, then
the name), and every row is kept: this is the raw view, duplicates from resumed runs included.
"""

from __future__ import annotations

import fnmatch
import os
import re
import struct
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from runlens.errors import DamagedDataWarning, RunlensError
from runlens.events.decode import Rows, TagTable, decode_block
from runlens.events.records import Problem, read_blocks

COLUMNS = ("run", "tag", "step", "wall_time", "value")
_PARALLEL_MIN_BYTES = 32 << 20  # below this, starting worker processes costs more than it saves
_STAMP = re.compile(r"tfevents\.(\d+)")
_DIGITS = re.compile(r"(\d+)")
# Plugins whose rank-0 tensors are scalars; tensors of tags owned by any other plugin are not.
_SCALAR_PLUGINS = frozenset({"scalars"})


@dataclass(frozen=True)
class EventFile:
    run: str
    path: Path


def find_event_files(path: str | os.PathLike[str], *, runs: str | Sequence[str] | None = None) -> list[EventFile]:
    """Every event file under ``path`` (a logdir or one event file), grouped by run, in read order.

    ``runs`` keeps only runs whose name matches one of the given names or globs.
    Symlinked folders are followed (people link runs together to compare them), each real folder once.

    >>> find_event_files("no/such/dir")
    Traceback (most recent call last):
    ...
    runlens.errors.RunlensError: no/such/dir: no such file or folder; give a logdir or an event file
    """
    root = Path(path)
    if root.is_file():
        found = [EventFile(".", root)]
    elif root.is_dir():
        found = list(_walk(root))
    else:
        raise RunlensError(f"{path}: no such file or folder; give a logdir or an event file")
    if not found:
        raise RunlensError(f"{path}: no event files (files named '*tfevents*') in it or below it")
    patterns = _patterns(runs)
    if patterns is not None:
        found = [f for f in found if _matches(f.run, patterns)]
        if not found:
            raise RunlensError(f"{path}: no run matches runs={list(patterns)}")
    return sorted(found, key=lambda f: (f.run, *_written_order(f.path)))


def _walk(root: Path) -> Iterable[EventFile]:
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink cycle or a second link to the same run
            subfolders.clear()
            continue
        seen.add(real)
        subfolders.sort()
        run = Path(folder).relative_to(root).as_posix()
        for name in files:
            if "tfevents" in name:
                yield EventFile(run, Path(folder, name))


def _written_order(path: Path) -> tuple[int, list[int | str]]:
    """Creation time from the name (``events.out.tfevents.<time>.<host>.<pid>.<counter>...``),
    then the name with its numbers compared as numbers (counter 8 before counter 10)."""
    stamp = _STAMP.search(path.name)
    natural = [int(part) if part.isdigit() else part for part in _DIGITS.split(path.name)]
    return (int(stamp.group(1)) if stamp else 0, natural)


def _patterns(selection: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if selection is None:
        return None
    return (selection,) if isinstance(selection, str) else tuple(selection)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass
class FileRows:
    """What one event file held: its rows block by block (tag codes into ``tags``), the first
    plugin named for each tag, its problems and how many intact records it had."""

    tags: list[str]
    parts: list[Rows]
    plugins: dict[int, str]
    problems: list[Problem]
    records: int
    first_wall_time: float | None = None  # of the file's first record: when the writer opened it


def read_event_file(path: str | os.PathLike[str]) -> FileRows:
    """Decode one event file; damage becomes problems, never an exception."""
    tags = TagTable()
    problems: list[Problem] = []
    parts: list[Rows] = []
    plugins: dict[int, str] = {}
    records = 0
    first_wall_time = None
    name = str(path)
    try:
        with open(path, "rb") as stream:
            for block in read_blocks(stream, path=name, problems=problems):
                if records == 0 and len(block):
                    first_wall_time = _wall_time_of(block.payload(0))
                records += len(block)
                rows = decode_block(block, tags)
                for code, plugin in rows.plugins.items():
                    plugins.setdefault(code, plugin)
                if len(rows.tag):
                    parts.append(rows)
    except OSError as exc:
        problems.append(Problem(name, "unreadable", None, f"{name}: cannot be read ({exc.strerror or exc}); skipped"))
    return FileRows(tags.names, parts, plugins, problems, records, first_wall_time)


def _wall_time_of(payload: memoryview) -> float | None:
    """An Event's wall_time when it is its first field (as every writer puts it)."""
    if len(payload) >= 9 and payload[0] == 0x09:
        return float(struct.unpack_from("<d", payload, 1)[0])
    return None


def read_scalars(
    path: str | os.PathLike[str],
    *,
    runs: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    workers: int | None = None,
) -> pd.DataFrame:
    """Every scalar in a logdir (or one event file) as a long DataFrame, never sampled.

    Columns: ``run`` and ``tag`` (categorical of str), ``step`` (int64), ``wall_time`` (float64,
    seconds since the epoch), ``value`` (float64). Rows are in the order written, run by run;
    duplicates from a resumed run are kept. ``runs`` / ``tags`` keep names equal to, or matching the
    glob(s) given. ``workers`` processes read files in parallel (default: all cores when there is
    enough to read). Damaged files yield every intact record, one :class:`DamagedDataWarning` each,
    and are listed in ``df.attrs["problems"]`` (a list of dicts: path, kind, offset, message).

    Rank-0 tensors count as scalars unless their tag's first plugin metadata in the run names a
    plugin other than ``scalars`` (so e.g. hparams or custom plugins' rank-0 tensors are left out);
    ``simple_value`` is always a scalar.

    >>> df = read_scalars("sample_logs", tags="epoch_*")          # doctest: +SKIP
    >>> df.groupby(["run", "tag"], observed=True).size()            # doctest: +SKIP
    """
    files = find_event_files(path, runs=runs)
    results = _read_all([f.path for f in files], workers)
    files, results = _in_written_order(files, results)
    tag_patterns = _patterns(tags)

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
    recodes = [np.array([names.code(t) for t in result.tags], dtype=np.int32) for result in group]
    plugins: dict[int, str] = {}
    for result, recode in zip(group, recodes):
        for code, plugin in result.plugins.items():
            plugins.setdefault(int(recode[code]), plugin)
    foreign = np.zeros(len(names.names), dtype=bool)
    foreign[[code for code, plugin in plugins.items() if plugin not in _SCALAR_PLUGINS]] = True
    wanted = np.array([tag_patterns is None or _matches(t, tag_patterns) for t in names.names], dtype=bool)

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
    tag = np.empty(total, dtype=np.int32)
    at = 0
    for piece, size in zip(pieces, sizes):
        run[at : at + size] = piece.run
        tag[at : at + size] = piece.rows.tag if piece.keep is None else piece.rows.tag[piece.keep]
        piece.rows.tag = None
        at += size
    used = np.bincount(tag, minlength=len(tag_names)) > 0
    renumber = (np.cumsum(used) - 1).astype(_code_dtype(int(used.sum())))
    columns: dict[str, object] = {
        "run": pd.Categorical.from_codes(run, categories=run_names),
        "tag": pd.Categorical.from_codes(renumber[tag], categories=[n for n, u in zip(tag_names, used) if u]),
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
    pieces.clear()
    return pd.DataFrame(columns, copy=False)


def _code_dtype(categories: int) -> type[np.signedinteger]:
    """The integer type pandas itself would pick for a Categorical's codes."""
    for dtype in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(dtype).max:
            return dtype
    return np.int64


def _read_all(paths: list[Path], workers: int | None) -> list[FileRows]:
    total = sum(_size(p) for p in paths)
    if workers is None:
        workers = (os.cpu_count() or 1) if total >= _PARALLEL_MIN_BYTES else 1
    workers = max(1, min(workers, len(paths)))
    if workers == 1:
        return [read_event_file(p) for p in paths]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # largest first, so one big file does not end up alone at the end
        order = sorted(range(len(paths)), key=lambda i: -_size(paths[i]))
        done = dict(zip(order, pool.map(read_event_file, [paths[i] for i in order], chunksize=1)))
    return [done[i] for i in range(len(paths))]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _in_written_order(files: list[EventFile], results: list[FileRows]) -> tuple[list[EventFile], list[FileRows]]:
    """Within each run, order files by when their writer opened them (the wall_time of their first
    record), falling back on the name: two files created in the same second by one process are
    told apart by the first record, not by how their names sort."""

    def key(i: int) -> tuple:
        stamp, natural = _written_order(files[i].path)
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


