"""The HTML report's plots: matplotlib (Agg canvas, imported only here, inside the functions) to PNG.

Each function returns the PNG as base64 text for a ``data:image/png;base64,...`` URL. Figures are
drawn on their own Agg canvas (no pyplot, no global backend switch); names from the logs go
through :func:`_plain`, so a ``$`` in a metric name is just a character, not mathtext. Run names
are not drawn (the HTML around the image carries them, escaped). Epochs on the axes are 1-based,
as Keras prints them.

>>> png = run_plot(report.runs[0], report.settings)      # doctest: +SKIP
>>> base64.b64decode(png)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"   # doctest: +SKIP
True
"""

from __future__ import annotations

import base64
import io
import math
import os
from collections.abc import Sequence
from typing import Any

from runlens.report.model import RunReport, Settings, SweepSummary
from runlens.report.render.words import policy_name
from runlens.textsafe import shown

PARALLEL_FROM = 16  # runs; below this, spawning plotting processes costs more than it saves
_DPI = 72
_MARKS = {
    "recommended": {"marker": "*", "s": 160, "color": "C2"},
    "current": {"marker": "s", "s": 60, "facecolors": "none", "edgecolors": "C3"},
}
_RC = {"font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}


def run_plot(record: RunReport, settings: Settings) -> str:
    """Three panels: the monitor with best/stop/restored marked, train vs validation, learning rate."""
    from matplotlib import rc_context

    with rc_context(_RC):
        fig, (ax_m, ax_tv, ax_lr) = _figure(3)
        _monitor_panel(ax_m, record, settings)
        _pair_panel(ax_tv, record, settings.monitor)
        _lr_panel(ax_lr, record)
        return _png(fig)


def run_plots(records: Sequence[RunReport], settings: Settings, *, workers: int | None = None) -> list[str]:
    """:func:`run_plot` of every run; many runs are drawn in parallel processes (``workers``:
    default one per core once there are :data:`PARALLEL_FROM` runs; 1 = in this process), with
    the platform's default start method, as ``runlens.read_scalars`` reads files.
    """
    if workers is None:
        workers = min(os.cpu_count() or 1, len(records)) if len(records) >= PARALLEL_FROM else 1
    if workers <= 1:
        return [run_plot(r, settings) for r in records]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        chunk = max(1, len(records) // (4 * workers))
        return list(pool.map(run_plot, records, [settings] * len(records), chunksize=chunk))


def sweep_plot(sweep: SweepSummary, keys: Sequence[str] = ("patience",)) -> str:
    """The sweep frontier: epochs saved vs runs lost, and vs max regret, one point per setting,
    labelled by the settings ``keys`` (the grid's: the first always, the others where they vary;
    ``p3/d0.01`` for patience 3, min_delta 0.01)."""
    from matplotlib import rc_context

    shown = [k for i, k in enumerate(keys) if i == 0 or len({r[k] for r in sweep.rows}) > 1]
    with rc_context(_RC):
        fig, (ax_lost, ax_regret) = _figure(2)
        _frontier_panel(ax_lost, sweep.rows, "runs_lost", "runs lost (regret > 0)", shown)
        _frontier_panel(ax_regret, sweep.rows, "max_regret", "max regret", shown)
        return _png(fig)


def _figure(panels: int) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.9 * panels, 3.0), dpi=_DPI)
    # fixed margins: matplotlib's layout engines would double the drawing time
    fig.subplots_adjust(left=0.25 / panels, right=0.98, bottom=0.15, top=0.9, wspace=0.32)
    return fig, fig.subplots(1, panels)


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plain(text: str) -> str:
    """``text`` drawn as it reads in the report: control characters shown escaped, and ``$``
    escaped (matplotlib reads ``$...$`` as mathtext)."""
    return shown(text).replace("$", r"\$")


def _points(values: list[float | None]) -> tuple[list[int], list[float]]:
    """1-based epochs and values of the logged, finite points."""
    pairs = [(i + 1, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _monitor_panel(ax: Any, record: RunReport, settings: Settings) -> None:
    m = settings.monitor
    values = record.curves.get(m, [])
    x, y = _points(values)
    ax.plot(x, y, marker=".", color="C0", label=_plain(m))
    if record.run_best_epoch is not None:
        ax.plot(
            [record.run_best_epoch + 1],
            [record.run_best_value],
            "*",
            ms=13,
            color="C2",
            label=f"best (epoch {record.run_best_epoch + 1})",
        )
    if record.stopped_epoch is not None:
        stop = record.stopped_epoch + 1
        ax.axvline(stop, color="C3", ls="--", label=f"stop (after epoch {stop})")
    restored = record.restored_epoch
    if restored is not None and restored < len(values) and values[restored] is not None:
        ax.plot(
            [restored + 1],
            [values[restored]],
            "o",
            ms=9,
            mfc="none",
            color="C3",
            label=f"restored (epoch {restored + 1})",
        )
    es = settings.early_stopping
    patience = f" patience {es['patience']}" if "patience" in es else ""
    _finish(ax, f"{_plain(m)}: {policy_name(es)}{patience}", _plain(m))


def _pair_panel(ax: Any, record: RunReport, monitor: str) -> None:
    base = monitor.removeprefix("val_")
    for i, name in enumerate([base, f"val_{base}"]):
        if name in record.curves:
            ax.plot(*_points(record.curves[name]), marker=".", color=f"C{i}", label=_plain(name))
    _finish(ax, f"train vs validation: {_plain(base)}", _plain(base))


def _lr_panel(ax: Any, record: RunReport) -> None:
    lr = record.learning_rate
    logged = record.curves.get(lr.column) if lr is not None and lr.column else None
    replayed = record.curves.get("learning_rate_replayed")
    values = []
    if logged:
        x, y = _points(logged)
        ax.step(x, y, where="mid", color="C0", label="logged")
        values += y
    if replayed:
        x, y = _points(replayed)
        ax.step(x, y, where="mid", color="C1", ls="--", label="replayed")
        values += y
    if lr is not None and lr.diverges_at is not None:
        ax.axvline(lr.diverges_at + 1, color="C3", ls=":", label=f"departs (epoch {lr.diverges_at + 1})")
    if values and min(values) > 0:
        ax.set_yscale("log")
    if not values:
        ax.text(0.5, 0.5, "no learning rate logged", ha="center", va="center", transform=ax.transAxes)
    _finish(ax, "learning rate: logged vs replayed", "learning rate")


def _frontier_panel(ax: Any, rows: list[dict], column: str, label: str, keys: list[str]) -> None:
    usable = [r for r in rows if r[column] is not None and math.isfinite(r[column])]
    ax.scatter(
        [r[column] for r in usable], [r["epochs_saved"] for r in usable], color="0.6", s=18, label="setting"
    )
    front = sorted((r for r in usable if r["frontier"]), key=lambda r: (r[column], r["epochs_saved"]))
    if front:
        ax.plot(
            [r[column] for r in front], [r["epochs_saved"] for r in front], "o-", color="C0", label="frontier"
        )
    labels: dict[tuple[float, int], list[str]] = {}  # settings at the same point share one label
    for r in usable:
        text = "/".join(f"{k[0]}{r[k]:g}" if isinstance(r[k], float) else f"{k[0]}{r[k]}" for k in keys)
        labels.setdefault((r[column], r["epochs_saved"]), []).append(text)
    for point, texts in labels.items():
        ax.annotate(",".join(texts), point, textcoords="offset points", xytext=(4, 3), fontsize=7)
    for flag, style in _MARKS.items():
        picked = [r for r in usable if r[flag]]
        if picked:
            ax.scatter([r[column] for r in picked], [r["epochs_saved"] for r in picked], label=flag, **style)
    if column == "runs_lost":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label)
    ax.set_ylabel("epochs saved")
    ax.set_title(f"epochs saved vs {label}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")


def _finish(ax: Any, title: str, ylabel: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
