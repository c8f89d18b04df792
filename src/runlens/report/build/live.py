"""Runs trained with ``runlens.keras``: their hparams, and live vs replayed decisions.

For every run of the report, :func:`attach_live` adds the hyperparameters the run recorded
(TensorBoard's hparams plugin, :func:`runlens.read_hparams`; else its ``runlens.json``) and, when
the run folder holds a ``runlens.json`` (:func:`runlens.read_manifest`), what its own
EarlyStopping / ReduceLROnPlateau decided during training beside runlens' offline replay of the
*same settings* over the logged epochs. The two must agree (the replay decides exactly as Keras
does, and the bundle carries the policies' state over resumes); every difference -- a decision,
the epochs recorded, a monitored value -- is listed in ``Live.disagreements``, becomes a
``WARNING`` line of the run and a report warning, and sets ``Live.agrees`` to false (the
comparison: :mod:`runlens.report.build.live_replay`).

>>> report = runlens.build_report("sample_logs")                      # doctest: +SKIP
>>> [(r.run, r.live.agrees) for r in report.runs if r.live]         # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pandas as pd

from runlens.errors import RunlensError
from runlens.events.sources import EventFile, find_event_files, is_url, open_binary
from runlens.hparams import PLUGIN_NAME, SESSION_START_TAG
from runlens.manifest import run_manifests
from runlens.report.build.live_replay import Policies, compare, manifest_policies, run_epochs
from runlens.report.model import WARNING, RunReport

if TYPE_CHECKING:
    from runlens.events.found import ReadFound

Manifests = dict[str, tuple[str, dict[str, Any]]]  # run -> (path relative to the root, manifest)


def read_run_manifests(
    root: str | os.PathLike[str], runs: list[str], read: dict[str, tuple[str, Any]] | None = None
) -> tuple[Manifests, list[str]]:
    """The ``runlens.json`` of every run that has one, and a warning per one that cannot be read
    (``read``: :func:`runlens.manifest.run_manifests` of these runs and maybe others, already
    read; else they are read here).

    Looked for only where the report's runs are (``ROOT/RUN/runlens.json``, one ``lstat`` per run,
    :func:`runlens.manifest.run_manifest`), not by walking the logdir: the same manifests as
    :func:`runlens.manifest.find_manifests` finds for every run that walk reaches. What differs: a
    run whose folder is reached through a symlinked folder (the event-file listing follows such
    links, ``os.walk`` does not) has its manifest read here, where the walk never saw it."""
    read = run_manifests(root, runs) if read is None else read
    manifests: Manifests = {}
    warnings = []
    for run in runs:
        name, manifest = read.get(run, (None, None))
        if isinstance(manifest, str):
            warnings.append(f"run {run!r}: {manifest}")
        elif manifest is not None:
            manifests[run] = (name, manifest)
    return manifests, warnings


def run_policies(manifests: Manifests) -> dict[str, Policies]:
    """Each run's policies as its ``runlens.json`` configured them (:func:`~runlens.report.build.
    live_replay.manifest_policies`), built once for the report's learning-rate replay
    (:func:`run_lr_policy`) and its live comparison (:func:`attach_live`)."""
    return {run: manifest_policies(manifest["config"]) for run, (_, manifest) in manifests.items()}


def run_lr_policy(run: str, asked: Any, policies: dict[str, Policies]) -> tuple[Any, str | None]:
    """The learning-rate policy to replay on ``run`` (``asked``: the report's, else the one its
    ``runlens.json`` used, if any: ``policies``, :func:`run_policies`), and where its settings
    come from. Settings runlens cannot replay give none (the live comparison reports why)."""
    if asked is not None:
        return asked, "report"
    policy = policies[run][0].get("reduce_lr") if run in policies else None
    return (policy, "runlens.json") if policy is not None else (None, None)


def attach_live(
    records: list[RunReport],
    root: str | os.PathLike[str],
    frame: pd.DataFrame,
    manifests: Manifests,
    policies: dict[str, Policies],
    *,
    initial_lr: float | None,
    recorded: pd.DataFrame,
) -> list[str]:
    """Set ``hparams`` and ``live`` on ``records``; return the warnings for the report
    (``recorded``: the runs' hparams indexed by run, of :func:`hparams_files` under ``root``;
    ``policies``: :func:`run_policies` of ``manifests``)."""
    warnings: list[str] = []
    by_run = _by_run(recorded)
    monitors = {p.metric for replayed, _ in policies.values() for p in replayed.values()}
    epochs = run_epochs(frame, sorted(monitors)) if manifests else {}
    for record in records:
        hparams = by_run.get(record.run, {})
        if record.run in manifests:
            name, manifest = manifests[record.run]
            hparams = hparams or manifest["hparams"]
            record.live = compare(
                manifest, epochs[record.run], name, policies[record.run], initial_lr=initial_lr
            )
            if not record.live.agrees:
                warnings.append(
                    f"{WARNING}: run {record.run!r}: what its own callbacks decided (runlens.json) "
                    f"disagrees with the replay of the same settings: {'; '.join(record.live.disagreements)}"
                )
        record.hparams = [{"name": k, "value": v} for k, v in sorted(hparams.items())]
    return warnings


def hparams_files(root: str | os.PathLike[str], found: ReadFound | None = None) -> list[EventFile]:
    """The event files under ``root`` that hold the hparams plugin's session_start_info tag, whose
    hparams (:func:`runlens.hparams.hparams_of_files`, indexed by run) the report shows; none
    when the logdir cannot be listed.

    Which files hold it, the report's read of the logdir already knows (``found``: the decoder
    marks every tag whose value carries plugin metadata): when that read took every event file
    under ``root``, nothing is listed or scanned again. After a ``runs=`` selection (or without
    ``found``) the logdir is listed again, as hparams written beside a run's selected folder
    count too: the files the read took are judged by its marks, the others by a scan of their
    bytes for the tag (the test :func:`runlens.read_hparams` applies to each block before it
    parses a record; a file that cannot be scanned is read, which reports what is wrong; files
    behind a URL are read whole). Either way the files holding the tag are read a second time,
    to decode the hparams themselves."""
    if found is not None and found.complete:
        return found.files_with(SESSION_START_TAG, PLUGIN_NAME)
    read = {f.path for f in found.files} if found is not None else set()
    marked = (
        {f.path for f in found.files_with(SESSION_START_TAG, PLUGIN_NAME)} if found is not None else set()
    )
    remote = is_url(os.fspath(root))
    try:
        listed = find_event_files(root)
    except RunlensError:
        return []
    return [
        f
        for f in listed
        if f.path in marked or (f.path not in read and (remote or _may_hold_hparams(f.path)))
    ]


_CHUNK = 1 << 20


def _may_hold_hparams(path: str) -> bool:
    """Whether the file's bytes hold the session_start_info tag (True when it cannot be read)."""
    tag = SESSION_START_TAG.encode()
    try:
        with open_binary(path) as stream:
            tail = b""
            while chunk := stream.read(_CHUNK):
                if tag in tail + chunk[: len(tag) - 1] or tag in chunk:
                    return True
                tail = chunk[-(len(tag) - 1) :]
    except OSError:
        return True
    return False


def _by_run(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Run -> the hparams it recorded (``table``: indexed by run), leaving out those it did not
    (column by column: a row looked up per run cost a 2,000-run sweep a second).

    >>> _by_run(pd.DataFrame({"lr": pd.array([0.1, None], dtype="Float64")}, index=["a", "b"]))
    {'a': {'lr': 0.1}, 'b': {}}
    """
    found: dict[str, dict[str, Any]] = {run: {} for run in table.index.tolist()}
    for name in table.columns:
        for hparams, value in zip(found.values(), table[name].tolist()):
            if value is not pd.NA and value is not None:
                hparams[name] = _plain(value)
    return found


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
