"""The report in words: the sentences and table cells the text, Markdown and HTML renderers share.

Everything here is plain text for humans: epochs 1-based (as Keras prints "Epoch 7"), numbers
rounded for reading. Renderers only lay these out (and escape them for their format).

>>> epochs_text([4, 5, 29])
'5, 6 and 30'
>>> duration(3725.0), nbytes(812032)
('1 h 02 min', '793.0 KiB')
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from runlens.report.bundle import bundle_lines
from runlens.report.model import CheckpointSummary, LearningRate, Report, RunRecord, Settings, SweepSummary
from runlens.units import nbytes

Lines = list[tuple[str, str]]

EPOCHS_NOTE = 'Epochs are 1-based, as Keras prints them ("Epoch 7/30"); JSON output keeps them 0-based.'


def epoch(e: int | None) -> str:
    """A 0-based epoch as Keras prints it (1-based); "-" for None."""
    return "-" if e is None else str(e + 1)


def epochs_text(epochs: Sequence[int | None]) -> str:
    """0-based epochs as a 1-based list in words (unknown epochs as "?")."""
    items = ["?" if e is None else str(e + 1) for e in epochs]
    if len(items) <= 1:
        return "".join(items) or "none"
    return f"{', '.join(items[:-1])} and {items[-1]}"


def number(value: float | None) -> str:
    """A metric value to 6 significant digits ("n/a" for None)."""
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "NaN"
    return f"{value:.6g}"


def percent(fraction: float | None) -> str:
    return "n/a" if fraction is None or math.isnan(fraction) else f"{100 * fraction:.1f}%"


def duration(seconds: float | None) -> str:
    """Seconds for reading: "3.61 s", "4 min 05 s", "1 h 02 min" ("n/a" for None/NaN)."""
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def policy_text(s: Settings) -> str:
    baseline = "" if s.baseline is None else f", baseline={s.baseline:g}"
    start = f", start_from_epoch={s.start_from_epoch}" if s.start_from_epoch else ""
    return (
        f"EarlyStopping(monitor={s.monitor} ({s.direction}), patience={s.patience}, min_delta={s.min_delta:g}"
        f"{baseline}{start}, restore_best_weights={s.restore_best_weights}, {s.semantics})"
    )


def lr_policy_text(s: Settings) -> str:
    timing = "used during the epoch" if s.lr_timing == "used" else "after the epoch's decision"
    return (
        f"ReduceLROnPlateau(monitor={s.monitor}, factor={s.lr_factor:g}, patience={s.lr_patience}, "
        f"min_delta={s.lr_min_delta:g}, cooldown={s.lr_cooldown}, min_lr={s.lr_min_lr:g}); "
        f"the logged rate is taken as the rate {timing} (lr_timing={s.lr_timing})"
    )


def header_lines(report: Report) -> Lines:
    t = report.totals
    terms = (
        "saved = logged epochs after the stop; regret = how much worse the value fit returns is than "
        "the best the run logged (0: nothing lost)"
    )
    return [
        ("source", report.source),
        ("runs", f"{t.runs} run(s), {t.epochs_logged} epochs logged"),
        ("policy", policy_text(report.settings)),
        ("learning rate", lr_policy_text(report.settings)),
        ("terms", terms),
    ]


def run_lines(record: RunRecord, settings: Settings) -> Lines:
    """Label/text pairs saying everything the report knows about one run."""
    m = settings.monitor
    how = "restore_best_weights" if settings.restore_best_weights else "the last trained epoch"
    lines = [
        ("epochs logged", _logged_text(record, m)),
        (f"best {m}", _best_text(record)),
        ("EarlyStopping", _stop_text(record, settings.patience)),
        (
            "fit returns",
            f"the weights of epoch {epoch(record.restored_epoch)} ({how}), {m} "
            f"{number(record.restored_value)}",
        ),
        ("saved", _saved_text(record)),
        ("regret", _regret_text(record, m)),
    ]
    if record.learning_rate is not None:
        lines += lr_lines(record.learning_rate)
    if record.checkpoints is not None:
        lines.append(("checkpoints", checkpoint_text(record.checkpoints, settings, record.restored_epoch)))
    lines += bundle_lines(record)  # hparams, runlens.json's live decisions vs the replay
    return lines + [("note", note) for note in record.notes]


def _logged_text(record: RunRecord, monitor: str) -> str:
    span = f"epochs 1-{record.last_epoch + 1}"
    missing = record.last_epoch + 1 - record.epochs_logged
    text = f"{record.epochs_logged} ({span})"
    if missing:
        text = f"{record.epochs_logged} of {span} ({missing} without a row)"
    if record.monitor_logged < record.epochs_logged:
        text += f"; {monitor} at {record.monitor_logged} of them"
    return text


def _best_text(record: RunRecord) -> str:
    if record.run_best_epoch is None:
        return "only NaN logged" if record.monitor_logged else "none logged"
    return f"{number(record.run_best_value)} at epoch {epoch(record.run_best_epoch)}"


def _stop_text(record: RunRecord, patience: int) -> str:
    if record.stopped_epoch is None:
        return f"does not stop within the {record.epochs_logged} logged epochs (patience {patience})"
    return (
        f"stops after epoch {epoch(record.stopped_epoch)} (patience {patience}; "
        f"best so far: epoch {epoch(record.best_epoch)})"
    )


def _saved_text(record: RunRecord) -> str:
    if not record.epochs_saved:
        return "nothing: the policy trains every logged epoch"
    time = duration(record.time_saved_s)
    if record.wall_time_s:
        time += f" of {duration(record.wall_time_s)}"
    return f"{record.epochs_saved} epochs ({percent(record.fraction_saved)}), {time} wall-clock"


def _regret_text(record: RunRecord, monitor: str) -> str:
    if record.regret is None:
        return f"n/a (the restored epoch logged no {monitor}, or the run no usable value)"
    if record.regret == 0:
        return f"0 (the restored {monitor} is the run's best)"
    return (
        f"{number(record.regret)}: the restored {monitor} {number(record.restored_value)} vs the run's best "
        f"{number(record.run_best_value)} at epoch {epoch(record.run_best_epoch)}"
    )


def lr_lines(lr: LearningRate) -> Lines:
    """The learning-rate lines: logged, replayed, and where the two schedules part."""
    if lr.note is not None:
        return [("learning rate", lr.note)]
    lines = []
    if lr.column is None:
        lines.append(("LR logged", "no learning rate logged"))
    elif lr.logged_changes_at:
        changes = epochs_text(lr.logged_changes_at)
        first, final = number(lr.logged_first), number(lr.logged_final)
        lines.append(("LR logged", f"{lr.column}: {first} -> {final}, changed after epoch(s) {changes}"))
    else:
        lines.append(("LR logged", f"{lr.column}: constant {number(lr.logged_first)}"))
    reduced = "no reduction"
    if lr.replayed_reduced_at:
        reduced = f"reduced after epoch(s) {epochs_text(lr.replayed_reduced_at)}"
    trained = f"over the {lr.epochs_replayed} epochs EarlyStopping trains"
    lines.append(("LR replayed", f"{trained}: {reduced}, ends at {number(lr.replayed_final)}"))
    if lr.column is None:
        return lines
    if lr.diverges_at is None:
        versus = f"the replayed schedule matches the logged one over those {lr.epochs_replayed} epochs"
    else:
        e = epoch(lr.diverges_at)
        versus = (
            f"departs from the logged schedule at epoch {e}: the metrics from epoch {e} on were logged under "
            "another rate than the replay would have used, so decisions read from them are counterfactual"
        )
    return lines + [("LR replay vs log", versus)]


def checkpoint_text(c: CheckpointSummary, settings: Settings, restored: int | None) -> str:
    """What a run's checkpoints are and what the keep rules would do with them."""
    health = "all valid" if not c.invalid else f"{c.valid} valid, {c.invalid} invalid"
    found = f"{c.files} in {c.folder}/ ({health}, {nbytes(c.bytes_total)})"
    if c.note is not None:
        return f"{found}; no plan: {c.note}"
    rules = f"best {settings.keep_best} by {settings.monitor}"
    if settings.keep_last:
        rules += f" + last {settings.keep_last}"
    parts = [
        found,
        f"{rules} keep {c.keep} (epochs {epochs_text(c.kept_epochs)}), delete {c.drop}, free {nbytes(c.bytes_to_free)}",
    ]
    if c.kept_unranked:
        parts.append(f"{c.kept_unranked} kept for lack of a {settings.monitor} value to rank by")
    if c.fresh:
        parts.append(
            f"{c.fresh} modified within {settings.checkpoint_min_age:g} s kept (may still be written)"
        )
    if c.restored is not None and restored is not None:
        fate = {"kept": "is kept", "dropped": "would be DELETED", "none": "has no checkpoint"}[c.restored]
        parts.append(f"the restored epoch {epoch(restored)} {fate}")
    return "; ".join(parts)


SWEEP_HEADERS = [
    "patience",
    "min_delta",
    "epochs saved",
    "of epochs",
    "time saved",
    "runs stopped",
    "runs lost",
    "mean regret",
    "max regret",
    "marks",
]


def sweep_cells(sweep: SweepSummary) -> list[list[str]]:
    """One row of strings per setting, in :data:`SWEEP_HEADERS` order."""
    rows = []
    for r in sweep.rows:
        marks = ", ".join(name for name in ("frontier", "recommended", "current") if r[name])
        rows.append(
            [
                str(r["patience"]),
                f"{r['min_delta']:g}",
                str(r["epochs_saved"]),
                percent(r["fraction_saved"]),
                duration(r["time_saved_s"]),
                str(r["runs_stopped"]),
                str(r["runs_lost"]),
                number(r["mean_regret"]),
                number(r["max_regret"]),
                marks,
            ]
        )
    return rows


def sweep_lines(report: Report) -> Lines:
    """The frontier and the recommendation in words."""
    sweep = report.sweep
    by_point: dict[tuple[int, int], list[dict]] = {}
    for r in sweep.rows:
        if r["frontier"]:
            by_point.setdefault((r["epochs_saved"], r["runs_lost"]), []).append(r)
    points = "; ".join(
        f"{_settings(rows)}: {saved} saved, {lost} lost" for (saved, lost), rows in by_point.items()
    )
    lines = [("frontier", f"settings no other beats on both epochs saved and runs lost: {points}")]
    best = next((r for r in sweep.rows if r["recommended"]), None)
    if best is None:
        text = (
            f"none: every setting loses more than the tolerance ({sweep.tolerance:g}) on some run; "
            "raise --tolerance to accept some regret"
        )
    else:
        lost = f"{best['runs_lost']} run(s) lose" if best["runs_lost"] else "no run loses"
        text = (
            f"{_setting(best)}: saves {best['epochs_saved']} of {best['epochs_logged']} epochs "
            f"({percent(best['fraction_saved'])}), {duration(best['time_saved_s'])}; {lost} "
            f"(max regret {number(best['max_regret'])} <= tolerance {sweep.tolerance:g})"
        )
    return lines + [("recommended", text)]


def _settings(rows: list[dict]) -> str:
    """Settings in few words: ``patience=0,1 with min_delta=0,0.01 and patience=3``."""
    by_delta: dict[float, list[str]] = {}
    for r in rows:
        by_delta.setdefault(r["min_delta"], []).append(str(r["patience"]))
    by_patiences: dict[str, list[str]] = {}
    for delta, patiences in by_delta.items():
        by_patiences.setdefault(",".join(patiences), []).append(f"{delta:g}")
    parts = []
    for patiences, deltas in by_patiences.items():
        parts.append(
            f"patience={patiences}" + ("" if deltas == ["0"] else f" with min_delta={','.join(deltas)}")
        )
    return " and ".join(parts)


def _setting(row: dict) -> str:
    delta = f", min_delta={row['min_delta']:g}" if row["min_delta"] else ""
    return f"patience={row['patience']}{delta}"


def totals_lines(report: Report) -> Lines:
    """What the whole logdir logged and what could have been saved."""
    t, s = report.totals, report.settings
    share = f" ({percent(t.time_saved_s / t.wall_time_s)})" if t.wall_time_s else ""
    policy = (
        f"saves {t.epochs_saved} of {t.epochs_logged} epochs ({percent(t.fraction_saved)}), "
        f"{duration(t.time_saved_s)}{share}; {t.runs_stopped} run(s) stopped early, {t.runs_lost} with regret > 0"
    )
    setting = _setting({"patience": s.patience, "min_delta": s.min_delta})
    lines = [
        (
            "logged",
            f"{t.runs} run(s), {t.epochs_logged} epochs, {duration(t.wall_time_s)} wall-clock "
            "(first to last epoch end)",
        ),
        (f"policy ({setting})", policy),
    ]
    best = next((r for r in report.sweep.rows if r["recommended"]), None)
    if best is not None:
        saved = f"saves {t.recommended_epochs_saved} epochs ({percent(t.recommended_fraction_saved)}), "
        lines.append((f"recommended ({_setting(best)})", saved + duration(t.recommended_time_saved_s)))
    if t.checkpoint_files is not None:
        freed = f"the keep rules would free {nbytes(t.checkpoint_bytes_to_free)}"
        lines.append(("checkpoints", f"{t.checkpoint_files} files, {nbytes(t.checkpoint_bytes)}; {freed}"))
    return lines


def run_headers(settings: Settings) -> list[str]:
    """Columns of the one-row-per-run overview (Markdown and HTML)."""
    return [
        "run",
        "epochs",
        "best epoch",
        f"best {settings.monitor}",
        "stops after",
        "restores",
        "epochs saved",
        "time saved",
        "regret",
        "LR replay",
        "checkpoints",
    ]


def run_cells(record: RunRecord) -> list[str]:
    """One overview row, in :func:`run_headers` order."""
    lr = record.learning_rate
    if lr is None or lr.note is not None:
        lr_cell = "not replayed"
    elif lr.column is None:
        lr_cell = f"{len(lr.replayed_reduced_at)} reduction(s), no log to compare"
    elif lr.diverges_at is None:
        lr_cell = "matches the log"
    else:
        lr_cell = f"departs at epoch {epoch(lr.diverges_at)}"
    c = record.checkpoints
    if c is None:
        ckpt = "-"
    elif c.note is not None:
        ckpt = f"{c.files} files, no plan"
    else:
        ckpt = f"{c.files} files, keep {c.keep}, free {nbytes(c.bytes_to_free)}"
    stops = "never" if record.stopped_epoch is None else epoch(record.stopped_epoch)
    return [
        record.run,
        str(record.epochs_logged),
        epoch(record.run_best_epoch),
        number(record.run_best_value),
        stops,
        epoch(record.restored_epoch),
        f"{record.epochs_saved} ({percent(record.fraction_saved)})",
        duration(record.time_saved_s),
        number(record.regret),
        lr_cell,
        ckpt,
    ]
