"""What a report is built from: the frame of a logdir or of a frame given, the runs selected, and
the folder to look for checkpoints in.

>>> selected_runs(pd.DataFrame({"run": ["a", "b"], "epoch": [0, 0]}), "a")["run"].tolist()
['a']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runlens.checkpoints.find import CHECKPOINTS_FOLDER, find_checkpoints, inspect_found, run_of
from runlens.epochs import split_keras_run
from runlens.errors import RunlensError
from runlens.events.read_ahead import ReadAhead
from runlens.events.sources import matches, name_patterns
from runlens.hparams import HParamsAhead, hparams_of_files
from runlens.manifest import ended_runs, run_manifests, says_ended
from runlens.name_columns import as_names, name_codes
from runlens.policies.runs import check_frame, is_evals_frame
from runlens.processes import Ahead, can_start_workers, fork_is_safe
from runlens.report.build.checkpoints import read_report_checkpoints
from runlens.report.build.live import Manifests, hparams_files, read_run_manifests

if TYPE_CHECKING:
    from runlens.events.found import ReadFound


class ReportReads:
    """What a report reads once for all its framework parts: what the read of its logdir found
    beside the frame (``found``, :class:`runlens.events.found.ReadFound`; None for a frame given),
    the checkpoints under each folder looked in and the hparams the runs recorded, each read when
    a part first asks for them.

    Given an ``executor`` (the read's), :meth:`walk_ahead` walks a folder for checkpoints in one of
    its workers, queued behind the read's files: a worker free once the files are read walks the
    folders while this process makes the runs' frame. Once it is done, :meth:`checkpoints_ahead`
    has the workers read which of the runs it found ended and open and check their files.
    :meth:`hparams_ahead` and :meth:`manifests_ahead` have the workers read the runs' hparams files
    and ``runlens.json`` while this process replays the runs (the latter, in a folder being walked,
    after the walk: each ``runlens.json`` is then read once, for the live comparison and for
    whether its run ended).

    >>> ReportReads(None).checkpoints(Path("no/such/folder"))[:21]
    'checkpoints not read:'
    """

    def __init__(self, found: ReadFound | None, executor: Executor | None = None) -> None:
        self.found = found
        self._executor = executor
        self._walks: dict[Path, Future] = {}
        self._inspections: dict[Path, Ahead] = {}
        self._ended_ahead: dict[Path, tuple[list[str], list[str], Ahead]] = {}
        self._checkpoints: dict[Path, pd.DataFrame | str] = {}
        self._hparams: dict[Path, pd.DataFrame] = {}
        self._hparams_ahead: dict[Path, HParamsAhead] = {}
        self._manifests_ahead: dict[Path, tuple[set[str], Ahead]] = {}
        self._manifests_after_walk: dict[Path, set[str]] = {}

    def walk_ahead(self, root: Path | None) -> None:
        """Start walking ``root`` for checkpoints in the executor's worker (nothing without an
        executor or a folder)."""
        if self._executor is not None and root is not None and root not in self._walks:
            self._walks[root] = self._executor.submit(find_checkpoints, root)

    def checkpoints_ahead(self, root: Path | None) -> None:
        """Once the walk :meth:`walk_ahead` started of ``root`` is done (waiting for it), have the
        executor's workers read which of the runs it found ended (after the listing, as a prune
        must: :func:`runlens.manifest.ended_runs`; from the manifests :meth:`manifests_ahead` then
        starts reading, for the runs they cover) and open and check the checkpoints it found
        (~2.5 s of one core for 6,000 ``.keras`` files), while this process replays the runs.
        Nothing without such a walk, or when it failed (:meth:`checkpoints` says why)."""
        walk = self._walks.get(root) if root is not None else None
        if walk is None or root in self._ended_ahead or root in self._checkpoints:
            return
        names = self._manifests_after_walk.pop(root, None)
        if walk.exception():
            if names is not None:
                self._start_manifests(root, names)
            return
        found = walk.result().found
        runs = sorted({run_of(f.rel) for f in found})
        # a run folder named checkpoints is not asked: ended_runs looks in the folder above too
        shared = []
        if names is not None:
            shared = [run for run in runs if (root / run).name != CHECKPOINTS_FOLDER]
            self._start_manifests(root, names | set(shared))
        rest = sorted(set(runs) - set(shared))
        ended = Ahead(self._executor, partial(ended_runs, root), rest, per_task=200)
        self._ended_ahead[root] = (runs, shared, ended)
        self._inspections[root] = Ahead(self._executor, inspect_found, found, per_task=100)

    def checkpoints(self, root: Path) -> pd.DataFrame | str:
        """:func:`~runlens.report.build.checkpoints.read_report_checkpoints` of ``root``, once
        (from the walk :meth:`walk_ahead` started and the checks :meth:`checkpoints_ahead` started,
        if they did)."""
        if root not in self._checkpoints:
            walk, inspected = self._walks.get(root), self._inspections.pop(root, None)
            self._checkpoints[root] = read_report_checkpoints(root, walk, inspected)
        return self._checkpoints[root]

    def ended(self, root: Path) -> dict[str, bool] | None:
        """For each checkpoint run the walk ahead of ``root`` found, whether its ``runlens.json``
        says training ended (read after that walk's listing: :meth:`checkpoints_ahead`); None
        without it."""
        if root not in self._ended_ahead:
            return None
        runs, shared, ahead = self._ended_ahead[root]
        ended = set().union(*ahead.results())
        if shared:
            read = self._manifest_reads(root)[1]
            ended |= {run for run in shared if says_ended(read.get(run, (None, None))[1])}
        return {run: run in ended for run in runs}

    def hparams_ahead(self, root: Path) -> None:
        """Start reading the hparams the runs under ``root`` recorded in the executor's workers,
        from the files :attr:`found` marks (nothing without an executor, or when the read took only
        some runs: the files are then chosen by listing the logdir again, when asked for)."""
        complete = self.found is not None and self.found.complete
        if (
            self._executor is not None
            and complete
            and root not in self._hparams
            and root not in self._hparams_ahead
        ):
            self._hparams_ahead[root] = HParamsAhead(hparams_files(root, self.found), self._executor)

    def hparams(self, root: Path) -> pd.DataFrame:
        """The hparams the runs under ``root`` recorded, indexed by run (read once; empty when
        they cannot be read)."""
        if root not in self._hparams:
            ahead = self._hparams_ahead.pop(root, None)
            try:
                frame = ahead.frame() if ahead else hparams_of_files(hparams_files(root, self.found))
                self._hparams[root] = frame.set_index("run")
            except RunlensError:
                self._hparams[root] = pd.DataFrame()
        return self._hparams[root]

    def manifests_ahead(self, root: Path, runs: Iterable[str]) -> None:
        """Start reading the ``runlens.json`` of ``runs`` under ``root`` (every name a run of the
        report may have) in the executor's workers (nothing without an executor); while a walk of
        ``root`` for checkpoints is under way, once it is done (:meth:`checkpoints_ahead`)."""
        if self._executor is None or root in self._manifests_ahead or root in self._manifests_after_walk:
            return
        if root in self._walks and root not in self._ended_ahead:
            self._manifests_after_walk[root] = set(runs)
        else:
            self._start_manifests(root, set(runs))

    def _start_manifests(self, root: Path, names: set[str]) -> None:
        ordered = sorted(names)
        read = partial(run_manifests, root)
        self._manifests_ahead[root] = (names, Ahead(self._executor, read, ordered, per_task=200))

    def _manifest_reads(self, root: Path) -> tuple[set[str], dict[str, Any]]:
        """The runs :meth:`manifests_ahead` was asked for and what the workers read of them
        (:func:`runlens.manifest.run_manifests`; waiting for them, and starting them if they were
        waiting for a walk)."""
        if root in self._manifests_after_walk:
            self._start_manifests(root, self._manifests_after_walk.pop(root))
        asked, ahead = self._manifests_ahead.get(root, (set(), None))
        read: dict[str, Any] = {}
        for part in ahead.results() if ahead is not None else []:
            read.update(part)
        return asked, read

    def manifests(self, root: Path, runs: list[str]) -> tuple[Manifests, list[str]]:
        """:func:`~runlens.report.build.live.read_run_manifests` of ``runs`` under ``root``, from
        what :meth:`manifests_ahead` started (runs it was not asked for are read now)."""
        asked, read = self._manifest_reads(root)
        if not asked:
            return read_run_manifests(root, runs)
        read = {**read, **run_manifests(root, [run for run in runs if run not in asked])}
        return read_run_manifests(root, runs, read)

    def close(self) -> None:
        """Cancel the reads started ahead that no part took (e.g. hparams and manifests, when
        there turned out to be no Keras runs)."""
        for ahead in self._hparams_ahead.values():
            ahead.cancel()
        for _, ahead in self._manifests_ahead.values():
            ahead.cancel()
        for ahead in [*self._inspections.values(), *(ahead for _, _, ahead in self._ended_ahead.values())]:
            ahead.cancel()


def run_names(found: ReadFound) -> set[str]:
    """Every name a run of the files read may have in a report: each file's folder, and the run
    Keras' ``train``/``validation`` folders belong to.

    >>> from runlens.events.found import ReadFound
    >>> from runlens.events.sources import EventFile
    >>> sorted(run_names(ReadFound((EventFile("exp/train", "x/exp/train/e", 1, ()),), {}, complete=True)))
    ['exp', 'exp/train']
    """
    folders = sorted({f.run for f in found.files})
    parents, _ = split_keras_run(folders)
    return set(folders) | set(parents)


SWEEP_RUNS = 64  # folders in a logdir (two levels deep) from which its report is built with workers


@contextlib.contextmanager
def report_workers(source: Any, runs: Any, executor: Executor | None) -> Iterator[Executor | None]:
    """The executor a report is read and built with: ``executor`` when given; else, for a local
    logdir that holds :data:`SWEEP_RUNS` folders or more in it and in its folders (a sweep: the
    workers read its event files and then its hparams, ``runlens.json`` and checkpoints, as
    ``runlens report``'s do: 2,000 runs trained with runlens.keras, 6.3 -> 3.9 s), a
    :class:`~runlens.events.read_ahead.ReadAhead` for the build, one worker per core; else None
    (the read alone decides whether to use workers). Never in a process that cannot fork safely
    (TensorFlow loaded: its workers would start from scratch, seconds each) or start workers at
    all (:func:`~runlens.processes.can_start_workers`).

    >>> with report_workers("sample_logs", None, None) as executor:
    ...     executor is None
    True
    """
    folder = run_folder(source)
    if (
        executor is not None
        or folder is None
        or (os.cpu_count() or 1) < 2
        or not (fork_is_safe() and can_start_workers())
        or _folders(folder, SWEEP_RUNS) < SWEEP_RUNS
    ):
        yield executor
        return
    with ReadAhead(folder, runs=runs) as ahead:
        yield ahead


def _folders(folder: Path | str, enough: int, depth: int = 2) -> int:
    """The folders in ``folder`` and, ``depth`` levels down, in those (symlinked ones too),
    counted until there are ``enough`` (a sweep of 2,000 runs: one folder listed, not 2,000)."""
    try:
        with os.scandir(folder) as entries:
            found = [entry.path for entry in entries if entry.is_dir()]
    except OSError:  # the read reports it
        return 0
    count = len(found)
    for path in found if depth > 1 else []:
        if count >= enough:
            break
        count += _folders(path, enough - count, depth - 1)
    return count


def checkpoint_root(source: Any, checkpoints: Any) -> Path | None:
    """The folder a report looks for checkpoints in (see :func:`runlens.build_report`'s
    ``checkpoints``): None for an epoch frame or one event file unless a folder is given.

    >>> checkpoint_root("sample_logs", True), checkpoint_root("sample_logs", False)
    (PosixPath('sample_logs'), None)
    """
    if checkpoints is False:
        return None
    if checkpoints is not True:
        root = Path(checkpoints)
        if not root.is_dir():
            raise RunlensError(f"checkpoints={os.fspath(checkpoints)!r} is not a folder")
        return root
    return run_folder(source)  # None for an epoch frame or one event file: no folder to look in


def run_folder(source: Any) -> Path | None:
    """The logdir a report was read from, whose runs' folders may hold a ``runlens.json`` and
    hparams: ``source`` when it is a folder; None for a frame or one event file.

    >>> run_folder("sample_logs"), run_folder(pd.DataFrame())
    (PosixPath('sample_logs'), None)
    """
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        return Path(source)
    return None


def report_source(
    source: Any, checkpoints: Any, part: pd.DataFrame | None
) -> tuple[pd.DataFrame, str, Path | None]:
    """(epoch frame, how the report names its source, folder to look for checkpoints in); ``part``:
    the frame already read from ``source`` (one framework's runs)."""
    if isinstance(source, pd.DataFrame):
        frame = source if part is None else part
        label = "evaluation frame" if is_evals_frame(source) else "epoch frame"
    elif isinstance(source, (str, os.PathLike)):
        from runlens.epochs import read_epochs

        frame = read_epochs(source) if part is None else part
        label = os.fspath(source)
    else:
        raise RunlensError(f"build_report needs a logdir path or an epoch frame, got {type(source).__name__}")
    root = checkpoint_root(source, checkpoints)
    check_frame(frame, column="epoch")
    if frame.empty:
        raise RunlensError(
            f"{label}: no per-epoch scalars (epoch_* tags, as Keras' TensorBoard callback writes them); "
            "runlens report needs epoch metrics such as epoch_loss"
        )
    return frame, label, root


def frame_runs(frame: pd.DataFrame) -> list[str]:
    """The runs with rows in ``frame``, sorted (by the run column's codes: no string per row).

    >>> frame_runs(pd.DataFrame({"run": pd.Categorical(["b", "a"], categories=["a", "b", "c"])}))
    ['a', 'b']
    """
    codes, names = name_codes(frame["run"])
    return [names[i] for i in np.unique(codes[codes >= 0]).tolist()]


def selected_runs(frame: pd.DataFrame, runs: str | Sequence[str] | None) -> pd.DataFrame:
    """The rows of the runs ``runs`` names (as :func:`runlens.read_epochs` selects them); every
    pattern must match a run, or the error lists the runs there are."""
    patterns = name_patterns(runs)
    if patterns is None or "run" not in frame.columns:
        return frame
    names = sorted(set(map(str, as_names(frame["run"]))))
    unmatched = [p for p in patterns if not any(matches(name, (p,)) for name in names)]
    if unmatched:
        raise RunlensError(
            f"frame: no run matches runs={', '.join(map(repr, unmatched))}; the runs are: "
            f"{', '.join(names[:20])}" + (f", ... ({len(names) - 20} more)" if len(names) > 20 else "")
        )
    keep = [name for name in names if matches(name, patterns)]
    selected = frame[as_names(frame["run"]).astype(str).isin(keep).to_numpy()]
    selected.attrs = dict(frame.attrs)
    return selected
