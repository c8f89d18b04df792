"""Hyperparameters from event files: what TensorBoard's HParams dashboard shows, as a DataFrame.

Writers of the hparams plugin (``tensorboard.plugins.hparams.api.hparams``/``KerasCallback``,
tensorboardX ``add_hparams``, ``runlens.keras``) store a trial's values as one summary tagged
``_hparams_/session_start_info`` whose metadata names plugin ``hparams`` and holds an
``HParamsPluginData`` with ``session_start_info.hparams`` (name -> number, string or bool). Only
the records holding that tag are decoded (found by a byte search per block), so reading stays
cheap on long logs. No TensorFlow is imported.

>>> hp = read_hparams("runs/")                       # doctest: +SKIP
>>> hp.merge(runlens.replay(runlens.read_epochs("runs/"), policy), on="run")  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from runlens.epochs import split_keras_run
from runlens.errors import DamagedDataWarning
from runlens.events.files import WHOLE_FILE_BYTES
from runlens.events.problems import Problem
from runlens.events.records import Block, ReadState, read_blocks
from runlens.events.sources import EventFile, find_event_files, open_binary, open_problem
from runlens.events.whole_files import frame_whole_files
from runlens.name_columns import NAME_DTYPE
from runlens.processes import Ahead

__all__ = ["SESSION_START_TAG", "HParamsAhead", "read_hparams"]

SESSION_START_TAG = "_hparams_/session_start_info"
PLUGIN_NAME = "hparams"
_TAG_BYTES = SESSION_START_TAG.encode()


def read_hparams(
    path: str | os.PathLike[str],
    *,
    runs: str | Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per run that recorded hyperparameters, one column per hyperparameter.

    Args:
        path: a logdir or one event file (local, or a URL read through fsspec).
        runs: keep only the folders matching these names or globs (as :func:`runlens.read_scalars`).
        storage_options: passed to the fsspec filesystem of a URL.

    Returns:
        Column ``run``, named as :func:`runlens.read_epochs` names runs (the folder holding the
        event file, with Keras' ``train``/``validation`` sub-folders mapped to their parent, so
        hparams written at ``RUN`` or in ``RUN/train`` both belong to run ``RUN``), then the
        hyperparameters sorted by name: numbers as ``Float64`` (the plugin stores every number as a
        double), bools as ``boolean``, strings as ``string``, mixed kinds as ``object``; ``<NA>``
        where a run did not record that hyperparameter. When a run recorded its hyperparameters
        more than once (a resumed fit), the last written wins. Runs without any are not listed.
        Damaged files give a :class:`DamagedDataWarning` and are listed in ``attrs["problems"]``.

    Example:
        >>> read_hparams("sample_logs")[["run", "learning_rate"]]        # doctest: +SKIP
    """
    files = find_event_files(path, runs=runs, storage_options=storage_options)
    return hparams_of_files(files, storage_options=storage_options)


def hparams_of_files(
    files: Sequence[EventFile], *, storage_options: dict[str, Any] | None = None
) -> pd.DataFrame:
    """:func:`read_hparams`' frame from event files already listed (in the order
    :func:`~runlens.events.sources.find_event_files` gives them: the last one written wins), e.g.
    only those a read of the logdir found holding the session_start_info tag
    (:meth:`runlens.events.found.ReadFound.files_with`).

    >>> hparams_of_files([]).empty
    True
    """
    return _combined(files, [sessions_of_files([f.path for f in files], storage_options)])


class HParamsAhead:
    """The hparams of ``files`` being read in ``executor``'s workers from when it is made
    (:class:`runlens.processes.Ahead`): :meth:`frame` waits for them, :meth:`cancel` drops the
    tasks no worker has started.

    A sweep written with ``runlens.keras`` has one hparams file per run, 2,000 files: ``runlens
    report`` has the workers that read the scalars read them while it builds the runs' reports.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1) as pool:
    ...     HParamsAhead([], pool).frame().empty
    True
    """

    def __init__(
        self,
        files: Sequence[EventFile],
        executor: Executor,
        *,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self._files = list(files)
        read = partial(sessions_of_files, storage_options=storage_options)
        self._ahead = Ahead(executor, read, [f.path for f in files], per_task=_FILES_PER_TASK)

    def frame(self) -> pd.DataFrame:
        """:func:`hparams_of_files`' frame of the files (damaged ones are warned about now, in
        this process)."""
        return _combined(self._files, self._ahead.results())

    def cancel(self) -> None:
        """Drop the tasks not started (a report that turned out not to need them)."""
        self._ahead.cancel()


_FILES_PER_TASK = 100  # fewer are not worth a trip to a worker


def sessions_of_files(
    paths: Sequence[str], storage_options: dict[str, Any] | None = None
) -> tuple[list[list[dict[str, Any]]], list[Problem]]:
    """For each event file, the hparams of every session_start_info summary in it (in the order
    written); and what was wrong with the files.

    Small files (a sweep's thousands of hparams files, a few hundred bytes each) are framed and
    CRC-checked together, as the scalar read frames a sweep's files
    (:func:`~runlens.events.whole_files.frame_whole_files`); big files, and every file of a batch
    that does not frame (damage, a truncated tail, a file that cannot be read), are read one by
    one, which reports what is wrong -- in the files' order.
    """
    problems: list[Problem] = []
    sessions: list[list[dict[str, Any]]] = [[] for _ in paths]
    batch: dict[int, bytes] = {}  # file number -> its whole content
    size = 0  # of the batch's contents

    def flush() -> None:
        nonlocal size
        numbers, size = list(batch), 0
        block = frame_whole_files(list(batch.values()), [ReadState(paths[n]) for n in numbers])
        batch.clear()
        if block is None:
            for number in numbers:
                sessions[number] = _sessions(paths[number], problems, storage_options)
            return
        for record in _records_with_tag(block):
            sessions[numbers[int(block.sources[record])]] += _payload_sessions(block.payload(record))

    for number, path in enumerate(paths):
        content = _small_file(path, storage_options)
        if content is None:  # big, empty or unreadable: on its own, after the files before it
            if batch:
                flush()
            sessions[number] = _sessions(path, problems, storage_options)
            continue
        batch[number] = content
        size += len(content)
        if size >= _BATCH_BYTES:
            flush()
    if batch:
        flush()
    return sessions, problems


_BATCH_BYTES = 1 << 20


def _small_file(path: str, storage_options: dict[str, Any] | None) -> bytes | None:
    """The whole file when it is shorter than ``WHOLE_FILE_BYTES`` and not empty; else None."""
    try:
        with open_binary(path, storage_options) as stream:
            content = stream.read(WHOLE_FILE_BYTES)
    except OSError:
        return None  # read on its own, which reports it
    return content if 0 < len(content) < WHOLE_FILE_BYTES else None


def _combined(
    files: Sequence[EventFile], results: list[tuple[list[list[dict[str, Any]]], list[Problem]]]
) -> pd.DataFrame:
    """The frame of ``files``' sessions (:func:`sessions_of_files` of consecutive parts of them)."""
    sessions = [each for part, _ in results for each in part]
    problems = [problem for _, part in results for problem in part]
    found: dict[str, dict[str, Any]] = {}
    parents, _ = split_keras_run(f.run for f in files)
    for run, file_sessions in zip(parents, sessions):
        for hparams in file_sessions:
            found[run] = hparams
    for problem in problems:
        warnings.warn(problem.message, DamagedDataWarning, stacklevel=4)
    frame = _frame(found)
    frame.attrs["problems"] = [p.as_dict() for p in problems]
    return frame


def _sessions(
    path: str, problems: list[Problem], storage_options: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The hparams of every session_start_info summary in one event file, in the order written;
    its problems are added to ``problems`` (its read state keeps its own: whether a file is
    empty must not depend on the files before it)."""
    state = ReadState(path=path)
    found = []
    try:
        with open_binary(path, storage_options) as stream:
            for block in read_blocks(stream, state):
                for i in _records_with_tag(block):
                    found += _payload_sessions(block.payload(i))
    except OSError as exc:
        state.problems.append(open_problem(path, exc))
    problems += state.problems
    return found


def _payload_sessions(payload: memoryview) -> list[dict[str, Any]]:
    """The hparams of the session_start_info summaries in one record (none when it is not an Event)."""
    from tensorboard.compat.proto.event_pb2 import Event

    try:
        event = Event.FromString(bytes(payload))
    except Exception:  # a CRC-valid record that is not an Event
        return []
    found = (_session_hparams(value) for value in event.summary.value)
    return [hparams for hparams in found if hparams is not None]


def _records_with_tag(block: Block) -> list[int]:
    """Indices of the block's records whose payload contains the session_start_info tag."""
    hits = []
    at = block.buffer.find(_TAG_BYTES)
    while at != -1:
        i = int(np.searchsorted(block.starts, at, side="right")) - 1
        if i >= 0 and at + len(_TAG_BYTES) <= block.starts[i] + block.lengths[i] and i not in hits:
            hits.append(i)
        at = block.buffer.find(_TAG_BYTES, at + 1)
    return hits


def _session_hparams(value: Any) -> dict[str, Any] | None:  # value: a Summary.Value
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    plugin = value.metadata.plugin_data
    if value.tag != SESSION_START_TAG or plugin.plugin_name != PLUGIN_NAME:
        return None
    try:
        data = HParamsPluginData.FromString(plugin.content)
    except Exception:
        return None
    if not data.HasField("session_start_info"):
        return None
    return {name: _python(v) for name, v in data.session_start_info.hparams.items()}


def _python(value: Any) -> Any:  # a google.protobuf.Value
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        return float(value.number_value)
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return bool(value.bool_value)
    if kind in (None, "null_value"):
        return None
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(value)  # struct/list values: as JSON would hold them


def _frame(found: dict[str, dict[str, Any]]) -> pd.DataFrame:
    runs = sorted(found)
    names = sorted({name for hparams in found.values() for name in hparams})
    frame = pd.DataFrame({"run": pd.Series(runs, dtype=NAME_DTYPE)})
    for name in names:
        values = [found[run].get(name) for run in runs]
        frame[name] = pd.Series(values, dtype=_dtype(values), index=frame.index)
    return frame


def _dtype(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return "boolean"
    if present and all(isinstance(v, float) for v in present):
        return "Float64"
    if present and all(isinstance(v, str) for v in present):
        return "string"
    return "object"
