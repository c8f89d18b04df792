"""Build a :class:`~runlens.report.model.Report` from a logdir or an epoch frame.

Reading is the only I/O (the logdir's event files, and its checkpoint folders for the checkpoints
part); everything else is the pure policy layer: :func:`runlens.replay` per run,
ReduceLROnPlateau per run (:mod:`runlens.report.learning_rate`), :func:`runlens.sweep` across runs.

>>> report = build_report("sample_logs", patience=3)                # doctest: +SKIP
>>> print(runlens.render_report(report, "text"))                    # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runlens import __version__
from runlens.arguments import count, finite_number
from runlens.checkpoints.plan import DEFAULT_MIN_AGE
from runlens.checkpoints.retention import KeepBestK, KeepLastN
from runlens.errors import RunlensError
from runlens.options import SWEEP_PATIENCE as DEFAULT_SWEEP_PATIENCE
from runlens.policies.early_stopping import EarlyStopping
from runlens.policies.plateau import LR_TIMINGS, ReduceLROnPlateau
from runlens.policies.replay import LR_COLUMNS, replay
from runlens.policies.runs import RunSeries, check_frame, run_series
from runlens.policies.sweep import sweep
from runlens.report.bundle import attach_bundle
from runlens.report.checkpoint_section import checkpoint_summaries
from runlens.report.learning_rate import replay_learning_rate
from runlens.report.model import Report, RunRecord, Settings, SweepSummary, Totals

_KEYS = ("run", "epoch", "wall_time")


def build_report(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    monitor: str | None = None,
    mode: str = "auto",
    patience: int = 5,
    min_delta: float = 0.0,
    baseline: float | None = None,
    start_from_epoch: int = 0,
    restore_best_weights: bool = True,
    semantics: str = "keras3",
    lr_factor: float = 0.1,
    lr_patience: int = 10,
    lr_min_delta: float = 1e-4,
    lr_cooldown: int = 0,
    lr_min_lr: float = 0.0,
    lr_timing: str = "used",
    initial_lr: float | None = None,
    sweep_patience: int | Iterable[int] = DEFAULT_SWEEP_PATIENCE,
    sweep_min_delta: float | Iterable[float] | None = None,
    tolerance: float = 0.0,
    checkpoints: bool | str | os.PathLike[str] = True,
    keep_best: int = 3,
    keep_last: int = 1,
    checkpoint_min_age: float = DEFAULT_MIN_AGE,
) -> Report:
    """Replay EarlyStopping (and ReduceLROnPlateau) on every run, sweep settings, index checkpoints.

    Args:
        source: a logdir (read with :func:`runlens.read_epochs`) or an epoch frame already read.
        monitor: the metric both policies watch; default ``val_loss`` when any run logged it,
            else ``loss`` (else whichever of the two is a column).
        mode, patience, min_delta, baseline, start_from_epoch, restore_best_weights, semantics:
            :class:`runlens.EarlyStopping`'s arguments (defaults: patience 5, restore on).
        lr_factor, lr_patience, lr_min_delta, lr_cooldown, lr_min_lr: :class:`runlens.ReduceLROnPlateau`'s
            ``factor, patience, min_delta, cooldown, min_lr`` (same monitor, mode and semantics).
        lr_timing: ``"used"`` when the logged rate of an epoch is the one used during it (TensorBoard
            before ReduceLROnPlateau in the callback list, Keras' usual order), ``"after"`` when it
            is the rate after that epoch's decision (ReduceLROnPlateau first).
        initial_lr: the rate the ReduceLROnPlateau replay starts from; default each run's first
            logged rate (runs without a logged rate then get a note instead of a replay).
        sweep_patience, sweep_min_delta: the grid :func:`runlens.sweep` tries; the report's own
            ``patience`` and ``min_delta`` are always added (``sweep_min_delta`` defaults to
            ``min_delta`` alone).
        tolerance: the largest ``max_regret`` a recommended setting may have.
        checkpoints: look for checkpoints (``RUN/checkpoints/``, else the run folder) under the
            logdir (True), nowhere (False), or under this folder. With an epoch frame, True means
            nowhere (no folder is known).
        keep_best, keep_last: the retention rules of the checkpoint plan: the ``keep_best`` best by
            ``monitor`` and the ``keep_last`` latest (0: no such rule).
        checkpoint_min_age: seconds; checkpoints modified more recently are kept, not ranked.

    Returns:
        A :class:`runlens.report.model.Report` (epochs 0-based).

    Example:
        >>> report = build_report("sample_logs", patience=3, sweep_patience=[1, 3, 5])  # doctest: +SKIP
        >>> report.totals.epochs_saved                                                 # doctest: +SKIP
    """
    frame, label, root = _source(source, checkpoints)
    monitor = _monitor(frame, monitor, label)
    policy = EarlyStopping(
        monitor=monitor,
        min_delta=min_delta,
        patience=patience,
        mode=mode,
        baseline=baseline,
        restore_best_weights=restore_best_weights,
        start_from_epoch=start_from_epoch,
        semantics=semantics,
    )
    lr_policy = ReduceLROnPlateau(
        monitor=monitor,
        factor=lr_factor,
        patience=lr_patience,
        mode=mode,
        min_delta=lr_min_delta,
        cooldown=lr_cooldown,
        min_lr=lr_min_lr,
        semantics=semantics,
    )
    if lr_timing not in LR_TIMINGS:
        raise RunlensError(f"lr_timing must be 'used' or 'after', got {lr_timing!r}")
    if initial_lr is not None:
        finite_number("initial_lr", initial_lr)
    rules = [KeepBestK(keep_best, monitor, policy.monitor.direction)]
    rules += [KeepLastN(keep_last)] if count("keep_last", keep_last) else []
    if finite_number("checkpoint_min_age", checkpoint_min_age) < 0:
        raise RunlensError(f"checkpoint_min_age must be >= 0 seconds, got {checkpoint_min_age!r}")
    patiences = sorted({count("sweep_patience", p) for p in _items(sweep_patience)} | {policy.patience})
    deltas = [min_delta] if sweep_min_delta is None else _items(sweep_min_delta)
    deltas = sorted({finite_number("sweep_min_delta", d) for d in deltas} | {float(min_delta)}, key=abs)
    settings = Settings(
        monitor=monitor,
        mode=mode,
        direction=policy.monitor.direction,
        patience=policy.patience,
        min_delta=float(min_delta),
        baseline=policy.baseline,
        start_from_epoch=policy.start_from_epoch,
        restore_best_weights=policy.restore_best_weights,
        semantics=semantics,
        lr_factor=lr_policy.factor,
        lr_patience=lr_policy.patience,
        lr_min_delta=float(lr_min_delta),
        lr_cooldown=lr_policy.cooldown,
        lr_min_lr=lr_policy.min_lr,
        lr_timing=lr_timing,
        initial_lr=initial_lr,
        sweep_patience=patiences,
        sweep_min_delta=deltas,
        tolerance=float(tolerance),
        checkpoints=root is not None,
        keep_best=keep_best,
        keep_last=keep_last,
        checkpoint_min_age=float(checkpoint_min_age),
    )
    records = _records(frame, policy, lr_policy, settings)
    swept = sweep(
        frame,
        patience=patiences,
        min_delta=deltas,
        monitor=monitor,
        mode=mode,
        baseline=policy.baseline,
        start_from_epoch=policy.start_from_epoch,
        restore_best_weights=policy.restore_best_weights,
        semantics=semantics,
        tolerance=tolerance,
    )
    rows = [
        {k: _python(v, nan_is_none=True) for k, v in row.items()} for row in swept.table.to_dict("records")
    ]
    for row in rows:
        row["current"] = row["patience"] == settings.patience and row["min_delta"] == settings.min_delta
    summary = SweepSummary(rows=rows, recommended=swept.recommended, tolerance=swept.tolerance)
    warnings = [str(p.get("message", p)) for p in frame.attrs.get("problems", [])]
    if root is not None:
        found, notes = checkpoint_summaries(
            root,
            frame,
            runs=[r.run for r in records],
            rules=rules,
            min_age=checkpoint_min_age,
            restored={r.run: r.restored_epoch for r in records},
        )
        for record in records:
            record.checkpoints = found.get(record.run)
        warnings += notes
    if not isinstance(source, pd.DataFrame) and Path(source).is_dir():  # runs trained with runlens.keras
        warnings += attach_bundle(records, source, frame)
    return Report(
        source=label,
        settings=settings,
        runs=records,
        sweep=summary,
        totals=_totals(records, summary),
        warnings=warnings,
        runlens_version=__version__,
    )


def _source(source: Any, checkpoints: Any) -> tuple[pd.DataFrame, str, Path | None]:
    """(epoch frame, how the report names its source, folder to look for checkpoints in)."""
    if isinstance(source, pd.DataFrame):
        frame, label, root = source, "epoch frame", None
    elif isinstance(source, (str, os.PathLike)):
        from runlens.epochs import read_epochs

        frame, label, root = read_epochs(source), os.fspath(source), Path(source)
    else:
        raise RunlensError(f"build_report needs a logdir path or an epoch frame, got {type(source).__name__}")
    if checkpoints is False:
        root = None
    elif checkpoints is not True:
        root = Path(checkpoints)
        if not root.is_dir():
            raise RunlensError(f"checkpoints={os.fspath(checkpoints)!r} is not a folder")
    if root is not None and not root.is_dir():
        root = None  # one event file was given: there is no folder to look in
    check_frame(frame, column="epoch")
    if frame.empty:
        raise RunlensError(
            f"{label}: no per-epoch scalars (epoch_* tags, as Keras' TensorBoard callback writes them); "
            "runlens report needs epoch metrics such as epoch_loss"
        )
    return frame, label, root


def _monitor(frame: pd.DataFrame, monitor: str | None, label: str) -> str:
    if monitor is not None:
        check_frame(frame, column=monitor)
        return monitor
    for logged_only in (True, False):  # a column with values first, then one with none at all
        for candidate in ("val_loss", "loss"):
            if candidate in frame.columns and (frame[candidate].notna().any() or not logged_only):
                return candidate
    metrics = ", ".join(str(c) for c in frame.columns if c not in _KEYS) or "none"
    raise RunlensError(
        f"{label}: no run logged val_loss or loss; pass a monitor (--monitor), one of: {metrics}"
    )


def _records(
    frame: pd.DataFrame, policy: EarlyStopping, lr_policy: ReduceLROnPlateau, settings: Settings
) -> list[RunRecord]:
    table = replay(frame, policy)
    monitor = settings.monitor
    base = monitor.removeprefix("val_")
    lr_column = next((c for c in LR_COLUMNS if c in frame.columns), None)
    plotted = [c for c in dict.fromkeys([monitor, base, f"val_{base}", lr_column]) if c in frame.columns]
    series = {column: {s.run: s for s in run_series(frame, column)} for column in plotted}
    records = []
    for row in table.to_dict("records"):
        row = {k: _python(v) for k, v in row.items()}
        run = row["run"]
        monitored = series[monitor][run]
        record = RunRecord(
            run=run,
            epochs_logged=row["epochs_logged"],
            last_epoch=len(monitored.logged) - 1,
            monitor_logged=int(monitored.present.sum()),
            run_best_epoch=row["run_best_epoch"],
            run_best_value=row["run_best_value"],
            epochs_trained=row["epochs_trained"],
            stopped_epoch=row["stopped_epoch"],
            best_epoch=row["best_epoch"],
            best_value=row["best_value"],
            restored_epoch=row["restored_epoch"],
            restored_value=row["restored_value"],
            epochs_saved=row["epochs_saved"],
            fraction_saved=row["fraction_saved"],
            wall_time_s=_span(monitored),
            time_saved_s=_python(row["time_saved_s"], nan_is_none=True),
            regret=row["regret"],
            curves={column: _curve(series[column][run]) for column in plotted},
        )
        record.learning_rate, replayed = replay_learning_rate(
            lr_policy,
            monitored,
            series[lr_column][run] if lr_column else None,
            column=lr_column,
            epochs_trained=record.epochs_trained,
            initial_lr=settings.initial_lr,
            timing=settings.lr_timing,
        )
        if replayed:
            record.curves["learning_rate_replayed"] = replayed
        if not record.monitor_logged:
            record.notes.append(f"no {monitor} logged: EarlyStopping never sees a value, so it never stops")
        records.append(record)
    return records


def _totals(records: list[RunRecord], sweep: SweepSummary) -> Totals:
    logged = sum(r.epochs_logged for r in records)
    saved = sum(r.epochs_saved for r in records)
    spans = [r.wall_time_s for r in records if r.wall_time_s is not None]
    best = next((row for row in sweep.rows if row["recommended"]), None)
    plans = [r.checkpoints for r in records if r.checkpoints is not None]
    planned = [c for c in plans if c.bytes_to_free is not None]
    return Totals(
        runs=len(records),
        epochs_logged=logged,
        epochs_saved=saved,
        fraction_saved=saved / logged if logged else 0.0,
        wall_time_s=sum(spans) if spans else None,
        time_saved_s=float(sum(r.time_saved_s for r in records if r.time_saved_s is not None)),
        runs_stopped=sum(r.stopped_epoch is not None for r in records),
        runs_lost=sum(r.regret is not None and r.regret > 0 for r in records),
        recommended_epochs_saved=None if best is None else best["epochs_saved"],
        recommended_fraction_saved=None if best is None else best["fraction_saved"],
        recommended_time_saved_s=None if best is None else best["time_saved_s"],
        checkpoint_files=sum(c.files for c in plans) if plans else None,
        checkpoint_bytes=sum(c.bytes_total for c in plans) if plans else None,
        checkpoint_bytes_to_free=sum(c.bytes_to_free for c in planned) if planned else None,
    )


def _items(value: Any) -> list:
    if isinstance(value, Iterable) and not isinstance(value, str):
        items = list(value)
        if not items:
            raise RunlensError("a sweep grid needs at least one value")
        return items
    return [value]


def _span(series: RunSeries) -> float | None:
    walls = series.wall_time[series.logged]
    walls = walls[~np.isnan(walls)]
    return float(walls.max() - walls.min()) if len(walls) else None


def _curve(series: RunSeries) -> list[float | None]:
    return [float(v) if p else None for v, p in zip(series.values.tolist(), series.present.tolist())]


def _python(value: Any, *, nan_is_none: bool = False) -> Any:
    """A cell of a pandas table as plain Python: NA -> None, numpy scalars -> int/float/bool.

    ``nan_is_none`` for float64 columns, where NaN is pandas' "no value" (in ``Float64`` columns a
    NaN is a logged NaN and stays one).
    """
    if value is pd.NA or value is None:
        return None
    if isinstance(value, tuple):
        return list(value)
    value = value.item() if hasattr(value, "item") else value
    if nan_is_none and isinstance(value, float) and math.isnan(value):
        return None
    return value
