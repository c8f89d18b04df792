"""Build a :class:`~runlens.report.model.Report` from a logdir or an epoch frame.

Reading is the only I/O (the logdir's event files, its checkpoint folders and ``runlens.json``
files); everything else is the pure policy layer, through the policy protocol
(:mod:`runlens.policies.base`): :func:`runlens.replay` per run, the learning-rate replay
(:mod:`~runlens.report.build.learning_rate`), :func:`runlens.sweep` across runs, then the
checkpoint plans (:mod:`~runlens.report.build.checkpoints`) and the live comparison of runs
trained with ``runlens.keras`` (:mod:`~runlens.report.build.live`).

>>> report = build_report("sample_logs", early_stopping=runlens.EarlyStopping(patience=3))  # doctest: +SKIP
>>> print(runlens.render_report(report, "text"))                                           # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from runlens import __version__
from runlens.arguments import LRTiming, choice, count, finite_number
from runlens.checkpoints.plan import DEFAULT_MIN_AGE
from runlens.checkpoints.retention import KeepBestK, KeepLastN
from runlens.errors import RunlensError
from runlens.policies.base import check_kind, policy_class
from runlens.policies.learning_rate import check_initial_lr
from runlens.policies.runs import check_frame
from runlens.policies.sweep import sweep as run_sweep
from runlens.report.build.checkpoints import checkpoint_summaries
from runlens.report.build.frameworks import (
    STOPPING_CLASSES,
    check_policy_frameworks,
    default_policy,
    framework_frames,
    lr_policy,
    setting_name,
    trainer_state_notes,
)
from runlens.report.build.live import attach_live, run_lr_policy, run_policies
from runlens.report.build.overview import attach_damage, build_overview, build_totals
from runlens.report.build.runs import python, run_reports
from runlens.report.build.source import (
    ReportReads,
    checkpoint_root,
    frame_runs,
    report_source,
    report_workers,
    run_folder,
    run_names,
    selected_runs,
)
from runlens.report.model import Report, Settings, SweepSummary

if TYPE_CHECKING:
    from runlens.events.found import ReadFound

__all__ = ["build_report"]

_KEYS = ("run", "epoch", "wall_time")
# The report's stopping policy when none is given (on the default monitor).
DEFAULT_EARLY_STOPPING = {"patience": 5, "restore_best_weights": True}
# The class a policy given as a dict of arguments is made of.
_CLASSES = {"early_stopping": "keras.EarlyStopping", "reduce_lr": "keras.ReduceLROnPlateau"}


def build_report(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    runs: str | Sequence[str] | None = None,
    early_stopping: Any = None,
    reduce_lr: Any = None,
    framework: str = "auto",
    monitor: str | None = None,
    policies: Mapping[str, Any] | None = None,
    sweep: Mapping[str, Any] | None = None,
    checkpoints: bool | str | os.PathLike[str] = True,
    keep_best: int = 3,
    keep_last: int = 1,
    checkpoint_min_age: float = DEFAULT_MIN_AGE,
    initial_lr: float | None = None,
    lr_timing: LRTiming = "used",
    executor: Executor | None = None,
) -> Report:
    """Replay a stopping policy (and a learning-rate policy) on every run, sweep its settings,
    index checkpoints, compare with what runs trained with ``runlens.keras`` decided.

    A logdir is read with :func:`runlens.read_evals`: each run as the framework that wrote it logs
    (Keras, Lightning, HF Trainer, or ``generic`` with ``monitor``), and replayed with that
    framework's own stopping policy and defaults (:mod:`~runlens.report.build.frameworks`). The
    report is about the Keras runs when there are any (else the first framework found); the runs of
    every other framework make a report of their own in :attr:`Report.parts`, numbered as that
    framework's users know them (a Lightning validation check, an HF evaluation at a step).

    Args:
        source: a logdir, an epoch frame (:func:`runlens.read_epochs`) or an evaluation frame
            (:func:`runlens.read_evals`) already read.
        runs: only the runs of these names or globs, as the report prints them (``"lr_3*"``), or
            as folders (``"exp1/train"``) -- :func:`runlens.read_evals`' ``runs=``; a pattern that
            matches no run is an error listing the runs there are. Default: every run.
        early_stopping: the stopping policy, e.g. ``runlens.EarlyStopping(patience=3)``, or a dict
            of its Keras arguments (pasteable from ``runlens.sweep(...).recommended``) whose
            ``monitor`` defaults to val_loss when any run logged it, else loss. Default:
            ``EarlyStopping(patience=5, restore_best_weights=True)`` on that monitor. Its monitor is
            the report's: the checkpoint ranking and the plots use it too.
        reduce_lr: a learning-rate policy (``runlens.ReduceLROnPlateau(...)``, or a dict of its
            arguments, ``monitor`` defaulting to the report's) to replay on every run. Default
            None: only runs whose ``runlens.json`` says they used ReduceLROnPlateau get a replay,
            with their own settings.
        sweep: :func:`runlens.sweep`'s keywords: the grid (``early_stopping``'s setting names ->
            values to try; default its own default grid, ``{"patience": (0, 1, 2, 3, 5, 8, 10, 15,
            20, 30)}``; the report's own value of each is always added) and ``tolerance``. For other
            frameworks' runs the grid is their own policy's (``patience`` is then that policy's
            patience setting, e.g. HF's ``early_stopping_patience``).
        framework: ``"auto"`` (each run by its layout) or one framework for every run, as
            :func:`runlens.read_evals` takes it.
        monitor: the tag a ``generic`` run is read and replayed by (e.g. ``"val/loss"``); given,
            it is also every framework's default monitor.
        policies: the stopping policy of each other framework's runs (``{"lightning":
            runlens.lightning.EarlyStopping("val_acc", mode="max")}``, or a dict of its arguments
            over that framework's defaults), and under ``"torch"`` a ``runlens.torch.ReduceLROnPlateau``
            (or its arguments) to replay on every non-Keras run (default: none; their runs carry no
            record of the scheduler they used).
        checkpoints: look for checkpoints (``RUN/checkpoints/``, else the run folder) under the
            logdir (True), nowhere (False), or under this folder. With an epoch frame, True means
            nowhere (no folder is known).
        keep_best, keep_last: the retention rules of the checkpoint plan: the ``keep_best`` best by
            the monitor and the ``keep_last`` latest (0: no such rule).
        checkpoint_min_age: seconds; checkpoints modified more recently are kept, not ranked.
        initial_lr, lr_timing: the learning-rate replays' starting rate (None: each run's first
            logged rate; see :mod:`runlens.policies.learning_rate`) and which rate the logs hold
            (``"used"`` during the epoch, Keras' usual callback order, or ``"after"`` its decision).
        executor: what :func:`runlens.read_scalars` reads a logdir's event files with (its
            ``executor=``), e.g. a :class:`runlens.events.read_ahead.ReadAhead` made before the
            library was imported, as ``runlens report`` does. Default: one made for a large
            logdir (:func:`~runlens.report.build.source.report_workers`), else none.

    Returns:
        A :class:`runlens.report.model.Report` (epochs 0-based).

    Example:
        >>> import runlens                                                            # doctest: +SKIP
        >>> report = runlens.build_report(
        ...     "sample_logs",
        ...     early_stopping=runlens.EarlyStopping(patience=3, restore_best_weights=True),
        ...     reduce_lr=runlens.ReduceLROnPlateau(factor=0.5, patience=2),
        ...     sweep={"patience": [1, 3, 5], "min_delta": [0, 1e-3], "tolerance": 0.01},
        ... )                                                                         # doctest: +SKIP
        >>> report.totals.epochs_saved, report.sweep.recommended                     # doctest: +SKIP
    """
    options = dict(
        early_stopping=early_stopping,
        reduce_lr=reduce_lr,
        monitor=monitor,
        policies=policies,
        sweep=sweep,
        checkpoints=checkpoints,
        keep_best=keep_best,
        keep_last=keep_last,
        checkpoint_min_age=checkpoint_min_age,
        initial_lr=initial_lr,
        lr_timing=lr_timing,
    )
    if isinstance(source, pd.DataFrame):
        source = selected_runs(source, runs)
    with report_workers(source, runs, executor) as executor:
        reads = options["reads"] = ReportReads(None, executor)  # shared by the parts: read once
        reads.walk_ahead(checkpoint_root(source, checkpoints))  # a worker walks it after the read
        try:
            return _build_parts(source, options, runs=runs, framework=framework, executor=executor)
        finally:
            reads.close()


def _build_parts(
    source: Any, options: dict[str, Any], *, runs: Any, framework: str, executor: Executor | None
) -> Report:
    """The report on every framework's runs of ``source`` (Keras' first, the others its parts)."""
    reads, folder, monitor = options["reads"], run_folder(source), options["monitor"]

    def read_done(found: ReadFound) -> None:  # the workers go on to the runs' hparams and manifests
        reads.found = found
        if folder is not None:
            reads.hparams_ahead(folder)
            reads.manifests_ahead(folder, run_names(found))

    parts, reads.found = framework_frames(
        source, framework=framework, monitor=monitor, runs=runs, executor=executor, on_read=read_done
    )
    if parts is None:  # an epoch frame: the Keras report as it always was
        return _build(source, parts_frame=None, name="keras", **options)
    check_policy_frameworks(options["early_stopping"], parts)
    runs_of = {name: set(frame_runs(frame)) for name, frame in parts.items()}
    reports = [
        _build(
            source,
            parts_frame=frame,
            name=name,
            elsewhere=sorted(set().union(*(r for n, r in runs_of.items() if n != name))),
            first=i == 0,
            **options,
        )
        for i, (name, frame) in enumerate(parts.items())
    ]
    reports[0].parts = reports[1:]
    return reports[0]


def _build(
    source: Any,
    *,
    parts_frame: pd.DataFrame | None,
    name: str,
    elsewhere: Sequence[str] = (),
    first: bool = True,
    early_stopping: Any,
    reduce_lr: Any,
    monitor: str | None,
    policies: Mapping[str, Any] | None,
    sweep: Mapping[str, Any] | None,
    checkpoints: bool | str | os.PathLike[str],
    keep_best: int,
    keep_last: int,
    checkpoint_min_age: float,
    initial_lr: float | None,
    lr_timing: LRTiming,
    reads: ReportReads,
) -> Report:
    """The report on the runs of one framework (``parts_frame``; None: read ``source`` as an epoch
    frame, the Keras report); ``reads``: what the report read once for all its parts."""
    frame, label, root = report_source(source, checkpoints, parts_frame)
    if name == "keras":
        given = early_stopping
        if monitor is not None and (given is None or isinstance(given, Mapping)):
            given = {"monitor": monitor, **(DEFAULT_EARLY_STOPPING if given is None else given)}
        stopping = _policy("early_stopping", given, "stopping", frame, label)
        monitor = stopping.metric
        asked_lr = None if reduce_lr is None else _policy("reduce_lr", reduce_lr, "lr", frame, label, monitor)
    else:
        own = (policies or {}).get(name)
        if own is None and getattr(early_stopping, "framework", None) == STOPPING_CLASSES[name].split(".")[0]:
            own = early_stopping  # a policy object of this framework given as early_stopping
        stopping = default_policy(name, own, monitor=monitor)
        check_frame(frame, column=stopping.metric)
        monitor = stopping.metric
        asked_lr = lr_policy((policies or {}).get("torch"), direction=stopping.direction)
    choice("lr_timing", lr_timing, LRTiming)
    check_initial_lr(initial_lr)
    rules = [KeepBestK(keep_best, monitor, stopping.direction)]
    rules += [KeepLastN(keep_last)] if count("keep_last", keep_last) else []
    if finite_number("checkpoint_min_age", checkpoint_min_age) < 0:
        raise RunlensError(f"checkpoint_min_age must be >= 0 seconds, got {checkpoint_min_age!r}")
    grid, tolerance = _grid(sweep, stopping)
    folder = source if name == "keras" and run_folder(source) is not None else None
    runs = frame_runs(frame)
    reads.checkpoints_ahead(root)  # the workers check the checkpoints while the runs are replayed
    manifests, warnings = reads.manifests(Path(folder), runs) if folder is not None else ({}, [])
    policies = run_policies(manifests)  # as each runlens.json configured them
    records = run_reports(
        frame,
        stopping,
        lr_policy=lambda run: run_lr_policy(run, asked_lr, policies),
        initial_lr=initial_lr,
        timing=lr_timing,
    )
    try:
        swept = run_sweep(frame, stopping, tolerance=tolerance, **grid)
    except RunlensError as exc:
        raise RunlensError(f"sweep: {exc}") from None
    # The report's model counts in the runs' unit (Settings.framework says which): an evaluation
    # frame's sweep names its counts evals_*, the report's fields keep one name.
    swept_table = swept.table.rename(columns={"evals_logged": "epochs_logged", "evals_saved": "epochs_saved"})
    own = stopping.settings()
    rows = [
        {k: python(v, nan_is_none=True) for k, v in row.items()} for row in swept_table.to_dict("records")
    ]
    for row in rows:
        row["current"] = all(row[k] == v for k, v in own.items())
    summary = SweepSummary(rows=rows, recommended=swept.recommended, tolerance=swept.tolerance)
    problems = frame.attrs.get("problems", [])
    warnings = [str(p.get("message", p)) for p in problems] + warnings
    if folder is not None:
        attach_damage(records, problems, folder)
    if name == "transformers" and isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        trainer_state_notes(Path(source), records, stopping)  # the Trainer's own callback settings
    if root is not None:
        found, notes = checkpoint_summaries(
            root,
            frame,
            runs=[r.run for r in records],
            rules=rules,
            min_age=checkpoint_min_age,
            # A Keras run's restored epoch names its checkpoint; another framework's evaluation
            # index does not (its checkpoints are named by epoch and step): no restored pin there.
            restored={r.run: r.restored_epoch for r in records} if name == "keras" else {},
            elsewhere=elsewhere,
            note_skipped=first,
            listed=reads.checkpoints(root),
            ended=reads.ended(root),
        )
        for record in records:
            record.checkpoints = found.get(record.run)
        warnings += notes
    if folder is not None:  # runs trained with runlens.keras: hparams, live vs replayed
        recorded = reads.hparams(Path(folder))
        warnings += attach_live(
            records, folder, frame, manifests, policies, initial_lr=initial_lr, recorded=recorded
        )
    settings = Settings(
        monitor=monitor,
        direction=stopping.direction,
        early_stopping=stopping.described(),
        reduce_lr=None if asked_lr is None else asked_lr.described(),
        lr_replay={"initial_lr": initial_lr, "lr_timing": lr_timing},
        sweep={**grid, "tolerance": tolerance},
        checkpoints={
            "looked": root is not None,
            "keep_best": keep_best,
            "keep_last": keep_last,
            "min_age": float(checkpoint_min_age),
        },
        framework=name,
    )
    return Report(
        source=label,
        settings=settings,
        runs=records,
        sweep=summary,
        totals=build_totals(records, summary),
        overview=build_overview(records, summary),
        warnings=warnings,
        runlens_version=__version__,
    )


def _policy(
    option: str, given: Any, kind: str, frame: pd.DataFrame, label: str, monitor: str | None = None
) -> Any:
    """The policy ``given`` as an object, or built from a dict of its framework's arguments
    (``monitor`` defaulting to ``monitor``, else to the frame's default monitor)."""
    if given is None:
        given = DEFAULT_EARLY_STOPPING
    if not isinstance(given, Mapping):
        check_kind(option, given, kind, f"a runlens.{_CLASSES[option].split('.')[1]}")  # type: ignore[arg-type]
        check_frame(frame, column=given.metric or monitor)
        return given
    args = dict(given)
    if "monitor" not in args:
        args["monitor"] = monitor or _default_monitor(frame, label)
    check_frame(frame, column=args["monitor"])
    try:
        return policy_class(_CLASSES[option])(**args)
    except TypeError as exc:
        raise RunlensError(f"{option}={dict(given)!r}: {exc}") from None


def _default_monitor(frame: pd.DataFrame, label: str) -> str:
    """val_loss when any run logged it, else loss (else whichever of the two is a column)."""
    for logged_only in (True, False):  # a column with values first, then one with none at all
        for candidate in ("val_loss", "loss"):
            if candidate in frame.columns and (frame[candidate].notna().any() or not logged_only):
                return candidate
    metrics = ", ".join(str(c) for c in frame.columns if c not in _KEYS) or "none"
    raise RunlensError(
        f"{label}: no run logged val_loss or loss; pass a monitor (--monitor), one of: {metrics}"
    )


def _grid(sweep: Mapping[str, Any] | None, stopping: Any) -> tuple[dict[str, list], float]:
    """The sweep's grid with the report's own value of each setting added, and its tolerance."""
    options = dict(sweep or {})
    tolerance = finite_number("sweep tolerance", options.pop("tolerance", 0.0))
    given = options or dict(getattr(stopping, "sweep_grid", {}))
    own = stopping.settings()
    grid = {}
    for key, value in given.items():
        name = setting_name(stopping, key)  # the CLI's "patience" is HF's early_stopping_patience
        items = list(value) if isinstance(value, Iterable) and not isinstance(value, str) else [value]
        if not items:
            raise RunlensError(f"sweep {name} needs at least one value (a sweep grid cannot be empty)")
        if name not in own:
            raise RunlensError(f"sweep: {type(stopping).__name__} has no setting {name!r}")
        try:
            values = [stopping.replace(**{name: v}).settings()[name] for v in items]
        except RunlensError as exc:
            raise RunlensError(f"sweep {name}: {exc}") from None
        grid[name] = _ordered([*values, own[name]])
    return grid, tolerance


def _ordered(values: list) -> list:
    """Without repeats; numbers by size (min_delta by its size, whatever its sign)."""
    unique = list(dict.fromkeys(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in unique):
        return sorted(unique, key=lambda v: (abs(v), v))
    return unique
