"""What a run's own callbacks decided (its ``runlens.json``) beside runlens' replay of the same
settings over the epochs its event files hold: :func:`compare`, one run at a time, on the runs'
values split once for the whole sweep (:func:`run_epochs`).

The policies are built from ``runlens.json``'s ``config`` through the policy registry
(:data:`MANIFEST_POLICIES`, :func:`manifest_policies`) and replayed through their protocol; the
learning rate through :func:`runlens.policies.learning_rate.replay_lr`, the path the report's own
LR lines take (same starting-rate rule).

>>> manifest_policies({"monitor": "val_loss", "early_stopping": {"patience": 2}, "reduce_lr": None})
({'early_stopping': EarlyStopping(monitor='val_loss', min_delta=0.0, patience=2, mode='auto', baseline=None, restore_best_weights=False, start_from_epoch=0, semantics='keras3')}, [])
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from runlens.errors import RunlensError
from runlens.policies.base import policy_class
from runlens.policies.learning_rate import LR_COLUMNS, replay_lr
from runlens.policies.monitor import as_epoch_values
from runlens.policies.runs import RunSeries, runs_series
from runlens.report.model import Live, PolicyDecisions

_NOT_REPLAYED = ("verbose",)  # Keras arguments that change no decision
# runlens.json's config key -> the registered policy the bundle's Keras callback is
MANIFEST_POLICIES = {"early_stopping": "keras.EarlyStopping", "reduce_lr": "keras.ReduceLROnPlateau"}

Policies = tuple[dict[str, Any], list[str]]  # config key -> policy; why a key cannot be replayed


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


def manifest_policies(config: dict[str, Any]) -> Policies:
    """Every policy runlens.json's ``config`` used, and why any of them cannot be replayed."""
    policies, problems = {}, []
    for key in MANIFEST_POLICIES:
        try:
            policy = manifest_policy(config, key)
        except RunlensError as exc:
            problems.append(f"the {key} settings of runlens.json cannot be replayed: {exc}")
            continue
        if policy is not None:
            policies[key] = policy
    return policies, problems


@dataclass
class RunEpochs:
    """One run's rows of the epoch frame as the comparison reads them: the epochs it has rows for,
    and its values of the columns asked for."""

    logged: list[int]
    series: dict[str, RunSeries]
    lr_column: str | None  # the frame's logged learning rate, if any

    def values(self, column: str) -> pd.arrays.FloatingArray:
        """``column`` per epoch 0..last logged: NA where not logged (all NA when no such column)."""
        found = self.series.get(column)
        if found is not None:
            return found.masked()
        n = self.logged[-1] + 1 if self.logged else 0
        return pd.arrays.FloatingArray(np.full(n, np.nan), np.ones(n, dtype=bool))


def run_epochs(frame: pd.DataFrame, columns: Iterable[str]) -> dict[str, RunEpochs]:
    """Every run of the epoch ``frame`` with its epochs and its values of ``columns`` (those the
    frame has) and of the logged learning rate, split in one pass over the frame (a row mask
    and an indexed Series per run cost a 2,000-run sweep seconds).

    >>> frame = pd.DataFrame({"run": ["a", "a", "b"], "epoch": [0, 2, 0], "wall_time": 0.0,
    ...                       "loss": pd.array([0.5, None, 0.4], dtype="Float64")})
    >>> a = run_epochs(frame, ["loss", "val_loss"])["a"]
    >>> a.logged, a.values("loss").tolist(), a.values("val_loss").tolist()
    ([0, 2], [0.5, <NA>, <NA>], [<NA>, <NA>, <NA>])
    """
    lr_column = next((c for c in LR_COLUMNS if c in frame.columns), None)
    wanted = [c for c in dict.fromkeys([*columns, lr_column]) if c is not None and c in frame.columns]
    split = runs_series(frame, wanted or ["epoch"])  # "epoch": only which epochs each run has
    first = split[wanted[0] if wanted else "epoch"]
    return {
        rows.run: RunEpochs(
            logged=np.flatnonzero(rows.logged).tolist(),
            series={column: split[column][k] for column in wanted},
            lr_column=lr_column,
        )
        for k, rows in enumerate(first)
    }


def compare(
    manifest: dict[str, Any],
    epochs: RunEpochs,
    name: str,
    policies: Policies,
    *,
    initial_lr: float | None = None,
) -> Live:
    """The live decisions of ``manifest`` beside the replay of its ``policies``
    (:func:`manifest_policies` of its config) over one run's ``epochs``."""
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
    if recorded != epochs.logged:
        problems.append(
            f"runlens.json records {_span(recorded)}, the event files hold {_span(epochs.logged)}"
        )
    replayed, unusable = policies
    problems += unusable
    for monitor in dict.fromkeys(p.metric for p in replayed.values()):
        problems += _value_mismatches(manifest, epochs.values(monitor), monitor)
    for key, policy in replayed.items():
        values = epochs.values(policy.metric)
        try:
            if policy.kind == "stopping":
                decisions = _stopping(policy, values, manifest, key)
            else:
                decisions = _learning_rate(policy, values, manifest, epochs, key, initial_lr)
        except RunlensError as exc:
            problems.append(f"the {key} settings of runlens.json cannot be replayed: {exc}")
            continue
        setattr(live, key, decisions)
        problems += _differences(decisions, manifest)
    live.agrees = not problems
    return live


def _stopping(policy: Any, values: Any, manifest: dict[str, Any], key: str) -> PolicyDecisions:
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
    values: Any,
    manifest: dict[str, Any],
    epochs: RunEpochs,
    key: str,
    initial_lr: float | None,
) -> PolicyDecisions:
    logged = None if epochs.lr_column is None else epochs.values(epochs.lr_column)
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


def _value_mismatches(manifest: dict[str, Any], values: Any, monitor: str) -> list[str]:
    """Epochs whose ``monitor`` differs (float32) between runlens.json and the event files."""
    floats, present = as_epoch_values(values)
    differ = []
    for entry in manifest["epochs"]:
        epoch = entry["epoch"]
        recorded = entry["logs"].get(monitor)
        logged = float(floats[epoch]) if 0 <= epoch < len(floats) and present[epoch] else None
        if recorded is None or logged is None:
            if (recorded is None) != (logged is None):
                differ.append(epoch)
        elif not _same32(recorded, logged):
            differ.append(epoch)
    if not differ:
        return []
    shown = ", ".join(str(e + 1) for e in differ[:5]) + (", ..." if len(differ) > 5 else "")
    return [f"{monitor} differs between runlens.json and the event files at epoch(s) {shown}"]


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
