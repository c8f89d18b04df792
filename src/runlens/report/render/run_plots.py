"""A detailed run's plot in the HTML report, as inline SVG, one per panel (:mod:`~runlens.report.render.svg_axes`):
the monitor with the run's best, the policy's stop and the weights restored marked; train vs
validation; and the learning rate, logged and replayed, where :func:`draws_learning_rate`.

Epochs on the axes are 1-based, as Keras prints them. Names from the logs are escaped by
:mod:`~runlens.report.render.svg_axes`; run names are not drawn (the section around the plot
carries them).

>>> plot = run_svg(report.runs[0], report.settings, label="val_loss of run a")  # doctest: +SKIP
>>> plot.startswith('<div class="plot"')                                         # doctest: +SKIP
True
"""

from __future__ import annotations

import math

from runlens.report.model import RunReport, Settings
from runlens.report.render.svg_axes import Panel, draw
from runlens.report.render.words import policy_name

WIDTH, HEIGHT = 864, 288  # CSS px: the page's content width in a 900 px window, as the PNG figures


def run_svg(record: RunReport, settings: Settings, *, label: str) -> str:
    """Three panels (the monitor, train vs validation, the learning rate where
    :func:`draws_learning_rate`; else two, wider); ``label``: what a screen reader reads."""
    panels = [_monitor_panel(record, settings), _pair_panel(record, settings.monitor)]
    if draws_learning_rate(record):
        panels.append(_lr_panel(record))
    return draw(panels, width=WIDTH, height=HEIGHT, label=label)


def draws_learning_rate(record: RunReport) -> bool:
    """Whether a run's plot has a learning-rate panel: when the logged rate changed or a replayed
    one is drawn beside it. A rate constant throughout, or none logged, would be a flat line or an
    empty panel, where the HTML report's caption says it in a line.

    >>> draws_learning_rate(report.runs[0])         # doctest: +SKIP
    False
    """
    lr = record.learning_rate
    return lr is not None and (bool(lr.logged_changes_at) or "learning_rate_replayed" in record.curves)


def _epochs(values: list[float | None]) -> tuple[list[int], list[float | None]]:
    """1-based epochs and the values (the panel leaves out what is missing or not finite)."""
    return list(range(1, len(values) + 1)), values


def _monitor_panel(record: RunReport, settings: Settings) -> Panel:
    m, es = settings.monitor, settings.early_stopping
    patience = f" patience {es['patience']}" if "patience" in es else ""
    panel = Panel(f"{policy_name(es)}{patience}", m)
    values = record.curves.get(m, [])
    panel.line(*_epochs(values), color="C0", label=m, markers=True)
    if record.run_best_epoch is not None and record.run_best_value is not None:
        best = record.run_best_epoch + 1
        panel.mark(best, record.run_best_value, shape="star", color="C2", label=f"best (epoch {best})")
    if record.stopped_epoch is not None:
        stop = record.stopped_epoch + 1
        panel.vline(stop, color="C3", dash="--", label=f"stop (after epoch {stop})")
    restored = record.restored_epoch
    if restored is not None and restored < len(values) and values[restored] is not None:
        panel.mark(
            restored + 1, values[restored], shape="ring", color="C3", label=f"restored (epoch {restored + 1})"
        )
    return panel


def _pair_panel(record: RunReport, monitor: str) -> Panel:
    base = monitor.removeprefix("val_")
    panel = Panel("train vs validation", base)
    for i, name in enumerate([base, f"val_{base}"]):
        if name in record.curves:
            panel.line(*_epochs(record.curves[name]), color=f"C{i}", label=name, markers=True)
    return panel


def _lr_panel(record: RunReport) -> Panel:
    """The logged and replayed rates, log-scaled when every one is positive; drawn only where
    :func:`draws_learning_rate` holds (so the run has a learning rate)."""
    lr = record.learning_rate
    logged = record.curves.get(lr.column) if lr.column else None
    replayed = record.curves.get("learning_rate_replayed")
    drawn = [v for curve in (logged, replayed) if curve for v in curve if v is not None and math.isfinite(v)]
    panel = Panel("learning rate", "", log=bool(drawn) and min(drawn) > 0)
    if logged:
        panel.line(*_epochs(logged), color="C0", label="logged", step=True)
    if replayed:
        panel.line(*_epochs(replayed), color="C1", dash="--", label="replayed", step=True)
    if lr.diverges_at is not None:
        departs = lr.diverges_at + 1
        panel.vline(departs, color="C3", dash=":", label=f"departs (epoch {departs})")
    return panel
