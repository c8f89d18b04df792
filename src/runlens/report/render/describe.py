"""The report in words: the sentences and table cells the text, Markdown and HTML renderers share.

Everything here is plain text for humans: epochs 1-based (as Keras prints "Epoch 7"), numbers
rounded for reading (:mod:`~runlens.report.render.words`); the sweep and totals are in
:mod:`~runlens.report.render.describe_sweep`. Renderers only lay these out (and escape them).

>>> _decisions_text({"stopped_epoch": 11, "best_epoch": 6, "restored_epoch": 6})
'stopped after epoch 12, best epoch 7, weights of epoch 7 at the end'
"""

from __future__ import annotations

from typing import Any

from runlens.report.model import WARNING, CheckpointSummary, LearningRate, Live, Report, RunReport, Settings
from runlens.report.render.describe_sweep import (
    grid_keys,
    sweep_cells,
    sweep_headers,
    sweep_lines,
    sweep_title,
    totals_lines,
)
from runlens.report.render.words import (
    EPOCHS_NOTE,
    Lines,
    duration,
    epoch,
    epochs_text,
    nbytes,
    number,
    percent,
    policy_name,
    policy_text,
)

__all__ = [
    "EPOCHS_NOTE",
    "WARNING",
    "Lines",
    "grid_keys",
    "header_lines",
    "run_cells",
    "run_headers",
    "run_lines",
    "sweep_cells",
    "sweep_headers",
    "sweep_lines",
    "sweep_title",
    "totals_lines",
]

_TIMING = {"used": "the rate used during the epoch", "after": "the rate after the epoch's decision"}


def header_lines(report: Report) -> Lines:
    s, t = report.settings, report.totals
    terms = (
        "saved = logged epochs after the stop; regret = how much worse the value fit returns is than "
        "the best the run logged (0: nothing lost)"
    )
    return [
        ("source", report.source),
        ("runs", f"{t.runs} run(s), {t.epochs_logged} epochs logged"),
        ("policy", policy_text(s.early_stopping, direction=s.direction)),
        ("learning rate", _lr_header(s)),
        ("terms", terms),
    ]


def _lr_header(s: Settings) -> str:
    timing = s.lr_replay["lr_timing"]
    initial = s.lr_replay["initial_lr"]
    start = "each run's first logged rate" if initial is None else f"initial_lr={initial:g}"
    how = f"starting from {start}; the logged rate is taken as {_TIMING[timing]} (lr_timing={timing})"
    if s.reduce_lr is None:
        return (
            "ReduceLROnPlateau is replayed only on runs whose runlens.json says they used it, with their "
            f"own settings (--reduce-lr or --lr-* replays one on every run), {how}"
        )
    return f"{policy_text(s.reduce_lr)} replayed on every run, {how}"


def run_lines(record: RunReport, settings: Settings) -> Lines:
    """Label/text pairs saying everything the report knows about one run."""
    m, es = settings.monitor, settings.early_stopping
    how = "restore_best_weights" if es.get("restore_best_weights") else "the last trained epoch"
    lines = [
        ("epochs logged", _logged_text(record, m)),
        (f"best {m}", _best_text(record)),
        (policy_name(es), _stop_text(record, es)),
        (
            "fit returns",
            f"the weights of epoch {epoch(record.restored_epoch)} ({how}), {m} "
            f"{number(record.restored_value)}",
        ),
        ("saved", _saved_text(record)),
        ("regret", _regret_text(record, m)),
    ]
    if record.learning_rate is not None:
        lines += lr_lines(record.learning_rate, policy_name(es))
    if record.checkpoints is not None:
        lines.append(("checkpoints", checkpoint_text(record.checkpoints, settings, record.restored_epoch)))
    lines += hparams_lines(record)
    if record.live is not None:
        lines += live_lines(record.live)
    lines += [("damaged file", str(problem["message"])) for problem in record.damaged]
    return lines + [("note", note) for note in record.notes]


def _logged_text(record: RunReport, monitor: str) -> str:
    span = f"epochs 1-{record.last_epoch + 1}"
    missing = record.last_epoch + 1 - record.epochs_logged
    text = f"{record.epochs_logged} ({span})"
    if missing:
        text = f"{record.epochs_logged} of {span} ({missing} without a row)"
    if record.monitor_logged < record.epochs_logged:
        text += f"; {monitor} at {record.monitor_logged} of them"
    return text


def _best_text(record: RunReport) -> str:
    if record.run_best_epoch is None:
        return "only NaN logged" if record.monitor_logged else "none logged"
    return f"{number(record.run_best_value)} at epoch {epoch(record.run_best_epoch)}"


def _stop_text(record: RunReport, es: dict[str, Any]) -> str:
    patience = es.get("patience")
    if record.stopped_epoch is None:
        within = f"does not stop within the {record.epochs_logged} logged epochs"
        return within if patience is None else f"{within} (patience {patience})"
    said = "" if patience is None else f"patience {patience}; "
    return f"stops after epoch {epoch(record.stopped_epoch)} ({said}best so far: epoch {epoch(record.best_epoch)})"


def _saved_text(record: RunReport) -> str:
    if not record.epochs_saved:
        return "nothing: the policy trains every logged epoch"
    time = duration(record.time_saved_s)
    if record.wall_time_s:
        time += f" of {duration(record.wall_time_s)}"
    return f"{record.epochs_saved} epochs ({percent(record.fraction_saved)}), {time} wall-clock"


def _regret_text(record: RunReport, monitor: str) -> str:
    if record.regret is None:
        return f"n/a (the restored epoch logged no {monitor}, or the run no usable value)"
    if record.regret == 0:
        return f"0 (the restored {monitor} is the run's best)"
    return (
        f"{number(record.regret)}: the restored {monitor} {number(record.restored_value)} vs the run's best "
        f"{number(record.run_best_value)} at epoch {epoch(record.run_best_epoch)}"
    )


def lr_lines(lr: LearningRate, stopper: str = "EarlyStopping") -> Lines:
    """The learning-rate lines: what was logged and, where there is a replay, the replay beside
    it. A run without a replay gets one line, only when its logged rate changed."""
    logged = _logged_lr(lr)
    if lr.policy is None:
        return [("LR logged", logged)] if lr.logged_changes_at else []
    if lr.note is not None:
        return [("LR logged", logged), ("LR replay", f"{policy_text(lr.policy)}: none, {lr.note}")]
    own = lr.settings_from == "runlens.json"
    origin = "the run's own settings (runlens.json)" if own else "the settings the report was given"
    reduced = "no reduction"
    if lr.replayed_reduced_at:
        reduced = f"reduced after epoch(s) {epochs_text(lr.replayed_reduced_at)}"
    lines = [
        ("LR logged", logged),
        (
            "LR replayed",
            f"{policy_text(lr.policy)}, {origin}, over the {lr.epochs_replayed} epochs {stopper} trains: "
            f"{reduced}, ends at {number(lr.replayed_final)}",
        ),
    ]
    if lr.column is None:
        return lines
    if lr.diverges_at is None:
        versus = f"the replay matches the logged schedule over those {lr.epochs_replayed} epochs"
    else:
        e = epoch(lr.diverges_at)
        cause = (
            "these are the run's own settings: check --lr-timing (the callback order) and the starting rate; "
            if own
            else ""
        )
        versus = (
            f"departs from the logged schedule at epoch {e}: {cause}from epoch {e} on the run trained at "
            "another rate than this replay sets, so what the replay decides from there on is read from "
            "metrics of a schedule it would not have produced (counterfactual)"
        )
    return lines + [("LR replay vs log", versus)]


def _logged_lr(lr: LearningRate) -> str:
    if lr.column is None:
        return "no learning rate logged"
    first, final = number(lr.logged_first), number(lr.logged_final)
    if lr.logged_changes_at:
        return f"{lr.column}: {first} -> {final}, changed after epoch(s) {epochs_text(lr.logged_changes_at)}"
    return f"{lr.column}: constant {first}"


def checkpoint_text(c: CheckpointSummary, settings: Settings, restored: int | None) -> str:
    """What a run's checkpoints are and what the keep rules would do with them."""
    health = "all valid" if not c.invalid else f"{c.valid} valid, {c.invalid} invalid"
    found = f"{c.files} in {c.folder}/ ({health}, {nbytes(c.bytes_total)})"
    if c.note is not None:
        return f"{found}; no plan: {c.note}"
    plan = settings.checkpoints
    rules = f"best {plan['keep_best']} by {settings.monitor}"
    if plan["keep_last"]:
        rules += f" + last {plan['keep_last']}"
    parts = [
        found,
        f"{rules} keep {c.keep} (epochs {epochs_text(c.kept_epochs)}), delete {c.drop}, free {nbytes(c.bytes_to_free)}",
    ]
    if c.kept_unranked:
        parts.append(f"{c.kept_unranked} kept for lack of a {settings.monitor} value to rank by")
    if c.fresh:
        parts.append(f"{c.fresh} modified within {plan['min_age']:g} s kept (may still be written)")
    if c.restored is not None and restored is not None:
        fate = {"kept": "is kept", "dropped": "would be DELETED", "none": "has no checkpoint"}[c.restored]
        parts.append(f"the restored epoch {epoch(restored)} {fate}")
    return "; ".join(parts)


def hparams_lines(record: RunReport) -> Lines:
    if not record.hparams:
        return []
    return [("hparams", ", ".join(f"{h['name']}={_value_text(h['value'])}" for h in record.hparams))]


def live_lines(live: Live) -> Lines:
    """A run's runlens.json: how training ended, its callbacks' decisions beside the replay of the
    same settings, and a WARNING line per disagreement."""
    status = f"{_status_text(live)}; {live.attempts} attempt(s), {live.epochs_recorded} epochs recorded"
    lines = [("runlens.json", status)]
    for label, decisions in (("live stopping", live.early_stopping), ("live LR", live.reduce_lr)):
        if decisions is None:
            continue
        name = decisions.policy.split("(")[0]
        same = not any(d.startswith(f"{name} ") for d in live.disagreements)
        versus = (
            "the replay of the same settings agrees"
            if same
            else f"the replay of the same settings: {_decisions_text(decisions.replayed)}"
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


def run_cells(record: RunReport) -> list[str]:
    """One overview row, in :func:`run_headers` order."""
    lr = record.learning_rate
    if lr is None or lr.policy is None or lr.note is not None:
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
