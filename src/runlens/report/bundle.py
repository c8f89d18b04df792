"""The report's view of runs trained with ``runlens.keras``: hparams, and live vs replayed decisions.

For every run of the report, :func:`attach_bundle` adds the hyperparameters the run recorded
(TensorBoard's hparams plugin, :func:`runlens.read_hparams`; else its ``runlens.json``) and, when
the run folder holds a ``runlens.json`` (:func:`runlens.read_manifest`), what its own
EarlyStopping / ReduceLROnPlateau decided during training beside runlens' offline replay of the
*same settings* over the logged epochs. The two must agree (the replay decides exactly as Keras
does, and the bundle carries the policies' state over resumes); every difference -- a decision,
the epochs recorded, a monitored value -- is listed in ``Live.disagreements``, becomes a
``WARNING`` line of the run and a report warning, and sets ``Live.agrees`` to false.

>>> report = runlens.build_report("sample_logs")                      # doctest: +SKIP
>>> [(r.run, r.live.agrees) for r in report.runs if r.live]         # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.hparams import read_hparams
from runlens.manifest import find_manifests, read_manifest
from runlens.policies.early_stopping import EarlyStopping
from runlens.policies.plateau import ReduceLROnPlateau

if TYPE_CHECKING:
    from runlens.report.model import RunRecord

WARNING = "WARNING"  # the label of a disagreement line (the HTML report highlights it)
_NOT_REPLAYED = ("verbose",)  # Keras arguments that change no decision


@dataclass
class PolicyDecisions:
    """One policy's decisions: ``live`` (runlens.json) and ``replayed`` (same settings, logged
    epochs). EarlyStopping: ``stopped_epoch``, ``best_epoch``, ``restored_epoch``;
    ReduceLROnPlateau: ``reduced_at`` (epochs) and ``rates`` (the rate after each reduction)."""

    policy: str
    live: dict[str, Any]
    replayed: dict[str, Any]


@dataclass
class Live:
    """What a run's ``runlens.json`` says about its training, checked against the replay."""

    manifest: str
    status: str
    ended_normally: bool
    updated_at: str
    attempts: int
    epochs_recorded: int
    early_stopping: PolicyDecisions | None = None
    reduce_lr: PolicyDecisions | None = None
    agrees: bool = True
    disagreements: list[str] = field(default_factory=list)


def attach_bundle(records: list[RunRecord], root: str | os.PathLike[str], frame: pd.DataFrame) -> list[str]:
    """Set ``hparams`` and ``live`` on ``records``; return the warnings for the report."""
    warnings: list[str] = []
    try:
        recorded = read_hparams(root).set_index("run")
    except RunlensError:
        recorded = pd.DataFrame()
    manifests = find_manifests(root)
    for record in records:
        hparams = _row(recorded, record.run)
        path = manifests.get(record.run)
        if path is not None:
            try:
                manifest = read_manifest(path)
            except RunlensError as exc:
                warnings.append(f"run {record.run!r}: {exc}")
                manifest = None
            if manifest is not None:
                hparams = hparams or manifest["hparams"]
                rows = frame[frame["run"] == record.run]
                record.live = compare(manifest, rows, Path(os.path.relpath(path, root)).as_posix())
                if not record.live.agrees:
                    warnings.append(
                        f"{WARNING}: run {record.run!r}: what its own callbacks decided (runlens.json) "
                        f"disagrees with the replay of the same settings: {'; '.join(record.live.disagreements)}"
                    )
        record.hparams = [{"name": k, "value": v} for k, v in sorted(hparams.items())]
    return warnings


def compare(manifest: dict[str, Any], rows: pd.DataFrame, name: str) -> Live:
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
    policies = {k: config[k] for k in ("early_stopping", "reduce_lr") if config.get(k) is not None}
    for monitor in dict.fromkeys(args.get("monitor", config["monitor"]) for args in policies.values()):
        problems += _value_mismatches(manifest, _values(rows, monitor), monitor)
    for key, args in policies.items():
        replay = _early_stopping if key == "early_stopping" else _reduce_lr
        try:
            decisions = replay(args, _values(rows, args.get("monitor", config["monitor"])), manifest, rows)
        except RunlensError as exc:
            problems.append(f"the {key} settings of runlens.json cannot be replayed: {exc}")
            continue
        setattr(live, key, decisions)
        problems += _differences(decisions, manifest)
    live.agrees = not problems
    return live


def _early_stopping(
    args: dict[str, Any], values: pd.Series, manifest: dict[str, Any], rows: pd.DataFrame
) -> PolicyDecisions:
    policy = EarlyStopping(**_replay_args(args))
    result = policy.replay(values)
    summary = manifest["early_stopping"] or {}
    live = {k: summary.get(k) for k in ("stopped_epoch", "best_epoch", "restored_epoch")}
    replayed = {
        "stopped_epoch": result.stopped_epoch,
        "best_epoch": result.best_epoch,
        "restored_epoch": result.restored_epoch,
    }
    return PolicyDecisions(_policy_text("EarlyStopping", args), live, replayed)


def _reduce_lr(
    args: dict[str, Any], values: pd.Series, manifest: dict[str, Any], rows: pd.DataFrame
) -> PolicyDecisions:
    policy = ReduceLROnPlateau(**_replay_args(args))
    logged_lr = _values(rows, "learning_rate")
    first = next((e["learning_rate"] for e in manifest["epochs"] if e["learning_rate"] is not None), None)
    if first is None and logged_lr.notna().any():
        first = float(logged_lr.dropna().iloc[0])
    if first is None:
        raise RunlensError("no learning rate was recorded to start the replay from")
    result = policy.replay(values, initial_lr=first)
    after = [*result.learning_rates[1:], result.final_lr]
    reductions = (manifest["reduce_lr"] or {}).get("reductions", [])
    live = {"reduced_at": [r["epoch"] for r in reductions], "rates": [r["new_lr"] for r in reductions]}
    replayed = {"reduced_at": list(result.reduced_at), "rates": [after[e] for e in result.reduced_at]}
    return PolicyDecisions(_policy_text("ReduceLROnPlateau", args), live, replayed)


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


def _row(table: pd.DataFrame, run: str) -> dict[str, Any]:
    if run not in table.index:
        return {}
    return {k: _plain(v) for k, v in table.loc[run].items() if v is not pd.NA and v is not None}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _replay_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in _NOT_REPLAYED}


def _policy_text(name: str, args: dict[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in _replay_args(args).items())})"


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


def bundle_lines(record: RunRecord) -> list[tuple[str, str]]:
    """The report lines (label, text) for a run's hparams and live decisions; 1-based epochs."""
    lines = []
    if record.hparams:
        lines.append(("hparams", ", ".join(f"{h['name']}={_value_text(h['value'])}" for h in record.hparams)))
    live = record.live
    if live is None:
        return lines
    lines.append(
        (
            "runlens.json",
            f"{_status_text(live)}; {live.attempts} attempt(s), {live.epochs_recorded} epochs recorded",
        )
    )
    for label, decisions in (("live stopping", live.early_stopping), ("live LR", live.reduce_lr)):
        if decisions is None:
            continue
        name = decisions.policy.split("(")[0]
        same = not any(d.startswith(f"{name} ") for d in live.disagreements)
        versus = (
            "the replay of the same settings agrees"
            if same
            else (f"the replay of the same settings: {_decisions_text(decisions.replayed)}")
        )
        lines.append((label, f"{decisions.policy}: {_decisions_text(decisions.live)}; {versus}"))
    return lines + [(WARNING, f"live and replayed decisions disagree: {d}") for d in live.disagreements]


def _status_text(live: Live) -> str:
    if not live.ended_normally:
        return (
            f"training did not end normally (status {live.status!r}, last written {live.updated_at}: "
            "still running, or the process died)"
        )
    return {
        "completed": "training completed all its epochs",
        "stopped_early": "EarlyStopping stopped it",
        "stopped": "a callback stopped it",
    }.get(live.status, live.status)


def _decisions_text(decisions: dict[str, Any]) -> str:
    if "reduced_at" in decisions:
        if not decisions["reduced_at"]:
            return "no reduction"
        steps = [f"{e + 1} (to {r:.6g})" for e, r in zip(decisions["reduced_at"], decisions["rates"])]
        return "reduced after epoch(s) " + ", ".join(steps)
    stopped = decisions["stopped_epoch"]
    text = "did not stop" if stopped is None else f"stopped after epoch {stopped + 1}"
    best = decisions["best_epoch"]
    text += f", best epoch {'none' if best is None else best + 1}"
    if decisions.get("restored_epoch") is not None:
        text += f", weights of epoch {decisions['restored_epoch'] + 1} at the end"
    return text


def _value_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
