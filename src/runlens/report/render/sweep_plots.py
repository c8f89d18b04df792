"""The HTML report's sweep-level figures: one picture of every run, however many runs there are.

- :func:`overlay_plot`: every run's monitored curve in one axes (one ``LineCollection``, so 2,000
  runs draw as fast as 20), each run's stop marked where the policy stops it;
- :func:`distribution_plot`: the overview's histograms (:class:`~runlens.report.model.Overview`):
  how many runs stop at each epoch (and how many never stop), how many epochs each run saves;
- :func:`frontier_plot`: epochs saved vs runs lost and vs max regret, one point per setting tried,
  labels placed apart (:mod:`~runlens.report.render.label_layout`).

Each returns a :class:`~runlens.report.render.plots.Picture` (figure machinery and sizes in
:mod:`~runlens.report.render.plots`). Epochs on the axes are 1-based, as Keras prints them.

>>> curves = [r.curves.get(report.settings.monitor, []) for r in report.runs]  # doctest: +SKIP
>>> picture = overlay_plot(curves, [r.stopped_epoch for r in report.runs], report.settings)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from runlens.report.model import Histogram, Overview, Settings, SweepSummary
from runlens.report.render.label_layout import compact_values, place_labels
from runlens.report.render.plots import RC, Picture, figure, log_axis, picture, plain
from runlens.report.render.words import policy_name

_STOP = "C3"
_MARKS = {
    "recommended": {"marker": "*", "s": 170, "color": "C2", "zorder": 4},
    "current": {"marker": "s", "s": 70, "facecolors": "none", "edgecolors": _STOP, "lw": 1.5, "zorder": 4},
}
LABEL_ALL = 12  # points in a frontier panel up to which every point is labelled
CLIP = 0.5  # percent of the values cut off at each end of the overlay's y axis (outliers, diverged runs)


def overlay_plot(
    curves: Sequence[Sequence[float | None]], stopped: Sequence[int | None], settings: Settings
) -> Picture:
    """Every run's ``settings.monitor`` per epoch (``curves``: one list per run, None where not
    logged), faint; a dot where the policy stops each run (``stopped``: its 0-based stop epoch, None
    if never), on the value of its last trained epoch; dotted grey, the epochs after it (saved).
    The y axis spans the values between the :data:`CLIP` and 100 - :data:`CLIP` percentiles
    (log-scaled when they span over two decades), so a few diverged runs cannot flatten the rest."""
    from matplotlib import rc_context
    from matplotlib.collections import LineCollection

    trained, saved, dots = [], [], []
    for curve, stop in zip(curves, stopped):
        values = np.array([np.nan if v is None else v for v in curve], float)
        finite = np.isfinite(values)
        epochs = np.flatnonzero(finite)
        line = np.column_stack([epochs + 1, values[finite]])
        cut = len(line) if stop is None else int(np.searchsorted(epochs, stop, side="right"))
        if cut:
            trained.append(line[:cut])
        if cut < len(line):
            saved.append(line[max(0, cut - 1) :])  # from the stop on: the epochs the policy saves
        if stop is not None and stop < len(values) and finite[stop]:
            dots.append((stop + 1, values[stop]))
    with rc_context(RC):
        fig, ax = figure(1, height=365)
        alpha = min(0.8, max(0.06, 12 / max(1, len(curves)) ** 0.75))
        ax.add_collection(LineCollection(trained, colors="C0", linewidths=0.9, alpha=alpha))
        ax.add_collection(LineCollection(saved, colors="0.55", linewidths=0.8, alpha=alpha, linestyles=":"))
        if dots:
            x, y = zip(*dots)
            ax.scatter(x, y, s=14, color=_STOP, alpha=min(1.0, 3 * alpha + 0.2), lw=0, zorder=3)
        lines = trained + saved
        every = np.concatenate([line[:, 1] for line in lines]) if lines else np.array([0.0, 1.0])
        low, high = (
            np.percentile(every, [CLIP, 100 - CLIP]) if len(lines) > 20 else (every.min(), every.max())
        )
        if low > 0 and high / low > 100:
            log_axis(ax)
            ax.set_ylim(low / 1.15, high * 1.15)
        else:
            pad = (high - low) * 0.05 or 0.5
            ax.set_ylim(low - pad, high + pad)
        longest = max((line[-1, 0] for line in lines), default=1)
        ax.set_xlim(0.5, longest + 0.5)
        es = settings.early_stopping
        patience = f" patience {es['patience']}" if "patience" in es else ""
        ax.plot(
            [],
            [],
            color="C0",
            label=f"{plain(settings.monitor)} while trained, one line per run ({len(curves)})",
        )
        ax.scatter(
            [], [], s=14, color=_STOP, label=f"where {policy_name(es)}{patience} stops ({len(dots)} runs)"
        )
        ax.plot([], [], color="0.55", ls=":", label="after the stop: the epochs saved")
        _axes(ax, f"{plain(settings.monitor)} of every run", plain(settings.monitor))
        return picture(fig)


def distribution_plot(overview: Overview, titles: tuple[str, str]) -> Picture:
    """The overview's two histograms as bar charts, titled ``titles``: the epoch the policy stops
    each run after (1-based; the runs it never stops in a bar of their own, "never"), and the
    epochs each run saves."""
    from matplotlib import rc_context
    from matplotlib.ticker import MaxNLocator

    with rc_context(RC):
        fig, (ax_stop, ax_saved) = figure(2, height=288)
        last = _bars(ax_stop, overview.stop_epochs, 1, _STOP)
        never = overview.stop_epochs.none
        if never:  # a bar of its own past the last bin, its tick labelled "never"
            width = max(1, (last or 1) // 20)
            at = last + max(3, last // 6)
            ax_stop.bar([at], [never], width=width, color="0.55")
            ticks = [t for t in MaxNLocator(5, integer=True).tick_values(1, last) if 0 <= t <= last]
            ax_stop.set_xticks([*ticks, at], [f"{t:g}" for t in ticks] + ["never"])
        _axes(ax_stop, f"{titles[0]} ({never} run(s) never)", "runs", "epoch")
        _bars(ax_saved, overview.epochs_saved, 0, "C0")
        _axes(ax_saved, titles[1], "runs", "epochs saved")
        for ax in (ax_stop, ax_saved):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_saved.xaxis.set_major_locator(MaxNLocator(integer=True))
        return picture(fig)


def _bars(ax: Any, histogram: Histogram, shift: int, color: str) -> int:
    """One bar per bin, over ``low - 0.5 .. high + 0.5`` (+ ``shift``); returns the last value shown."""
    if not histogram.bins:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
        return 0
    lows = [b["low"] + shift - 0.5 for b in histogram.bins]
    widths = [b["high"] - b["low"] + 1 for b in histogram.bins]
    ax.bar(
        lows, [b["runs"] for b in histogram.bins], width=[w * 0.92 for w in widths], align="edge", color=color
    )
    return histogram.bins[-1]["high"] + shift


def frontier_plot(sweep: SweepSummary, keys: Sequence[str] = ("patience",)) -> Picture:
    """The sweep frontier: epochs saved vs runs lost, and vs max regret, one point per setting,
    labelled by the settings ``keys`` (the grid's: the first always, the others where they vary;
    ``p3/d0.01`` for patience 3, min_delta 0.01). Settings at one point share a label (``p0-2``);
    labels are placed apart, the recommended, current and frontier settings' first; one that has
    no free place is left out (the sweep table lists every setting)."""
    from matplotlib import rc_context

    shown = [k for i, k in enumerate(keys) if i == 0 or len({r[k] for r in sweep.rows}) > 1]
    with rc_context(RC):
        fig, (ax_lost, ax_regret) = figure(2, height=365)
        fig.subplots_adjust(wspace=0.2)
        _frontier_panel(ax_lost, sweep.rows, "runs_lost", "runs lost (regret > 0)", shown)
        _frontier_panel(ax_regret, sweep.rows, "max_regret", "max regret", shown)
        fig.draw_without_rendering()  # one layout pass for both panels' labels
        _label_points(ax_lost, sweep.rows, "runs_lost", shown)
        _label_points(ax_regret, sweep.rows, "max_regret", shown)
        return picture(fig)


def _usable(rows: list[dict], column: str) -> list[dict]:
    return [r for r in rows if r[column] is not None and math.isfinite(r[column])]


def _frontier_panel(ax: Any, rows: list[dict], column: str, label: str, keys: list[str]) -> None:
    usable = _usable(rows, column)
    ax.scatter(
        [r[column] for r in usable], [r["epochs_saved"] for r in usable], color="0.6", s=22, label="setting"
    )
    front = sorted((r for r in usable if r["frontier"]), key=lambda r: (r[column], r["epochs_saved"]))
    if front:
        ax.plot(
            [r[column] for r in front], [r["epochs_saved"] for r in front], "o-", color="C0", label="frontier"
        )
    for flag, style in _MARKS.items():
        picked = [r for r in usable if r[flag]]
        if picked:
            ax.scatter([r[column] for r in picked], [r["epochs_saved"] for r in picked], label=flag, **style)
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if column == "runs_lost":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # the margins below make room for labels, not for negative counts or regrets: no tick there
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: "" if value < 0 else f"{value:g}"))
    ax.margins(x=0.18, y=0.16)  # room for the labels of the points at the edges
    _axes(ax, f"epochs saved vs {label}", "epochs saved", label)


def _label_points(ax: Any, rows: list[dict], column: str, keys: list[str]) -> None:
    """One label per point (the settings there), the marked and frontier points' placed first;
    past :data:`LABEL_ALL` points only those (a grid of 30 settings labelled in full is a thicket
    of leader lines; the sweep table lists every setting)."""
    groups: dict[tuple[float, int], list[dict]] = {}
    for r in _usable(rows, column):
        groups.setdefault((r[column], r["epochs_saved"]), []).append(r)

    def rank(item: tuple[tuple[float, int], list[dict]]) -> tuple[int, ...]:
        members = item[1]
        return tuple(-any(r[flag] for r in members) for flag in ("recommended", "current", "frontier"))

    ordered = sorted(groups.items(), key=rank)  # stable: the sweep's order within a rank
    if len(ordered) > LABEL_ALL:
        ordered = [item for item in ordered if any(rank(item))]
    texts = [_label_text(members, keys) for _, members in ordered]
    points = [point for point, _ in ordered]
    place_labels(ax, points, texts, others=list(groups.keys() - set(points)), fontsize=9.5, color="0.15")


def _label_text(members: list[dict], keys: list[str]) -> str:
    """``p0-2`` (patience 0, 1, 2), ``p3/d0.01``: the first setting's values grouped by the others."""
    first, others = keys[0], keys[1:]
    groups: dict[tuple, list[Any]] = {}
    for r in members:
        groups.setdefault(tuple(r[k] for k in others), []).append(r[first])
    parts = []
    for values, firsts in groups.items():
        rest = "".join(f"/{k[0]}{_value(v)}" for k, v in zip(others, values))
        parts.append(f"{first[0]}{compact_values(firsts)}{rest}")
    return " ".join(parts)


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _axes(ax: Any, title: str, ylabel: str, xlabel: str = "epoch") -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
