"""A run's monitored curve as a word-sized inline SVG (a sparkline): the HTML report's mark for
every run, cheap enough for thousands (about 0.5 KB each, no script, no image to decode).

The x axis is shared by every run of the report (epoch 1 to the longest run's last), so lengths
compare; the y axis is the run's own (its lowest to its highest finite value, higher drawn up).
The epochs the policy trains are a solid line, the ones it saves (after the stop) a faint one, the
stop a red tick, the run's best epoch a dot. Non-finite values (NaN, inf) are left out. Only
numbers computed here go into the markup; the caller escapes the accessible label it passes.

>>> svg = sparkline([1.0, 0.5, 0.4, 0.45, 0.5], stop=3, best=2, longest=5, label="val_loss")
>>> svg.startswith('<svg class="spark" viewBox="0 0 240 40"') and "<polyline" in svg
True
"""

from __future__ import annotations

import math

WIDTH, HEIGHT = 120, 20  # CSS pixels on the page
_UNIT = 2  # viewBox units per CSS pixel: integer coordinates, half-pixel precision on the page
_PAD = 2  # units kept free above and below the curve (its stroke is 3 units wide)


def sparkline(
    values: list[float | None], *, stop: int | None, best: int | None, longest: int, label: str
) -> str:
    """The SVG of ``values`` (index = 0-based epoch); ``stop`` (the policy's stop) and ``best``
    (the run's best epoch) are 0-based or None; ``longest`` is the number of epochs the x axis
    spans; ``label`` (already escaped for HTML) is read out by screen readers."""
    w, h = WIDTH * _UNIT, HEIGHT * _UNIT
    points = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    head = f'<svg class="spark" viewBox="0 0 {w} {h}" width="{WIDTH}" height="{HEIGHT}" role="img"'
    if not points:
        return f'{head} aria-label="{label}: nothing logged"></svg>'
    low = min(v for _, v in points)
    span = (max(v for _, v in points) - low) or 1.0
    step = (w - 2 * _PAD) / max(1, longest - 1)

    def xy(i: int, v: float) -> str:
        return f"{round(_PAD + i * step)},{round(h - _PAD - (v - low) / span * (h - 2 * _PAD))}"

    cut = len(points) if stop is None else sum(1 for i, _ in points if i <= stop)
    shapes = []
    for css, part in (("t", points[:cut]), ("s", points[max(0, cut - 1) :] if cut < len(points) else [])):
        if len(part) > 1:
            shapes.append(
                f'<polyline class="{css}" points="{" ".join(xy(i, v) for i, v in thin(part, WIDTH))}"/>'
            )
    if stop is not None:
        x = round(_PAD + stop * step)
        shapes.append(f'<line class="x" x1="{x}" x2="{x}" y1="0" y2="{h}"/>')
    value = dict(points).get(best) if best is not None else None
    if value is not None:
        x, y = xy(best, value).split(",")
        shapes.append(f'<circle cx="{x}" cy="{y}" r="4"/>')
    return f'{head} aria-label="{label}">{"".join(shapes)}</svg>'


def thin(points: list[tuple[int, float]], columns: int) -> list[tuple[int, float]]:
    """At most two points per CSS pixel column (its lowest and highest, in epoch order), so a
    10,000-epoch run costs as much as a 240-epoch one and keeps its spikes; ``points`` are
    (position, value) pairs in order, spread evenly over ``columns``.

    >>> thin([(i, float(i % 3)) for i in range(9)], columns=2)
    [(0, 0.0), (2, 2.0), (5, 2.0), (6, 0.0)]
    """
    if len(points) <= 2 * columns:
        return points
    per = len(points) / columns
    kept: list[tuple[int, float]] = []
    for c in range(columns):
        chunk = points[int(c * per) : int((c + 1) * per)]
        if chunk:
            kept += sorted({min(chunk, key=lambda p: p[1]), max(chunk, key=lambda p: p[1])})
    return kept
