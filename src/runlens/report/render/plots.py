"""The figure machinery the HTML report's sweep-level plots share: matplotlib (Agg canvas, imported
only inside the functions) to PNG. (A detailed run's plot is inline SVG:
:mod:`~runlens.report.render.run_plots`.)

Each function returns a :class:`Picture`: the PNG as base64 text for a ``data:image/png;base64,...``
URL and its size in CSS pixels. Figures are laid out at :data:`PX_PER_INCH` CSS pixels per inch
(so a 10 pt label is 13 CSS px on the page) and rendered at :data:`SCALE` device pixels per CSS
pixel: crisp on high-density screens, the text as legible as the page's. Figures are drawn on their
own Agg canvas (no pyplot, no global backend switch); names from the logs go through
:func:`plain`, so a ``$`` in a metric name is just a character, not mathtext. Run names are not
drawn (the HTML around the image carries them, escaped). Epochs on the axes are 1-based, as Keras
prints them. The figures themselves are in :mod:`~runlens.report.render.sweep_plots`.

>>> picture = overlay_plot(curves, stopped, report.settings)      # doctest: +SKIP
>>> base64.b64decode(picture.png)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"   # doctest: +SKIP
True
"""

from __future__ import annotations

import base64
import io
from typing import Any, NamedTuple

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
    ``10^{-3}`` labels are mathtext, whose parser costs a quarter of a small plot's drawing time."""
    from matplotlib.ticker import LogFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))  # labels minor ticks when few decades


def plain(text: str) -> str:
    """``text`` drawn as it reads in the report: control characters shown escaped, and ``$``
    escaped (matplotlib reads ``$...$`` as mathtext)."""
    return shown(text).replace("$", r"\$")
