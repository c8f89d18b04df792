"""Logdirs -> one row per evaluation, the unit each framework's patience counts.

A Keras epoch, a Lightning validation check, an HF Trainer evaluation, or (``generic``) a logged
value of one chosen tag. :func:`read_evals` finds out which framework wrote each run
(:mod:`~runlens.evals.detect`), reads every run its own way (:mod:`~runlens.evals.keras`,
:mod:`~runlens.evals.lightning`, :mod:`~runlens.evals.transformers`,
:mod:`~runlens.evals.generic`; how step-logged values attach to evaluations:
:mod:`~runlens.evals.steps`) and says what it found in ``frame.attrs``.

>>> evals = read_evals("lightning_logs")                     # doctest: +SKIP
>>> runlens.lightning.EarlyStopping("val_loss").replay(evals["val_loss"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from runlens.errors import RunlensError, RunlensWarning
from runlens.evals import generic, keras, lightning, transformers
from runlens.evals.detect import FRAMEWORKS, Detected, check_framework, detect_folders
from runlens.events.found import ReadFound
from runlens.events.logdir import read_logdir
from runlens.events.sources import is_url
from runlens.name_columns import name_codes, names

__all__ = ["FRAMEWORKS", "evals_from_scalars", "read_evals"]

_READERS = {"keras": keras, "lightning": lightning, "transformers": transformers, "generic": generic}
_LEADING = ["run", "framework", "eval", "step", "epoch", "wall_time"]


def read_evals(
    path: str | os.PathLike[str],
    *,
    framework: str = "auto",
    runs: str | Sequence[str] | None = None,
    monitor: str | None = None,
    **read_options: Any,
) -> pd.DataFrame:
    """One row per evaluation of every run under ``path``, each run read as its framework logs.

    Columns: ``run`` (the folder, Keras' ``train``/``validation`` merged under their parent),
    ``framework`` (``keras``, ``lightning``, ``transformers`` or ``generic``), ``eval`` (0-based
    within the run), ``step`` (as logged), ``epoch`` (0-based ``Int64``; ``Float64`` when an HF run
    is in the frame, whose epoch is the Trainer's fractional progress, 1.0 at the end of the first
    epoch; ``<NA>`` where unknown), ``wall_time``, then one nullable ``Float64`` column per metric,
    named as that framework's callbacks monitor it: Keras' ``logs`` keys (``val_loss``), Lightning's
    logged names (``val_loss``, ``train_loss_epoch``, ``lr-Adam``), HF's keys (``eval_loss``,
    ``loss``, ``learning_rate``). ``<NA>``: not logged for that evaluation; NaN: a logged NaN.
    Step-logged values attach to the evaluation they lead to (see :mod:`runlens.evals.steps`).

    Args:
        framework: ``"auto"`` (each run by its own signs, see :mod:`runlens.evals.detect`) or one
            framework for every run.
        runs: only these folders (names or globs), as in :func:`runlens.read_scalars`.
        monitor: a tag: the evaluations of ``generic`` runs (one per logged value of it), and a
            validation check of Lightning runs wherever it was logged (for a monitor whose name
            does not say validation); a run that never logged it gets a warning.
        read_options: ``workers``, ``executor``, ``cache``, ``storage_options``, passed to
            :func:`runlens.read_scalars`.

    ``frame.attrs``: ``"frameworks"`` (run -> ``{"framework", "why"}``), ``"skipped"`` (run -> why
    it gave no evaluation: each also a :class:`RunlensWarning` unless the folder held no scalar at
    all) and ``"problems"`` (damaged files). A logdir that gives no evaluation at all raises
    :class:`RunlensError` saying what was found and what to pass.

    >>> evals = read_evals("runs/", monitor="val/loss")   # doctest: +SKIP
    """
    return read_evals_found(path, framework=framework, runs=runs, monitor=monitor, **read_options)[0]


def read_evals_found(
    path: str | os.PathLike[str],
    *,
    framework: str = "auto",
    runs: str | Sequence[str] | None = None,
    monitor: str | None = None,
    on_read: Callable[[ReadFound], None] | None = None,
    **read_options: Any,
) -> tuple[pd.DataFrame, ReadFound]:
    """:func:`read_evals`' frame and what the read found beside it
    (:class:`runlens.events.found.ReadFound`: the files read and their plugins' tags), from one
    listing and one read of the logdir; ``on_read`` is called with the latter as soon as the files
    are read, before the frame is made (``runlens report`` starts reading hparams then).

    >>> evals, found = read_evals_found("sample_logs")            # doctest: +SKIP
    """
    check_framework(framework)
    if "tags" in read_options:
        raise RunlensError(
            "read_evals reads every tag of a run (to detect its framework); tags= is not an option"
        )
    _check_monitor(framework, monitor)
    scalars, found = read_logdir(path, runs=runs, **read_options)
    if on_read is not None:
        on_read(found)
    frame = evals_from_scalars(
        scalars, framework=framework, monitor=monitor, root=path, label=os.fspath(path)
    )
    frame.attrs["problems"] = scalars.attrs.get("problems", [])
    return frame, found


def evals_from_scalars(
    scalars: pd.DataFrame,
    *,
    framework: str = "auto",
    monitor: str | None = None,
    root: str | os.PathLike[str] | None = None,
    label: str = "scalar frame",
) -> pd.DataFrame:
    """The evaluation frame of an already-read long frame (see :func:`read_evals`); ``root`` (the
    logdir it was read from) lets detection look for Lightning's ``hparams.yaml``."""
    check_framework(framework)
    _check_monitor(framework, monitor)
    folders = [str(r) for r in scalars.attrs.get("runs", [])]  # every folder read, scalars or not
    long = pd.DataFrame(scalars, copy=False)  # without attrs, which pandas deep-copies at every step
    folder, folder_names = name_codes(long["run"])
    tag, tag_names = name_codes(long["tag"])
    known = (folder >= 0) & (tag >= 0)
    seen = np.zeros((len(folder_names), len(tag_names)), dtype=bool)  # (folder, tag) pairs with rows
    seen[folder[known], tag[known]] = True
    tags_by_folder: dict[str, set[str]] = {name: set() for name in folders}
    for name in folder_names:
        tags_by_folder.setdefault(name, set())
    for i, j in zip(*(a.tolist() for a in np.nonzero(seen))):  # one pass over the pairs, not per folder
        tags_by_folder[folder_names[i]].add(tag_names[j])
    found = detect_folders(tags_by_folder, framework=framework, has_hparams=_hparams_finder(root))
    parts = []
    for name, reader in _READERS.items():
        chosen = np.array(
            [found[f].framework == name and bool(tags_by_folder[f]) for f in folder_names] + [False]
        )
        if chosen.any():
            rows = chosen[folder]  # code -1 (no run): the last entry, False
            part = reader.evals(long if rows.all() else long[rows], monitor)
            part.insert(1, "framework", name)
            parts.append(part)
    frame = _combine(parts)
    # A folder without scalars (Keras' parent folder of hparams, say) decides nothing when others
    # of its run hold some.
    runs_with_scalars = {d.run for f, d in found.items() if tags_by_folder[f]}
    deciding = {f: d for f, d in found.items() if tags_by_folder[f] or d.run not in runs_with_scalars}
    skipped = _skipped(frame, deciding, tags_by_folder, monitor, label)
    # set last: pandas deep-copies attrs (a sweep's 2,000 verdicts) into every column taken out
    frame.attrs["frameworks"] = _verdicts(deciding)
    frame.attrs["skipped"] = skipped
    return frame


def _check_monitor(framework: str, monitor: str | None) -> None:
    if monitor is not None and (not isinstance(monitor, str) or not monitor):
        raise RunlensError(f"monitor must be a tag name such as 'val/loss', got {monitor!r}")
    if framework == "generic" and monitor is None:
        raise RunlensError(
            "framework='generic' reads one evaluation per logged value of a tag: pass monitor='<tag>'"
        )


def _hparams_finder(root: str | os.PathLike[str] | None) -> Callable[[str], bool] | None:
    """Whether a run folder holds Lightning's ``hparams.yaml`` (None: a URL, not looked at)."""
    if root is None or is_url(root):
        return None
    base = os.fspath(root).removeprefix("file://")
    base = os.path.dirname(base) if os.path.isfile(base) else base
    # os.path, not pathlib: asked for every folder without a framework's tags (a sweep's 2,000)
    return lambda folder: os.path.isfile(os.path.join(base, folder, "hparams.yaml"))


def _combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=_LEADING)  # never returned: _skipped raises on an empty frame
    frame = pd.concat(parts, ignore_index=True, sort=False)
    metrics = sorted(c for c in frame.columns if c not in _LEADING)
    for column in metrics:  # a metric some frameworks' runs lack is <NA> for them
        frame[column] = frame[column].astype("Float64")
    frame = frame[_LEADING + metrics].sort_values(["run", "eval"], kind="stable", ignore_index=True)
    frame["eval"] = frame["eval"].astype(np.int64)
    frame["step"] = frame["step"].astype(np.int64)
    frame["epoch"] = _epoch_column(frame["epoch"].to_numpy(dtype=np.float64), frame["framework"])
    # Categorical of sorted names, as read_scalars' and read_epochs' run (renumbered, not re-read:
    # one part's run is a categorical already)
    codes, labels = name_codes(frame["run"])
    frame["run"] = pd.Categorical.from_codes(codes, categories=names(labels))
    return frame


def _epoch_column(epoch: np.ndarray, framework: pd.Series) -> pd.arrays.BaseMaskedArray:
    """``Int64`` when every known epoch is whole and no HF run is there, else ``Float64``."""
    missing = np.isnan(epoch)
    known = epoch[~missing]
    whole = bool(np.all(known == np.round(known))) and not (framework == "transformers").any()
    if whole:
        return pd.arrays.IntegerArray(np.where(missing, 0, epoch).astype(np.int64), missing)
    return pd.arrays.FloatingArray(np.where(missing, 0.0, epoch), missing)


def _verdicts(found: dict[str, Detected]) -> dict[str, dict[str, str]]:
    """run -> {"framework", "why"}; Keras' two folders give one run, their reasons joined."""
    verdicts: dict[str, dict[str, str]] = {}
    for detected in found.values():
        seen = verdicts.setdefault(detected.run, {"framework": detected.framework, "why": detected.why})
        if detected.why not in seen["why"]:
            seen["why"] += f"; {detected.why}"
    return dict(sorted(verdicts.items()))


def _skipped(
    frame: pd.DataFrame,
    found: dict[str, Detected],
    tags_by_folder: dict[str, set[str]],
    monitor: str | None,
    label: str,
) -> dict[str, str]:
    """Why each run gave no evaluation; warns for runs that held scalars, raises when none gave any."""
    have = set(frame["run"].unique())
    tags_by_run: dict[str, set[str]] = {}
    framework_of: dict[str, str] = {}
    for folder, detected in found.items():
        tags_by_run.setdefault(detected.run, set()).update(tags_by_folder[folder])
        framework_of.setdefault(detected.run, detected.framework)
    skipped: dict[str, str] = {}
    for run in sorted(set(tags_by_run) - have):
        tags, name = tags_by_run[run], framework_of[run]
        if not tags:
            skipped[run] = "no scalars"
            continue
        skipped[run] = f"read as {name}: {_READERS[name].no_evals(tags, monitor)}"
        if not frame.empty:
            warnings.warn(
                f"{label}: run {run!r} gave no evaluation, {skipped[run]}", RunlensWarning, stacklevel=3
            )
    if frame.empty:
        reasons = [f"run {run!r}: {why}" for run, why in skipped.items() if why != "no scalars"]
        if not reasons:
            raise RunlensError(f"{label}: no scalars in the event files (only other kinds of data)")
        more = f" (and {len(reasons) - 3} more runs)" if len(reasons) > 3 else ""
        raise RunlensError(f"{label}: no evaluations found. " + "; ".join(reasons[:3]) + more)
    if monitor is not None and monitor not in frame.columns:
        warnings.warn(f"{label}: no run logged monitor {monitor!r}", RunlensWarning, stacklevel=3)
    return skipped
