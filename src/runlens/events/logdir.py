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


def _written_order(path: Path) -> tuple[int, str]:
    stamp = _STAMP.search(path.name)
    return (int(stamp.group(1)) if stamp else 0, path.name)


def _patterns(selection: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if selection is None:
        return None
    return (selection,) if isinstance(selection, str) else tuple(selection)


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass
class FileRows:
    """What one event file held: its rows (codes into ``tags``) and its problems."""

    tags: list[str]
    rows: Rows
    problems: list[Problem]
    records: int


def read_event_file(path: str | os.PathLike[str]) -> FileRows:
    """Decode one event file; damage becomes problems, never an exception."""
    tags = TagTable()
    problems: list[Problem] = []
    parts: list[Rows] = []
    records = 0
    name = str(path)
    try:
        with open(path, "rb") as stream:
            for block in read_blocks(stream, path=name, problems=problems):
                records += len(block)
                parts.append(decode_block(block, tags))
    except OSError as exc:
        problems.append(Problem(name, "unreadable", None, f"{name}: cannot be read ({exc.strerror or exc}); skipped"))
    return FileRows(tags.names, Rows.concat(parts), problems, records)


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

    >>> df = read_scalars("sample_logs", tags="epoch_*")          # doctest: +SKIP
    >>> df.groupby(["run", "tag"], observed=True).size()            # doctest: +SKIP
    """
    files = find_event_files(path, runs=runs)
    results = _read_all([f.path for f in files], workers)
    tag_patterns = _patterns(tags)

    names = TagTable()
    run_names: list[str] = []
    parts: list[Rows] = []
    run_codes: list[np.ndarray] = []
    problems: list[dict[str, object]] = []
    for run, group in _by_run(files, results):
        rows = _run_rows(group, names)
        if tag_patterns is not None:
            wanted = np.array([_matches(t, tag_patterns) for t in names.names], dtype=bool)
            rows = _select(rows, wanted[rows.tag] if len(names.names) else np.zeros(0, bool))
        run_names.append(run)
        parts.append(rows)
        run_codes.append(np.full(len(rows.tag), len(run_names) - 1, dtype=np.int32))
        for result in group:
            problems.extend(p.as_dict() for p in result.problems)

    for problem in problems:
        warnings.warn(str(problem["message"]), DamagedDataWarning, stacklevel=2)
    merged = Rows.concat(parts)
    frame = pd.DataFrame(
        {
            "run": pd.Categorical.from_codes(np.concatenate(run_codes) if run_codes else [], categories=run_names),
            "tag": pd.Categorical.from_codes(merged.tag, categories=names.names),
            "step": merged.step,
            "wall_time": merged.wall_time,
            "value": merged.value,
        },
        copy=False,
    )
    if tag_patterns is not None:
        frame["tag"] = frame["tag"].cat.remove_unused_categories()
    frame.attrs["problems"] = problems
    return frame


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


def _by_run(files: list[EventFile], results: list[FileRows]) -> Iterable[tuple[str, list[FileRows]]]:
    start = 0
    for end in range(1, len(files) + 1):
        if end == len(files) or files[end].run != files[start].run:
            yield files[start].run, results[start:end]
            start = end


def _run_rows(group: list[FileRows], names: TagTable) -> Rows:
    """Concatenate a run's files with their tags recoded into ``names`` and drop tensor values of
    tags owned by a non-scalar plugin (metadata may come only with a tag's first value, so the
    plugin is decided across the whole run)."""
    parts = []
    for result in group:
        recode = np.array([names.code(t) for t in result.tags], dtype=np.int32)
        rows = result.rows
        parts.append(
            Rows(
                recode[rows.tag] if len(recode) else rows.tag, rows.step, rows.wall_time, rows.value,
                rows.tensor, {int(recode[c]): p for c, p in rows.plugins.items()},
            )
        )
    rows = Rows.concat(parts)
    foreign = [code for code, plugin in rows.plugins.items() if plugin not in _SCALAR_PLUGINS]
    if foreign and len(rows.tag):
        rows = _select(rows, ~(rows.tensor & np.isin(rows.tag, foreign)))
    return rows


def _select(rows: Rows, keep: np.ndarray) -> Rows:
    return Rows(rows.tag[keep], rows.step[keep], rows.wall_time[keep], rows.value[keep], rows.tensor[keep], rows.plugins)
