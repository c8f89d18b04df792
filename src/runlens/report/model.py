"""The report's data: plain dataclasses that every renderer (text, Markdown, JSON, HTML) reads.

Epochs are 0-based here, as everywhere in runlens' data; renderers for humans add 1. Values are
Python floats (NaN = a logged NaN) or None (nothing logged / not defined). Each record is a
dataclass, so a new field shows up in :meth:`Report.to_dict` (and the JSON) on its own; the
human-facing renderers show the fields they know. :mod:`runlens.report.build` fills them in,
:mod:`runlens.report.render` shows them; this module imports neither at load time (a
report's :meth:`Report.runs_frame` and its notebook view, :meth:`Report._repr_html_`, call them).

>>> report = runlens.build_report("sample_logs")          # doctest: +SKIP
>>> [(r.run, r.stopped_epoch) for r in report.runs]       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "runlens.report/2"
WARNING = "WARNING"  # the label of a live-vs-replay disagreement (a run line and a report warning)


@dataclass(frozen=True)
class Settings:
    """What the report was built with, each policy's settings nested under its name.

    Attributes:
        monitor, direction: the metric the report is about (the stopping policy's) and which way
            it improves (what ``mode`` resolved to).
        early_stopping: the stopping policy: ``{"class": "keras.EarlyStopping", **settings()}``.
        reduce_lr: the learning-rate policy the user asked to replay on every run, the same way;
            None: only runs known to have used one (their ``runlens.json``) get an LR replay, with
            their own settings.
        lr_replay: ``initial_lr`` (None: each run's first logged rate) and ``lr_timing``.
        sweep: the grid tried (setting name -> values) and ``tolerance``.
        checkpoints: ``looked`` (bool), ``keep_best``, ``keep_last``, ``min_age`` (seconds).
        framework: which framework's runs the report is about (``keras``, ``lightning``,
            ``transformers``, ``generic``); for all but Keras the report's 0-based "epochs" are
            evaluations (a Lightning validation check, an HF evaluation), each run's ``steps`` and
            ``epochs`` say where they were logged.
    """

    monitor: str
    direction: str
    early_stopping: dict[str, Any]
    reduce_lr: dict[str, Any] | None
    lr_replay: dict[str, Any]
    sweep: dict[str, Any]
    checkpoints: dict[str, Any]
    framework: str = "keras"


@dataclass
class LearningRate:
    """A run's learning rate: what was logged, and the replay of a plateau policy beside it.

    Attributes:
        column: the logged rate's column (``learning_rate``, or ``lr`` as tf-keras 2.x logs it),
            None when the run logged none.
        logged_first: the first logged rate.
        logged_changes_at: epochs at whose end the logged rate changed (per ``lr_timing``).
        logged_final: the last logged rate.
        policy: the replayed policy (``{"class": ..., **settings()}``); None: no replay.
        settings_from: ``"report"`` (the settings the report was asked to replay) or
            ``"runlens.json"`` (the run's own ReduceLROnPlateau, as its manifest records it).
        initial: the rate the replay starts from (the first logged one unless given).
        replayed_reduced_at: epochs at whose end the replay reduces the rate.
        replayed_final: the rate after the replay's last decision.
        epochs_replayed: how many epochs the replay covers (the stopping policy's ``epochs_trained``).
        diverges_at: first epoch the replay trains with another rate than the logged one; the
            metrics from there on were logged under a rate the replay would not have used, so
            decisions read from them are counterfactual. None: the schedules agree.
        note: why a replay that was asked for could not be made (e.g. no rate logged), else None.
    """

    column: str | None
    logged_first: float | None = None
    logged_changes_at: list[int] = field(default_factory=list)
    logged_final: float | None = None
    policy: dict[str, Any] | None = None
    settings_from: str | None = None
    initial: float | None = None
    replayed_reduced_at: list[int] = field(default_factory=list)
    replayed_final: float | None = None
    epochs_replayed: int = 0
    diverges_at: int | None = None
    note: str | None = None


@dataclass
class CheckpointSummary:
    """A run's checkpoints and what ``KeepBestK(keep_best, monitor)`` + ``KeepLastN(keep_last)``
    would keep (a dry run of :func:`runlens.plan_prune`; nothing is touched).

    ``kept_epochs`` are 0-based (None for a kept file whose epoch is unknown); ``restored``
    says what happens to the checkpoint of the epoch EarlyStopping restores: ``"kept"``,
    ``"dropped"`` or ``"none"`` (no checkpoint of that epoch). ``note`` holds the reason when the
    plan could not be made (the counts are then those of the files found).
    """

    folder: str
    files: int
    valid: int
    invalid: int
    keep: int | None = None
    drop: int | None = None
    bytes_total: int = 0
    bytes_to_free: int | None = None
    kept_epochs: list[int | None] = field(default_factory=list)
    kept_unranked: int = 0
    fresh: int = 0
    restored: str | None = None
    note: str | None = None


@dataclass
class PolicyDecisions:
    """One policy's decisions: ``live`` (runlens.json) and ``replayed`` (same settings, logged
    epochs). Stopping: ``stopped_epoch``, ``best_epoch``, ``restored_epoch``; learning rate:
    ``reduced_at`` (epochs) and ``rates`` (the rate after each reduction)."""

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


@dataclass
class RunReport:
    """Everything the report says about one run (epochs 0-based).

    ``run_best_*`` is the best monitored value over the whole logged run; ``best_*`` the policy's
    best when it stops; ``stopped_epoch`` None means the policy never stops within the logged
    epochs. ``wall_time_s`` spans the ends of the first and last logged epochs (``time_saved_s`` is
    None when the wall times are unknown). ``curves`` maps a metric name to its per-epoch values
    (index = epoch, None = not logged), plus ``learning_rate_replayed`` when the rate was replayed.
    ``hparams`` and ``live`` come from the run folder (:mod:`runlens.report.build.live`).
    """

    run: str
    epochs_logged: int
    last_epoch: int
    monitor_logged: int
    run_best_epoch: int | None
    run_best_value: float | None
    epochs_trained: int
    stopped_epoch: int | None
    best_epoch: int | None
    best_value: float | None
    restored_epoch: int | None
    restored_value: float | None
    epochs_saved: int
    fraction_saved: float
    wall_time_s: float | None
    time_saved_s: float | None
    regret: float | None
    learning_rate: LearningRate | None = None
    checkpoints: CheckpointSummary | None = None
    curves: dict[str, list[float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    hparams: list[dict[str, Any]] = field(default_factory=list)  # {name, value}
    live: Live | None = None  # runlens.json's decisions vs the replay
    framework: str = "keras"
    # Evaluation frames (not Keras): the step and epoch each 0-based evaluation was logged at
    # (None: unknown; HF epochs are fractional), so renderers can name an evaluation as that
    # framework's users know it. Empty for Keras, whose evaluations are its epochs.
    steps: list[int | None] = field(default_factory=list)
    epochs: list[float | None] = field(default_factory=list)
    damaged: list[dict[str, Any]] = field(default_factory=list)  # its files' problems: path, kind, ...


@dataclass
class SweepSummary:
    """:func:`runlens.sweep` over the report's grid: one row per setting (the sweep table's
    columns plus ``current``: the report's own setting), and the recommended setting (Keras'
    keyword arguments, as ``runlens.sweep(...).recommended``) or None."""

    rows: list[dict[str, Any]]
    recommended: dict[str, Any] | None
    tolerance: float


@dataclass
class Totals:
    """Across all runs: what the report's policy (and the recommended setting) would have saved.

    ``wall_time_s`` sums each run's span of logged epoch ends; ``checkpoint_*`` sum the runs whose
    checkpoint plan could be made (None when no checkpoints were found).
    """

    runs: int
    epochs_logged: int
    epochs_saved: int
    fraction_saved: float
    wall_time_s: float | None
    time_saved_s: float
    runs_stopped: int
    runs_lost: int
    recommended_epochs_saved: int | None
    recommended_fraction_saved: float | None
    recommended_time_saved_s: float | None
    checkpoint_files: int | None
    checkpoint_bytes: int | None
    checkpoint_bytes_to_free: int | None


# Why a run is worth a look, in the order the overview lists them: files that could not be read
# whole, its own callbacks disagreeing with the replay, the largest regrets, the most epochs saved.
REASONS = ("damaged", "disagrees", "regret", "saved")


@dataclass
class Histogram:
    """Runs counted by a whole number, in bins of equal width: ``bins`` lists ``{"low": a, "high":
    b, "runs": n}`` (``a..b`` inclusive; 0-based epochs where the number is an epoch), ``none``
    the runs without a number (a stop epoch: the runs the policy never stops)."""

    bins: list[dict[str, int]]
    none: int = 0


@dataclass
class Spotlight:
    """A run worth a look: ``reason`` (one of :data:`REASONS`) and ``value``, what it is about:
    the number of damaged files, of disagreements, the regret, the epochs saved."""

    run: str
    reason: str
    value: float | int


@dataclass
class Overview:
    """The sweep-level picture every format shows before any run: how the report's policy stops
    the runs and what it saves (``stop_epochs``, ``epochs_saved``), the sweep's frontier (its rows
    with ``frontier`` true, by epochs saved: settings no other beats on both epochs saved and
    runs lost), the ``recommended`` and the report's own (``current``) sweep rows, and the runs
    worth a look (grouped by reason, in :data:`REASONS` order, each group ranked). The totals are
    :attr:`Report.totals`. Built by :mod:`runlens.report.build.overview`, which also chooses the
    runs shown in detail (:func:`~runlens.report.build.overview.detail_runs`).
    """

    runs: int
    runs_stopped: int
    stop_epochs: Histogram
    epochs_saved: Histogram
    frontier: list[dict[str, Any]]
    recommended: dict[str, Any] | None
    current: dict[str, Any] | None
    worth_a_look: list[Spotlight]
    damaged_files: int


@dataclass
class Report:
    """The whole report; render it with :func:`runlens.render_report`."""

    source: str
    settings: Settings
    runs: list[RunReport]
    sweep: SweepSummary
    totals: Totals
    overview: Overview
    warnings: list[str] = field(default_factory=list)
    runlens_version: str = ""
    # The runs of the logdir's other frameworks, each framework a report of its own (its policy,
    # sweep and totals); this report is about the Keras runs when there are any.
    parts: list[Report] = field(default_factory=list)

    def run(self, name: str) -> RunReport:
        """The record of run ``name`` (KeyError if there is none)."""
        for record in self.runs:
            if record.run == name:
                return record
        raise KeyError(name)

    def runs_frame(self) -> Any:
        """The runs as a DataFrame, one row per run (see
        :func:`runlens.report.build.overview.runs_frame`).

        >>> runlens.build_report("sample_logs").runs_frame()[["run", "epochs_saved"]]  # doctest: +SKIP
        """
        from runlens.report.build.overview import runs_frame  # the records import no pandas

        return runs_frame(self)

    def _repr_html_(self) -> str:
        """How Jupyter shows a report: the overview and the runs table, no plots
        (:func:`runlens.report.render.notebook.render_notebook`)."""
        from runlens.report.render.notebook import render_notebook

        return render_notebook(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python data (floats may be NaN/inf; :mod:`runlens.report.render.json_format` encodes
        them). Keys are documented in docs/report.md ("JSON") and docs/report-at-scale.md.

        >>> runlens.build_report("sample_logs").to_dict()["schema"]       # doctest: +SKIP
        'runlens.report/2'
        """
        return {
            "schema": SCHEMA,
            "runlens_version": self.runlens_version,
            "source": self.source,
            "epochs": "0-based",
            "settings": dataclasses.asdict(self.settings),
            "overview": dataclasses.asdict(self.overview),
            "runs": [dataclasses.asdict(r) for r in self.runs],
            "sweep": dataclasses.asdict(self.sweep),
            "totals": dataclasses.asdict(self.totals),
            "warnings": list(self.warnings),
            "framework": self.settings.framework,
            "parts": [part.to_dict() for part in self.parts],
        }
