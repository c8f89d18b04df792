"""Labels beside scatter points that never cover each other, a point, or the axes' edge.

matplotlib draws an annotation where it is told, so labels of nearby points pile up (the sweep
frontier had ``p0,p1`` over ``p2``, cut off at the axes' edge). :func:`place_labels` tries, for each
label in the order given (the most important first), positions around its point -- right, above,
left, below, then the corners, at growing distances -- and keeps the first whose box, measured by
the renderer, stays inside the axes and clear of every label placed so far and of every point's
marker (and of the axes' legend). A label with no free place is left out and reported: the caller says where else it is
shown (the sweep table lists every setting).

>>> compact_values([0, 1, 2, 5, 8, 9])
'0-2,5,8,9'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MARKER_PX = 6.0  # half the side of the box kept clear around every point, in display pixels
GAP_PX = 2.0  # kept between two labels
_DIRECTIONS = [(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1)]
_DISTANCES = (5, 12, 22, 34, 50)  # points from the marker's centre to the label's near edge
_ALIGN = {-1: "right", 0: "center", 1: "left"}
_VALIGN = {-1: "top", 0: "center", 1: "bottom"}


def compact_values(values: Sequence[int | float | str]) -> str:
    """Values joined by commas, runs of 3+ consecutive integers as ``a-b`` (``0-2,5``)."""
    parts: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if len(run) >= 3:
            parts.append(f"{run[0]}-{run[-1]}")
        else:
            parts.extend(str(v) for v in run)
        run.clear()

    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and run and value == run[-1] + 1:
            run.append(value)
            continue
        flush()
        if isinstance(value, int) and not isinstance(value, bool):
            run.append(value)
        else:
            parts.append(f"{value:g}" if isinstance(value, float) else str(value))
    flush()
    return ",".join(parts)


def place_labels(
    ax: Any,
    points: Sequence[tuple[float, float]],
    texts: Sequence[str],
    *,
    others: Sequence[tuple[float, float]] = (),
    **style: Any,
) -> list[int]:
    """Annotate ``points`` (data coordinates) with ``texts`` where they collide with nothing (nor
    cover the unlabelled points ``others``); returns the indices of the labels that found no place.
    Call once the axes are complete, legend included, and the figure laid out
    (``fig.draw_without_rendering()``, which fixes the limits and where the legend goes): the boxes
    are measured in display pixels. One layout pass, made after every panel is complete, serves
    all the panels labelled (a pass costs as much as drawing the figure)."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    shown = [ax.transData.transform(p) for p in [*points, *others]]
    occupied = [
        Bbox.from_extents(x - MARKER_PX, y - MARKER_PX, x + MARKER_PX, y + MARKER_PX) for x, y in shown
    ]
    legend = ax.get_legend()
    if legend is not None:
        occupied.append(legend.get_window_extent(renderer).padded(GAP_PX))
    left_out = []
    for i, (point, text) in enumerate(zip(points, texts)):
        label = _place(ax, point, text, renderer, frame, occupied, style)
        if label is None:
            left_out.append(i)
        else:
            occupied.append(_text_box(label, renderer).padded(GAP_PX))
    return left_out


def _place(ax: Any, point: tuple[float, float], text: str, renderer, frame, occupied, style) -> Any:
    for distance in _DISTANCES:
        for dx, dy in _DIRECTIONS:
            offset = (dx * distance, dy * distance)
            label = ax.annotate(
                text,
                point,
                xytext=offset,
                textcoords="offset points",
                ha=_ALIGN[dx],
                va=_VALIGN[dy],
                annotation_clip=False,
                **style,
                **({"arrowprops": {"arrowstyle": "-", "color": "0.6", "lw": 0.6}} if distance > 5 else {}),
            )
            box = _text_box(label, renderer)
            inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
            if inside and not any(box.overlaps(other) for other in occupied):
                return label
            label.remove()
    return None


def _text_box(label: Any, renderer: Any) -> Any:
    """The box of an annotation's text alone (``Annotation.get_window_extent`` adds its leader
    line, which always touches its own point)."""
    from matplotlib.text import Text

    label.update_positions(renderer)  # where its offset puts the text (as drawing does)
    return Text.get_window_extent(label, renderer)
