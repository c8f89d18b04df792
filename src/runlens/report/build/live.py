"""Runs trained with ``runlens.keras``: their hparams, and live vs replayed decisions.

For every run of the report, :func:`attach_live` adds the hyperparameters the run recorded
(TensorBoard's hparams plugin, :func:`runlens.read_hparams`; else its ``runlens.json``) and, when
the run folder holds a ``runlens.json`` (:func:`runlens.read_manifest`), what its own
EarlyStopping / ReduceLROnPlateau decided during training beside runlens' offline replay of the
*same settings* over the logged epochs. The two must agree (the replay decides exactly as Keras
does, and the bundle carries the policies' state over resumes); every difference -- a decision,
the epochs recorded, a monitored value -- is listed in ``Live.disagreements``, becomes a
``WARNING`` line of the run and a report warning, and sets ``Live.agrees`` to false.

The policies are built from ``runlens.json``'s ``config`` through the policy registry
(:data:`MANIFEST_POLICIES`) and replayed through their protocol; the learning rate through
:func:`runlens.policies.learning_rate.replay_lr`, the path the report's own LR lines take (same
starting-rate rule).

>>> report = runlens.build_report("sample_logs")                      # doctest: +SKIP
>>> [(r.run, r.live.agrees) for r in report.runs if r.live]         # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.events.sources import EventFile, find_event_files, is_url, open_binary
from runlens.hparams import PLUGIN_NAME, SESSION_START_TAG
from runlens.manifest import read_manifest, run_manifest
from runlens.policies.base import policy_class
from runlens.policies.learning_rate import LR_COLUMNS, replay_lr
from runlens.report.model import WARNING, Live, PolicyDecisions, RunReport

if TYPE_CHECKING:
    from runlens.events.found import ReadFound

_NOT_REPLAYED = ("verbose",)  # Keras arguments that change no decision
# runlens.json's config key -> the registered policy the bundle's Keras callback is
MANIFEST_POLICIES = {"early_stopping": "keras.EarlyStopping", "reduce_lr": "keras.ReduceLROnPlateau"}

Manifests = dict[str, tuple[str, dict[str, Any]]]  # run -> (path relative to the root, manifest)


def read_run_manifests(root: str | os.PathLike[str], runs: list[str]) -> tuple[Manifests, list[str]]:
    """The ``runlens.json`` of every run that has one, and a warning per one that cannot be read.

    Looked for only where the report's runs are (``ROOT/RUN/runlens.json``, one ``lstat`` per run,
    :func:`runlens.manifest.run_manifest`), not by walking the logdir: the same manifests as
    :func:`runlens.manifest.find_manifests` finds for every run that walk reaches. What differs: a
    run whose folder is reached through a symlinked folder (the event-file listing follows such
    links, ``os.walk`` does not) has its manifest read here, where the walk never saw it."""
    manifests: Manifests = {}
    warnings = []
    for run in runs:
        path = run_manifest(root, run)
        if path is None:
            continue
        try:
            manifests[run] = (Path(os.path.relpath(path, root)).as_posix(), read_manifest(path))
        except RunlensError as exc:
            warnings.append(f"run {run!r}: {exc}")
    return manifests, warnings


def manifest_policy(config: dict[str, Any], key: str) -> Any:
    """The runlens policy of ``config[key]`` (runlens.json's arguments of the Keras callback; the
    bundle's ``monitor`` where they name none), or None when the run did not use it."""
    args = config.get(key)
    if args is None:
        return None
    args = {"monitor": config["monitor"], **{k: v for k, v in args.items() if k not in _NOT_REPLAYED}}
    try:
        return policy_class(MANIFEST_POLICIES[key])(**args)
    except TypeError as exc:  # an argument runlens' replay does not take
        raise RunlensError(str(exc)) from None


def run_lr_policy(run: str, asked: Any, manifests: Manifests) -> tuple[Any, str | None]:
    """The learning-rate policy to replay on ``run`` (``asked``: the report's, else the one its
    ``runlens.json`` used, if any), and where its settings come from."""
    if asked is not None:
        return asked, "report"
    if run in manifests:
        try:
            policy = manifest_policy(manifests[run][1]["config"], "reduce_lr")
        except RunlensError:
            return None, None  # the live comparison reports why
        if policy is not None:
            return policy, "runlens.json"
    return None, None


def attach_live(
    records: list[RunReport],
    root: str | os.PathLike[str],
    frame: pd.DataFrame,
    manifests: Manifests,
    *,
    initial_lr: float | None,
    recorded: pd.DataFrame,
) -> list[str]:
    """Set ``hparams`` and ``live`` on ``records``; return the warnings for the report
    (``recorded``: the runs' hparams indexed by run, of :func:`hparams_files` under ``root``)."""
    warnings: list[str] = []
    by_run = _by_run(recorded)
    for record in records:
        hparams = by_run.get(record.run, {})
        if record.run in manifests:
            name, manifest = manifests[record.run]
            hparams = hparams or manifest["hparams"]
            rows = frame[frame["run"] == record.run]
            record.live = compare(manifest, rows, name, initial_lr=initial_lr)
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


def compare(
    manifest: dict[str, Any], rows: pd.DataFrame, name: str, *, initial_lr: float | None = None
) -> Live:
    """The live decisions of ``manifest`` beside the replay over one run's epoch-frame ``rows``."""
    live = Live(
        manifest=name,
        status=manifest["status"],
        ended_normally=manifest["ended_normally"],
        updated_at=manifest["updated_at"],
        attempts=len(manifest["attempts"]),
        epochs_recorded=len(manifest["epochs"]),
    )
    problems = live.disagreements
    recorded = [e["epoch"] for e in manifest["epochs"]]
    logged = [int(e) for e in rows["epoch"]]
    if recorded != logged:
        problems.append(f"runlens.json records {_span(recorded)}, the event files hold {_span(logged)}")
    config = manifest["config"]
    policies = {}
    for key in MANIFEST_POLICIES:
        try:
            policies[key] = manifest_policy(config, key)
        except RunlensError as exc:
            problems.append(f"the {key} settings of runlens.json cannot be replayed: {exc}")
    policies = {k: p for k, p in policies.items() if p is not None}
    for monitor in dict.fromkeys(p.metric for p in policies.values()):
        problems += _value_mismatches(manifest, _values(rows, monitor), monitor)
    for key, policy in policies.items():
        values = _values(rows, policy.metric)
        try:
            if policy.kind == "stopping":
                decisions = _stopping(policy, values, manifest, key)
            else:
                decisions = _learning_rate(policy, values, manifest, rows, key, initial_lr)
        except RunlensError as exc:
            problems.append(f"the {key} settings of runlens.json cannot be replayed: {exc}")
            continue
        setattr(live, key, decisions)
        problems += _differences(decisions, manifest)
    live.agrees = not problems
    return live


def _stopping(policy: Any, values: pd.Series, manifest: dict[str, Any], key: str) -> PolicyDecisions:
    result = policy.replay(values)
    summary = manifest[key] or {}
    live = {k: summary.get(k) for k in ("stopped_epoch", "best_epoch", "restored_epoch")}
    replayed = {
        "stopped_epoch": result.stopped_at,
        "best_epoch": result.best_at,
        "restored_epoch": getattr(result, "restored_at", None),
    }
    return PolicyDecisions(_policy_text(policy, manifest["config"][key]), live, replayed)


def _learning_rate(
    policy: Any,
    values: pd.Series,
    manifest: dict[str, Any],
    rows: pd.DataFrame,
    key: str,
    initial_lr: float | None,
) -> PolicyDecisions:
    column = next((c for c in LR_COLUMNS if c in rows.columns), None)
    logged = None if column is None else _values(rows, column)
    replayed_lr = replay_lr(policy, values, initial_lr=initial_lr, logged_lr=logged)
    if replayed_lr.result is None:
        raise RunlensError(replayed_lr.note)
    result = replayed_lr.result
    after = [*result.learning_rates[1:], result.final_lr]
    reductions = (manifest[key] or {}).get("reductions", [])
    live = {"reduced_at": [r["epoch"] for r in reductions], "rates": [r["new_lr"] for r in reductions]}
    replayed = {"reduced_at": list(result.reduced_at), "rates": [after[e] for e in result.reduced_at]}
    return PolicyDecisions(_policy_text(policy, manifest["config"][key]), live, replayed)


def _differences(decisions: PolicyDecisions, manifest: dict[str, Any]) -> list[str]:
    out = []
    name = decisions.policy.split("(")[0]
    for key, live in decisions.live.items():
        replayed = decisions.replayed[key]
        if key == "restored_epoch" and live is None and not manifest["ended_normally"]:
            continue  # not restored yet: training has not ended
        if key == "rates":
            same = len(live) == len(replayed) and all(
                np.float32(a) == np.float32(b) for a, b in zip(live, replayed)
            )
        else:
            same = live == replayed
        if not same:
            out.append(f"{name} {key}: live {_shown(key, live)}, replayed {_shown(key, replayed)}")
    return out


def _value_mismatches(manifest: dict[str, Any], values: pd.Series, monitor: str) -> list[str]:
    """Epochs whose ``monitor`` differs (float32) between runlens.json and the event files."""
    differ = []
    for entry in manifest["epochs"]:
        epoch = entry["epoch"]
        recorded = entry["logs"].get(monitor)
        logged = values.get(epoch, pd.NA)
        if recorded is None or logged is pd.NA:
            if (recorded is None) != (logged is pd.NA):
                differ.append(epoch)
        elif not _same32(recorded, float(logged)):
            differ.append(epoch)
    if not differ:
        return []
    shown = ", ".join(str(e + 1) for e in differ[:5]) + (", ..." if len(differ) > 5 else "")
    return [f"{monitor} differs between runlens.json and the event files at epoch(s) {shown}"]


def _values(rows: pd.DataFrame, column: str) -> pd.Series:
    """``column`` per epoch 0..last logged (``<NA>`` where not logged, or when no such column)."""
    last = int(rows["epoch"].max()) if len(rows) else -1
    index = pd.RangeIndex(last + 1)
    if column not in rows.columns:
        return pd.Series(pd.NA, index=index, dtype="Float64")
    return rows.set_index("epoch")[column].astype("Float64").reindex(index)


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


def _policy_text(policy: Any, args: dict[str, Any]) -> str:
    """The Keras class and the arguments runlens.json records (what the user wrote)."""
    shown_args = {k: v for k, v in args.items() if k not in _NOT_REPLAYED}
    return f"{type(policy).__name__}({', '.join(f'{k}={v!r}' for k, v in shown_args.items())})"


def _same32(a: float, b: float) -> bool:
    x, y = np.float32(a), np.float32(b)
    return bool(x == y or (math.isnan(x) and math.isnan(y)))


def _span(epochs: list[int]) -> str:
    if not epochs:
        return "no epoch"
    contiguous = epochs == list(range(epochs[0], epochs[-1] + 1))
    if contiguous:
        return f"epochs {epochs[0] + 1}-{epochs[-1] + 1}"
    return f"{len(epochs)} epochs between {epochs[0] + 1} and {epochs[-1] + 1} (with gaps)"


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "none" if key != "stopped_epoch" else "did not stop"
    if key == "reduced_at":
        return "after epoch(s) " + (", ".join(str(e + 1) for e in value) or "none")
    if key == "rates":
        return ", ".join(f"{v:.6g}" for v in value) or "none"
    return f"epoch {value + 1}"
