"""The HTML report's per-run plots, and the figure machinery every plot shares: matplotlib (Agg
canvas, imported only inside the functions) to PNG.

Each function returns a :class:`Picture`: the PNG as base64 text for a ``data:image/png;base64,...``
URL and its size in CSS pixels. Figures are laid out at :data:`PX_PER_INCH` CSS pixels per inch
(so a 10 pt label is 13 CSS px on the page) and rendered at :data:`SCALE` device pixels per CSS
pixel: crisp on high-density screens, the text as legible as the page's. Figures are drawn on their
own Agg canvas (no pyplot, no global backend switch); names from the logs go through
:func:`plain`, so a ``$`` in a metric name is just a character, not mathtext. Run names are not
drawn (the HTML around the image carries them, escaped). Epochs on the axes are 1-based, as Keras
prints them. The sweep-level figures are in :mod:`~runlens.report.render.sweep_plots`.

>>> picture = run_plot(report.runs[0], report.settings)      # doctest: +SKIP
>>> base64.b64decode(picture.png)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"   # doctest: +SKIP
True
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any, NamedTuple

from runlens.report.model import RunReport, Settings
from runlens.report.render.words import policy_name
from runlens.textsafe import shown

PX_PER_INCH = 96  # CSS pixels per figure inch (CSS' own: 1 in = 96 px), so 10 pt text is 13.3 px
SCALE = 2  # device pixels per CSS pixel in the PNGs: sharp on high-density screens
COLORS = 64  # in the palette of each PNG
# CSS px: the page's content width in a 900 px window. The page shows every figure at its full
# content width (up to 1112 px), so the figures' text is never smaller than laid out here: 10 pt
# ticks = 13.3 px, about the page's own small text (matplotlib's defaults at the old 72 dpi,
# shrunk to the page, drew 6-7 px tick labels). Sizes are whole CSS px, so the PNGs are exactly
# SCALE times their size on the page.
WIDTH = 864
RC = {
    "font.size": 10.5,
    "axes.titlesize": 11,
    "axes.labelsize": 10.5,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9.5,
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    # titles at a fixed height: matplotlib otherwise measures every axis' ticks to place each
    # title clear of them (a quarter of a plot's drawing time; the margins keep them clear here)
    "axes.titley": 1.0,
}


class Picture(NamedTuple):
    """A PNG (base64 text) and the size it is laid out at on the page, in CSS pixels."""

    png: str
    width: int
    height: int


def run_plot(record: RunReport, settings: Settings) -> Picture:
    """Three panels: the monitor with best/stop/restored marked, train vs validation, and the
    learning rate where :func:`draws_learning_rate` (else two, wider)."""
    from matplotlib import rc_context

    with rc_context({**RC, "legend.fontsize": 8.5, "legend.framealpha": 0.7}):  # small panels
        with_lr = draws_learning_rate(record)
        fig, axes = figure(3 if with_lr else 2, height=288)
        _monitor_panel(axes[0], record, settings)
        _pair_panel(axes[1], record, settings.monitor)
        if with_lr:
            _lr_panel(axes[2], record)
        return picture(fig)


def draws_learning_rate(record: RunReport) -> bool:
    """Whether a run's plot has a learning-rate panel: when the logged rate changed or a replayed
    one is drawn beside it. A rate constant throughout, or none logged, would be a flat line or an
    empty panel, a third of the plot's drawing time for what the HTML report's caption says in
    a line.

    >>> draws_learning_rate(report.runs[0])         # doctest: +SKIP
    False
    """
    lr = record.learning_rate
    return lr is not None and (bool(lr.logged_changes_at) or "learning_rate_replayed" in record.curves)


def figure(panels: int, *, height: int, width: int = WIDTH) -> tuple[Any, Any]:
    """A ``width`` x ``height`` CSS px figure of ``panels`` axes side by side, fixed margins
    (matplotlib's layout engines would double the drawing time)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / PX_PER_INCH, height / PX_PER_INCH), dpi=PX_PER_INCH)
    FigureCanvasAgg(fig)  # its own canvas: text can be measured before the figure is saved
    # px for the y tick labels and label, the x's, the title
    fig.subplots_adjust(left=77 / width, right=0.985, bottom=60 / height, top=1 - 34 / height, wspace=0.3)
    return fig, fig.subplots(1, panels)


def picture(fig: Any) -> Picture:
    """``fig`` as a PNG at :data:`SCALE` device pixels per CSS pixel, in :data:`COLORS` colours (a
    palette PNG: a third of the bytes of full colour, which matters for a figure of 2,000
    anti-aliased curves; lines, text and flat fills show no difference)."""
    from PIL import Image  # matplotlib's own dependency

    width, height = fig.get_size_inches() * PX_PER_INCH
    fig.set_dpi(PX_PER_INCH * SCALE)
    fig.canvas.draw()
    image = Image.frombuffer("RGBA", fig.canvas.get_width_height(), fig.canvas.buffer_rgba()).convert("RGB")
    image = image.quantize(colors=COLORS, method=Image.Quantize.FASTOCTREE)
    palette = image.getpalette()
    white = image.getpixel((0, 0))  # the figure's background: exactly white again, like the page's
    palette[3 * white : 3 * white + 3] = [255, 255, 255]
    image.putpalette(palette)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Picture(base64.b64encode(buffer.getvalue()).decode("ascii"), round(width), round(height))


def log_axis(ax: Any) -> None:
    """A log-scaled y axis labelled in plain numbers (``0.001``, ``1e-05``): matplotlib's default
    ``10^{-3}`` labels are mathtext, whose parser costs a quarter of a run plot's drawing time."""
    from matplotlib.ticker import LogFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))  # labels minor ticks when few decades


def plain(text: str) -> str:
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
    ax.plot(x, y, marker=".", ms=4, color="C0", label=plain(m))
    if record.run_best_epoch is not None:
        ax.plot(
            [record.run_best_epoch + 1],
            [record.run_best_value],
            "*",
            ms=11,
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
            ms=8,
            mfc="none",
            color="C3",
            label=f"restored (epoch {restored + 1})",
        )
    es = settings.early_stopping
    patience = f" patience {es['patience']}" if "patience" in es else ""
    _finish(ax, f"{policy_name(es)}{patience}", plain(m))


def _pair_panel(ax: Any, record: RunReport, monitor: str) -> None:
    base = monitor.removeprefix("val_")
    for i, name in enumerate([base, f"val_{base}"]):
        if name in record.curves:
            ax.plot(*_points(record.curves[name]), marker=".", ms=4, color=f"C{i}", label=plain(name))
    _finish(ax, "train vs validation", plain(base))


def _lr_panel(ax: Any, record: RunReport) -> None:
    """The logged and replayed rates; drawn only where :func:`draws_learning_rate` holds (so the
    run has a learning rate)."""
    lr = record.learning_rate
    logged = record.curves.get(lr.column) if lr.column else None
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
    if lr.diverges_at is not None:
        ax.axvline(lr.diverges_at + 1, color="C3", ls=":", label=f"departs (epoch {lr.diverges_at + 1})")
    if values and min(values) > 0:
        log_axis(ax)
    _finish(ax, "learning rate", "")  # the title says it: the log labels need the room


def _finish(ax: Any, title: str, ylabel: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best")
