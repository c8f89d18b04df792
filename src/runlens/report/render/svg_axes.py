"""Small line plots as inline SVG: panels side by side, each with round-numbered ticks, a grid,
lines, markers, vertical lines and a legend -- drawn by the browser in the page's own font, crisp
at any pixel density, and a few KB, where a matplotlib PNG of the same plot costs 0.2 s of CPU.

The HTML report draws its detailed runs with it (:mod:`~runlens.report.render.run_plots`); the
sweep-level figures, with thousands of curves and measured label placement, stay matplotlib
PNGs. Sizes are CSS pixels (the ``viewBox``); the page scales the SVG to its content width, as it
does the PNGs. The look (fonts, strokes) is :data:`STYLE`, part of the page's stylesheet. Every
piece of text goes through :func:`~runlens.textsafe.html_text`; coordinates are numbers formatted
here. Non-finite values are left out; a line with more points than its panel has pixel columns is
thinned to each column's lowest and highest point, so a 100,000-epoch run stays a few KB.

>>> panel = Panel("loss", "val_loss")
>>> panel.line([1, 2, 3], [0.5, 0.4, 0.45], color="C0", label="val_loss", markers=True)
>>> plot = draw([panel], width=400, height=240, label="val_loss of run a")
>>> plot.startswith('<div class="plot" role="img"') and '<svg viewBox="0 0 400 240"' in plot
True
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from runlens.report.render.sparklines import thin
from runlens.textsafe import html_text

COLORS = {"C0": "#1f77b4", "C1": "#ff7f0e", "C2": "#2ca02c", "C3": "#d62728"}  # matplotlib's first four
DASHES = {"--": "6 4", ":": "2 3"}
TICK, LEGEND = 13, 11.5  # font sizes in CSS px (10 pt and 8.5 pt, as the PNG figures lay them out)
CHAR = 0.62  # a character's width in em, a little over a sans-serif's digits and letters
STYLE = """
.plot { display: grid; grid-template-columns: repeat(auto-fit, minmax(250px, 1fr)); }
.plot svg { display: block; width: 100%; height: auto; font-family: system-ui, sans-serif; }
.plot text { font-size: 13px; fill: #222; }
.plot .h { font-size: 14.5px; } .plot .a { font-size: 14px; } .plot .k { font-size: 11.5px; }
.plot .g { stroke: #e3e3e3; } .plot .f { fill: none; stroke: #333; } .plot .m { stroke: #333; }
.plot .legend { fill: #fff; fill-opacity: 0.75; stroke: #ccc; }
.plot polyline, .plot .v { fill: none; stroke-width: 2; }
.plot .d { fill: none; stroke-width: 4.4; stroke-linecap: round; }
"""
_MARGIN = (77, 13, 60, 34)  # left, right, bottom, top: px for the y tick labels and label, the x's, the title


def nice_ticks(
    low: float, high: float, *, count: int = 5, integer: bool = False
) -> tuple[list[float], float]:
    """Ticks at multiples of a round step (1, 2, 2.5 or 5 times a power of ten; a whole number
    when ``integer``) inside ``[low, high]``, about ``count`` intervals apart, and the step.

    >>> nice_ticks(0.23, 0.71)
    ([0.3, 0.4, 0.5, 0.6, 0.7], 0.1)
    >>> nice_ticks(0.6, 60.4, count=8, integer=True)[0]
    [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    """
    raw = high / count - low / count  # no overflow for a span near the float maximum
    power = 10.0 ** math.floor(math.log10(raw))
    steps = [m * power for m in (0.5, 1, 2, 2.5, 5, 10)]
    i = next(i for i, step in enumerate(steps) if step >= raw * (1 - 1e-9))
    while True:  # a step at most twice the raw one; the next smaller where that left one tick
        step = float(max(1, math.ceil(steps[i]))) if integer else steps[i]
        if not math.isfinite(step):  # a span near the float maximum: its two ends
            return [low, high], high / 2 - low / 2
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        if last > first or i == 0:
            break
        i -= 1
    # 0.3, not 0.30000000000000004
    return [float(f"{k * step:.15g}") + 0.0 for k in range(first, last + 1)], step


def tick_labels(ticks: Sequence[float], step: float) -> list[str]:
    """Labels as short as keep ticks ``step`` apart distinct: fixed decimals, or significant
    digits with an exponent for very large or very small numbers.

    >>> tick_labels([0.25, 0.5, 0.75], 0.25), tick_labels([0, 2.5, 5], 2.5), tick_labels([2e7, 4e7], 2e7)
    (['0.25', '0.50', '0.75'], ['0.0', '2.5', '5.0'], ['2e+07', '4e+07'])
    """
    decimals = 0  # as many as the step has: 2.5 one, 0.25 two, 20 none
    while decimals < 15 and not math.isclose(round(step, decimals), step, rel_tol=1e-9):
        decimals += 1
    biggest = max(abs(t) for t in ticks)
    if decimals <= 6 and biggest < 1e7:
        return [f"{t:.{decimals}f}" for t in ticks]
    digits = max(1, math.floor(math.log10(biggest)) - math.floor(math.log10(step)) + 2)
    return [f"{t:.{digits}g}" for t in ticks]


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks for a log axis spanning ``[low, high]`` (both > 0): the powers of ten inside it, or
    with 2 and 5 times them, or every multiple, whichever first gives two or more.

    >>> log_ticks(3e-5, 2e-3), log_ticks(0.004, 0.011)
    ([0.0001, 0.001], [0.005, 0.01])
    """
    first, last = math.floor(math.log10(low)), math.floor(math.log10(high))
    stride = max(1, math.ceil((last - first + 1) / 6))  # at most six decades labelled
    for multiples in ((1,), (1, 2, 5), range(1, 10)):
        found = [
            m * 10.0**k
            for k in range(first, last + 1, stride)
            for m in multiples
            if low <= m * 10.0**k <= high
        ]
        if len(found) >= 2:
            return found
    return []


@dataclass
class _Line:
    x: list[float]
    y: list[float]
    color: str
    dash: str | None
    markers: bool
    step: bool


@dataclass
class Panel:
    """One set of axes: its title, y label, whether y is log-scaled, and what is drawn on it (in
    data coordinates; the axes span it all, with 5% margins, as matplotlib's do)."""

    title: str
    ylabel: str
    xlabel: str = "epoch"
    log: bool = False
    lines: list[_Line] = field(default_factory=list)
    marks: list[tuple[float, float, str, str]] = field(default_factory=list)  # x, y, shape, colour
    vlines: list[tuple[float, str, str | None]] = field(default_factory=list)  # x, colour, dash
    legend: list[tuple[str, str, str | None, str]] = field(default_factory=list)  # kind, colour, dash, text

    def line(
        self,
        x: Sequence[float],
        y: Sequence[float],
        *,
        color: str,
        label: str,
        dash: str | None = None,
        markers: bool = False,
        step: bool = False,
    ) -> None:
        """A line through the finite points of ``x``/``y``, with a dot at each (``markers``, left
        out when the points are closer than 3 px) or as steps changing halfway between points."""
        points = [(a, b) for a, b in zip(x, y) if _finite(a, b) and (b > 0 or not self.log)]
        self.lines.append(_Line([p[0] for p in points], [p[1] for p in points], color, dash, markers, step))
        self.legend.append(("line", color, dash, label))

    def mark(self, x: float, y: float, *, shape: str, color: str, label: str) -> None:
        """One marked point: ``shape`` is ``"star"`` or ``"ring"``."""
        if _finite(x, y) and (y > 0 or not self.log):
            self.marks.append((x, y, shape, color))
            self.legend.append((shape, color, None, label))

    def vline(self, x: float, *, color: str, dash: str | None, label: str) -> None:
        """A vertical line across the panel at ``x``."""
        self.vlines.append((x, color, dash))
        self.legend.append(("vline", color, dash, label))


def draw(panels: Sequence[Panel], *, width: int, height: int, label: str) -> str:
    """``panels`` in a ``width`` x ``height`` CSS px figure, each its own SVG of an equal share of
    the width: side by side on a wide page, one under another on a narrow one, each at a legible
    size (:data:`STYLE`'s grid); ``label`` (plain text) is what a screen reader reads for it."""
    share = round(width / len(panels))
    svgs = "".join(_svg(panel, share, height) for panel in panels)
    return f'<div class="plot" role="img" aria-label="{html_text(label)}">{svgs}</div>'


def _svg(panel: Panel, width: int, height: int) -> str:
    left, right, bottom, top = _MARGIN
    box = (left, top, width - left - right, height - top - bottom)
    head = f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-hidden="true">'
    return head + "".join(_panel(panel, box)) + "</svg>"


def _finite(*values: float) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


class _Scale:
    """Data to pixels along one axis: ``[low, high]`` (5% margins added) onto ``[start, end]``."""

    def __init__(self, values: list[float], start: float, end: float, *, log: bool = False) -> None:
        self.log = log
        values = [math.log10(v) for v in values] if log else values
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        if high - low <= abs(high) * 1e-12:  # one value: a span around it, as matplotlib makes
            pad = abs(high) * 0.05 or 0.05
            low, high = low - pad, high + pad
        margin = (high / 2 - low / 2) * 0.1  # halves: no overflow for spans near the float maximum
        self.low, self.high = max(low - margin, -sys.float_info.max), min(high + margin, sys.float_info.max)
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.start + (v / 2 - self.low / 2) / (self.high / 2 - self.low / 2) * (self.end - self.start)

    def ticks(self, *, spacing: float, integer: bool = False) -> tuple[list[float], list[str]]:
        """The ticks inside the axis and their labels, about ``spacing`` px apart (at least three
        intervals)."""
        low, high = self.low, self.high
        if self.log:  # the axis' ends as rates, within what a float holds
            low, high = 10.0 ** max(low, -307.0), 10.0 ** min(high, 308.0)
            found = log_ticks(low, high)
            if found:
                return found, [f"{t:g}" for t in found]
        found, step = nice_ticks(
            low, high, count=max(3, int(abs(self.end - self.start) // spacing)), integer=integer
        )
        return found, tick_labels(found, step)


def _panel(panel: Panel, box: tuple[float, float, float, float]) -> list[str]:
    x0, y0, w, h = box
    xs = (
        [v for line in panel.lines for v in line.x]
        + [m[0] for m in panel.marks]
        + [v[0] for v in panel.vlines]
    )
    ys = [v for line in panel.lines for v in line.y] + [m[1] for m in panel.marks]
    sx, sy = _Scale(xs, x0, x0 + w), _Scale(ys, y0 + h, y0, log=panel.log)
    out = []
    xticks, xlabels = sx.ticks(spacing=45, integer=True)
    yticks, ylabels = sy.ticks(spacing=45)
    for t, text in zip(xticks, xlabels):
        x = _n(sx(t))
        out.append(f'<line class="g" x1="{x}" x2="{x}" y1="{_n(y0)}" y2="{_n(y0 + h)}"/>')
        out.append(f'<line class="m" x1="{x}" x2="{x}" y1="{_n(y0 + h)}" y2="{_n(y0 + h + 5)}"/>')
        out.append(_label(text, f'x="{x}" y="{_n(y0 + h + 19)}" text-anchor="middle"'))
    for t, text in zip(yticks, ylabels):
        y = _n(sy(t))
        out.append(f'<line class="g" x1="{_n(x0)}" x2="{_n(x0 + w)}" y1="{y}" y2="{y}"/>')
        out.append(f'<line class="m" x1="{_n(x0 - 5)}" x2="{_n(x0)}" y1="{y}" y2="{y}"/>')
        out.append(_label(text, f'x="{_n(x0 - 8)}" y="{y}" dy="0.35em" text-anchor="end"'))
    out.append(f'<rect class="f" x="{_n(x0)}" y="{_n(y0)}" width="{_n(w)}" height="{_n(h)}"/>')
    for line in panel.lines:
        out += _line(line, sx, sy, w)
    for x, color, dash in panel.vlines:
        px = _n(sx(x))
        out.append(
            f'<line class="v" x1="{px}" x2="{px}" y1="{_n(y0)}" y2="{_n(y0 + h)}"{_stroke(color, dash)}/>'
        )
    for x, y, shape, color in panel.marks:
        out.append(_shape(shape, sx(x), sy(y), color))
    if not xs:
        out.append(
            _label("nothing logged", f'x="{_n(x0 + w / 2)}" y="{_n(y0 + h / 2)}" text-anchor="middle"')
        )
    widest = max((len(t) for t in ylabels), default=0) * CHAR * TICK
    at = f"translate({_n(max(8.0, x0 - widest - 18))} {_n(y0 + h / 2)}) rotate(-90)"
    out.append(_label(panel.ylabel, f'class="a" transform="{at}" text-anchor="middle"', size=14, room=h))
    out.append(
        _label(panel.xlabel, f'class="a" x="{_n(x0 + w / 2)}" y="{_n(y0 + h + 42)}" text-anchor="middle"')
    )
    centre = f'class="h" x="{_n(x0 + w / 2)}" y="{_n(y0 - 9)}" text-anchor="middle"'
    out.append(_label(panel.title, centre, size=14.5, room=w + 2 * _MARGIN[1]))  # to the SVG's right edge
    points = [(x, y) for line in panel.lines for x, y in zip(line.x, line.y)]
    points = [(sx(x), sy(y)) for x, y in points[:: 1 + len(points) // 2000] + [m[:2] for m in panel.marks]]
    return out + _legend(panel.legend, box, points)


def _line(line: _Line, sx: _Scale, sy: _Scale, width: float) -> list[str]:
    """A polyline (thinned to two points per pixel column), and its dots where they fit."""
    points = list(zip(line.x, line.y))
    if not points:
        return []
    if line.step:  # the value changes halfway between two points, as matplotlib's step(where="mid")
        stepped = [points[0]]
        for (a, u), (b, v) in pairwise(points):
            stepped += [((a + b) / 2, u), ((a + b) / 2, v)]
        points = [*stepped, points[-1]]
    pixels = [(sx(x), sy(y)) for x, y in points]
    if not line.step:
        pixels = [pixels[i] for i, _ in thin([(i, y) for i, (_, y) in enumerate(pixels)], max(1, int(width)))]
    coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in pixels)
    out = [f'<polyline points="{coords}"{_stroke(line.color, line.dash)}/>']
    if (
        line.markers and len(line.x) * 3 <= width
    ):  # a round cap on a zero-length stroke: a third of a circle's bytes
        dots = "".join(f"M{_n(x)} {_n(y)}h0" for x, y in pixels)
        out.append(f'<path class="d" d="{dots}" stroke="{COLORS[line.color]}"/>')
    return out


def _stroke(color: str, dash: str | None) -> str:
    return f' stroke="{COLORS[color]}"' + (f' stroke-dasharray="{DASHES[dash]}"' if dash else "")


def _shape(shape: str, x: float, y: float, color: str) -> str:
    """A star (a run's best) or a ring (the weights restored) centred on ``x``, ``y``."""
    if shape == "ring":
        return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="5.5" fill="none" stroke="{COLORS[color]}" stroke-width="1.5"/>'
    corners = []
    for k in range(10):
        angle, radius = math.pi / 2 + k * math.pi / 5, 7.5 if k % 2 == 0 else 3.0
        corners.append(f"{_n(x + radius * math.cos(angle))},{_n(y - radius * math.sin(angle))}")
    return f'<polygon points="{" ".join(corners)}" fill="{COLORS[color]}"/>'


def _legend(
    entries: list[tuple[str, str, str | None, str]], box: tuple[float, float, float, float], points: list
) -> list[str]:
    """The legend in the corner of the panel that covers fewest points (upper right first, as
    matplotlib's ``loc="best"`` tries them)."""
    if not entries:
        return []
    x0, y0, w, h = box
    row = LEGEND * 1.45
    lw = min(w - 8, 38 + max(len(e[3]) for e in entries) * CHAR * LEGEND)  # swatch, text, padding
    lh = row * len(entries) + 8
    corners = [
        (x0 + w - lw - 4, y0 + 4),
        (x0 + 4, y0 + 4),
        (x0 + 4, y0 + h - lh - 4),
        (x0 + w - lw - 4, y0 + h - lh - 4),
    ]
    left, top = min(
        corners, key=lambda c: sum(c[0] <= px <= c[0] + lw and c[1] <= py <= c[1] + lh for px, py in points)
    )
    out = [f'<rect class="legend" x="{_n(left)}" y="{_n(top)}" width="{_n(lw)}" height="{_n(lh)}" rx="3"/>']
    for i, (kind, color, dash, text) in enumerate(entries):
        y = top + 4 + row * (i + 0.5)
        if kind in ("line", "vline"):
            out.append(
                f'<line class="v" x1="{_n(left + 6)}" x2="{_n(left + 26)}" y1="{_n(y)}" y2="{_n(y)}"{_stroke(color, dash)}/>'
            )
        else:
            out.append(_shape(kind, left + 16, y, color))
        out.append(
            _label(text, f'class="k" x="{_n(left + 32)}" y="{_n(y)}" dy="0.35em"', size=LEGEND, room=lw - 38)
        )
    return out


def _label(text: str, attributes: str, *, size: float = TICK, room: float | None = None) -> str:
    """A ``<text>`` of ``text`` (escaped) at ``size`` px; where it would be wider than ``room``
    px (a long metric name) set smaller to fit, down to 6 px, then squeezed by the browser:
    never running over its neighbours, never cut."""
    wide = len(text) * CHAR * size
    if room is not None and wide > room:
        fitted = max(size * room / wide, 6.0)
        attributes += f' style="font-size: {_n(fitted)}px"'  # a style: the page's CSS beats an attribute
        if wide * fitted / size > room:
            attributes += f' textLength="{_n(max(room, 1.0))}" lengthAdjust="spacingAndGlyphs"'
    return f"<text {attributes}>{html_text(text)}</text>"


def _n(value: float) -> str:
    """A coordinate: one decimal (a tenth of a CSS pixel), no trailing ``.0``."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
