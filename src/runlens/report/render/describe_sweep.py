"""The sweep and the totals in words: the table cells and sentences every renderer shares.

The sweep's setting columns are the grid's (``Settings.sweep``: the stopping policy's settings the
sweep varied, the first one always shown, e.g. ``patience``), so any stopping policy reads right.

>>> setting_text({"patience": 3, "min_delta": 0.0}, ["patience", "min_delta"], varied=set())
'patience=3'
"""

from __future__ import annotations

from typing import Any

from runlens.report.model import Report, SweepSummary
from runlens.report.render.words import Lines, duration, nbytes, number, percent, policy_name

METRIC_HEADERS = [
    "epochs saved",
    "of epochs",
    "time saved",
    "runs stopped",
    "runs lost",
    "mean regret",
    "max regret",
    "marks",
]


def sweep_title(report: Report) -> str:
    """What the sweep section is about: ``EarlyStopping settings across 5 run(s)``."""
    return f"{policy_name(report.settings.early_stopping)} settings across {report.totals.runs} run(s)"


def grid_keys(report: Report) -> list[str]:
    """The settings the sweep tried, in the grid's order."""
    return [k for k in report.settings.sweep if k != "tolerance"]


def varied_keys(report: Report) -> set[str]:
    """The grid's settings that took more than one value."""
    return {k for k in grid_keys(report) if len(report.settings.sweep[k]) > 1}


def sweep_headers(report: Report) -> list[str]:
    return [*grid_keys(report), *METRIC_HEADERS]


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def sweep_cells(report: Report) -> list[list[str]]:
    """One row of strings per setting, in :func:`sweep_headers` order."""
    rows = []
    for r in report.sweep.rows:
        marks = ", ".join(name for name in ("frontier", "recommended", "current") if r[name])
        rows.append(
            [
                *(_value(r[k]) for k in grid_keys(report)),
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


def setting_text(row: dict[str, Any], keys: list[str], *, varied: set[str]) -> str:
    """A setting in few words: the grid's first setting, and the others where they vary or are
    not zero/None (``patience=3, min_delta=0.001``)."""
    shown = [k for i, k in enumerate(keys) if i == 0 or k in varied or row[k] not in (0, 0.0, None, False)]
    return ", ".join(f"{k}={_value(row[k])}" for k in shown)


def _settings(rows: list[dict], keys: list[str], varied: set[str]) -> str:
    """Settings at one point in few words: ``patience=0,1 with min_delta=0.01 and patience=3``."""
    first, others = keys[0], [k for k in keys[1:] if k in varied]
    groups: dict[tuple, list[str]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in others), []).append(_value(r[first]))
    parts = []
    for values, firsts in groups.items():
        rest = ", ".join(f"{k}={_value(v)}" for k, v in zip(others, values))
        parts.append(f"{first}={','.join(firsts)}" + (f" with {rest}" if rest else ""))
    return " and ".join(parts)


def sweep_lines(report: Report) -> Lines:
    """The frontier and the recommendation in words."""
    sweep: SweepSummary = report.sweep
    keys, varied = grid_keys(report), varied_keys(report)
    by_point: dict[tuple[int, int], list[dict]] = {}
    for r in sweep.rows:
        if r["frontier"]:
            by_point.setdefault((r["epochs_saved"], r["runs_lost"]), []).append(r)
    points = "; ".join(
        f"{_settings(rows, keys, varied)}: {saved} saved, {lost} lost"
        for (saved, lost), rows in by_point.items()
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
            f"{setting_text(best, keys, varied=varied)}: saves {best['epochs_saved']} of "
            f"{best['epochs_logged']} epochs ({percent(best['fraction_saved'])}), "
            f"{duration(best['time_saved_s'])}; {lost} "
            f"(max regret {number(best['max_regret'])} <= tolerance {sweep.tolerance:g})"
        )
    return lines + [("recommended", text)]


def totals_lines(report: Report) -> Lines:
    """What the whole logdir logged and what could have been saved."""
    t = report.totals
    keys, varied = grid_keys(report), varied_keys(report)
    share = f" ({percent(t.time_saved_s / t.wall_time_s)})" if t.wall_time_s else ""
    policy = (
        f"saves {t.epochs_saved} of {t.epochs_logged} epochs ({percent(t.fraction_saved)}), "
        f"{duration(t.time_saved_s)}{share}; {t.runs_stopped} run(s) stopped early, {t.runs_lost} with regret > 0"
    )
    setting = setting_text(report.settings.early_stopping, keys, varied=varied)
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
        lines.append(
            (
                f"recommended ({setting_text(best, keys, varied=varied)})",
                saved + duration(t.recommended_time_saved_s),
            )
        )
    if t.checkpoint_files is not None:
        freed = f"the keep rules would free {nbytes(t.checkpoint_bytes_to_free)}"
        lines.append(("checkpoints", f"{t.checkpoint_files} files, {nbytes(t.checkpoint_bytes)}; {freed}"))
    return lines
