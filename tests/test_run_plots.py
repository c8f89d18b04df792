"""The HTML report's run plots, inline SVG (runlens.report.render.run_plots, svg_axes), read back
as a person reads them: every dot, the best's star, the stop's line and the restored ring sit
where the axes' own tick labels put the run's values (sample_logs, real Keras fits); log axes
are logarithmic; ticks are round, inside the axes and distinct for any range (hypothesis); odd
runs (nothing finite, one value, values near the float maximum, 100,000 epochs, a rate that is
not positive) give well-formed plots; names are escaped and squeezed, never cut or run over."""

from __future__ import annotations

import dataclasses
import math
import re
from itertools import pairwise
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
from runlens.report.render.run_plots import run_svg
from runlens.report.render.svg_axes import Panel, draw, log_ticks, nice_ticks, tick_labels

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


@pytest.fixture(scope="module")
def sample():
    return runlens.build_report(SAMPLE, checkpoints=False)


def _panels(svg: str) -> list[ElementTree.Element]:
    return ElementTree.fromstring(svg).findall("svg")


def _axis(panel, along: str, log: bool = False):
    """Value -> pixel along ``along`` ("x" or "y") from the panel's tick labels, checked to be one
    linear (or, ``log``, logarithmic) map for all of them."""
    ticks = []
    for text in panel.findall("text"):
        attrs = text.attrib
        is_x = attrs.get("text-anchor") == "middle" and "class" not in attrs and "dy" not in attrs
        is_y = attrs.get("text-anchor") == "end"
        if (is_x if along == "x" else is_y) and text.text != "nothing logged":
            value = float(text.text)
            ticks.append((math.log10(value) if log else value, float(attrs[along])))
    assert len(ticks) >= 2, ticks
    (v0, p0), (v1, p1) = ticks[0], ticks[-1]
    scale = (p1 - p0) / (v1 - v0)
    for v, p in ticks:
        assert p == pytest.approx(p0 + (v - v0) * scale, abs=0.1)

    def pixel(value: float) -> float:
        return p0 + ((math.log10(value) if log else value) - v0) * scale

    return pixel


def _centre(polygon) -> tuple[float, float]:
    points = [tuple(map(float, p.split(","))) for p in polygon.attrib["points"].split()]
    return sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)


@pytest.mark.parametrize("name", ["overfits", "unpruned", "plateau", "improving"])
def test_every_mark_sits_where_the_tick_labels_put_its_value(sample, name):
    record = next(r for r in sample.runs if r.run == name)
    monitor = sample.settings.monitor
    panel = _panels(run_svg(record, sample.settings, label="x"))[0]
    x, y = _axis(panel, "x"), _axis(panel, "y")
    values = record.curves[monitor]
    path = panel.find("path").attrib["d"]  # each dot a zero-length stroke "Mx yh0"
    dots = [tuple(map(float, dot.split())) for dot in path.removeprefix("M").removesuffix("h0").split("h0M")]
    assert len(dots) == len(values)
    assert x(len(values)) > x(1) and y(max(values)) < y(min(values))  # later right, higher up
    for epoch, (value, (cx, cy)) in enumerate(zip(values, dots), start=1):
        assert (cx, cy) == (pytest.approx(x(epoch), abs=0.1), pytest.approx(y(value), abs=0.1))
    star = panel.findall("polygon")[0]  # the legend's is drawn after it
    best = record.run_best_epoch
    assert _centre(star) == (pytest.approx(x(best + 1), abs=0.2), pytest.approx(y(values[best]), abs=0.2))
    stops = [  # dashed and upright (the legend's swatch of it lies flat)
        line
        for line in panel.findall("line")
        if line.get("stroke-dasharray") and line.get("y1") != line.get("y2")
    ]
    assert len(stops) == (record.stopped_epoch is not None)
    if stops:
        assert float(stops[0].attrib["x1"]) == pytest.approx(x(record.stopped_epoch + 1), abs=0.1)
    ring = next(c for c in panel.findall("circle") if c.get("r") == "5.5")
    restored = record.restored_epoch
    assert (float(ring.attrib["cx"]), float(ring.attrib["cy"])) == (
        pytest.approx(x(restored + 1), abs=0.1),
        pytest.approx(y(values[restored]), abs=0.1),
    )


def test_the_learning_rate_axis_is_logarithmic_and_its_steps_are_the_rates(sample):
    record = next(r for r in sample.runs if r.run == "plateau")
    panels = _panels(run_svg(record, sample.settings, label="x"))
    assert len(panels) == 3
    lr = panels[2]
    y = _axis(lr, "y", log=True)
    logged = [v for v in record.curves[record.learning_rate.column] if v is not None]
    x = _axis(lr, "x")
    steps = [tuple(map(float, p.split(","))) for p in lr.findall("polyline")[0].attrib["points"].split()]
    assert {round(p[1], 1) for p in steps} == {round(y(v), 1) for v in logged}
    jumps = [a[0] for a, b in pairwise(steps) if a[0] == b[0] and a[1] != b[1]]
    changes = [i for i in range(1, len(logged)) if logged[i] != logged[i - 1]]  # 0-based epochs
    assert jumps == [pytest.approx(x(i + 0.5), abs=0.1) for i in changes]  # halfway, epochs 1-based


def test_runs_without_a_changing_rate_have_two_panels(sample):
    for record in sample.runs:
        panels = _panels(run_svg(record, sample.settings, label="x"))
        assert len(panels) == (3 if record.learning_rate.logged_changes_at else 2), record.run


@settings(max_examples=300, deadline=None)
@given(
    st.floats(-1e12, 1e12, allow_nan=False),
    st.floats(1e-9, 1e12),
    st.integers(3, 12),
)
def test_ticks_are_round_inside_and_distinct(low, span, count):
    high = low + span
    if high - low < abs(high) * 1e-9:  # below float resolution: the plot pads such a span
        return
    ticks, step = nice_ticks(low, high, count=count)
    assert len(ticks) >= 2
    slack = step * 1e-9 + max(abs(low), abs(high)) * 1e-14  # and float precision at that magnitude
    assert all(low - slack <= t <= high + slack for t in ticks)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5, 10))
    labels = tick_labels(ticks, step)
    assert len(set(labels)) == len(labels)
    for tick, label in zip(ticks, labels):
        assert abs(float(label) - tick) <= step * 0.01


@settings(max_examples=200, deadline=None)
@given(st.floats(-300, 260), st.floats(0.08, 40))
def test_log_ticks_are_inside_and_at_most_a_few_decades(exponent, decades):
    low, high = 10.0**exponent, 10.0 ** (exponent + decades)
    ticks = log_ticks(low, high)
    assert ticks == sorted(ticks) and all(low <= t <= high for t in ticks)
    assert ticks or decades < 1  # under a decade the axis may get round linear ticks instead
    assert len({f"{t:g}" for t in ticks}) == len(ticks) <= 12


def _svg(values, **panel):
    p = Panel("title", "metric", **panel)
    p.line(range(1, len(values) + 1), values, color="C0", label="metric", markers=True)
    return draw([p], width=400, height=240, label="x")


@pytest.mark.parametrize(
    "values",
    [
        [],
        [float("nan"), float("inf"), None],
        [0.5],
        [0.3] * 10,
        [1.7e308, -1.7e308, 0.0],
        [1e-300, 2e-300],
        [-1.0, 0.0, 2.0],
    ],
)
def test_odd_runs_give_well_formed_plots(values):
    svg = _svg(values)
    tree = ElementTree.fromstring(svg)
    numbers = re.findall(r'\s(?:x|y|x1|x2|y1|y2|cx|cy)="([^"]*)"', svg)
    assert all(math.isfinite(float(n)) for n in numbers)
    texts = [t.text for t in tree.iter("text")]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    assert ("nothing logged" in texts) == (not finite)


def test_the_legend_goes_where_it_covers_fewest_points():
    panel = Panel("t", "y")
    panel.line(
        range(1, 41), [10 + i % 3 for i in range(20)] + [1.0] * 20, color="C0", label="metric", markers=True
    )
    tree = ElementTree.fromstring(draw([panel], width=400, height=240, label="x"))
    frame, legend = (tree.find(f".//rect[@class='{c}']") for c in ("f", "legend"))
    assert float(legend.get("x")) > float(frame.get("x")) + float(frame.get("width")) / 2  # on the right
    assert float(legend.get("y")) < float(frame.get("y")) + float(frame.get("height")) / 2  # at the top


def test_a_log_panel_spanning_every_float_has_its_ticks():
    tree = ElementTree.fromstring(_svg([1e-300, 1.0, 1e300], log=True))
    labels = [float(t.text) for t in tree.iter("text") if t.get("text-anchor") == "end"]
    assert len(labels) >= 2 and labels == sorted(labels) and labels[0] <= 1e-200 and labels[-1] >= 1e200


def test_a_log_panel_leaves_out_rates_that_are_not_positive():
    svg = _svg([0.1, 0.0, -0.1, 0.01], log=True)
    (polyline,) = ElementTree.fromstring(svg).iter("polyline")
    assert len(polyline.attrib["points"].split()) == 2


def test_a_long_run_is_thinned_and_keeps_its_spikes():
    long = [1.0] * 100_000
    long[51_234] = 5.0
    svg = _svg(long)
    short = _svg([1.0] * 240)
    assert len(svg) < 3 * len(short)
    (polyline,) = ElementTree.fromstring(svg).iter("polyline")
    top = min(float(p.split(",")[1]) for p in polyline.attrib["points"].split())
    assert top < min(
        float(p.split(",")[1])
        for p in ElementTree.fromstring(short).find(".//polyline").attrib["points"].split()
    )


def test_names_are_escaped_and_long_ones_squeezed(sample):
    name = "<script>alert(1)</script>&" * 8
    record = sample.runs[0]
    hostile = dataclasses.replace(record, curves={name: record.curves[sample.settings.monitor]})
    svg = run_svg(hostile, dataclasses.replace(sample.settings, monitor=name), label=name)
    assert "<script" not in svg
    tree = ElementTree.fromstring(svg)
    assert tree.get("aria-label") == name
    labels = [t for t in tree.iter("text") if t.text == name]
    # each panel's y label and legend entry (train vs validation: the monitor is its own pair):
    # at the smallest size, squeezed
    assert len(labels) == 4 and all(t.get("textLength") and "6px" in t.get("style") for t in labels)


def test_a_longer_name_is_set_smaller_never_stretched():
    panel = Panel("a title", "y")
    panel.line([1, 2], [1, 2], color="C0", label="validation_sparse_categorical_accuracy")
    panel.line([1, 2], [2, 1], color="C1", label="loss")
    (legend_long, legend_short) = [
        t
        for t in ElementTree.fromstring(draw([panel], width=300, height=240, label="x")).iter("text")
        if t.get("class") == "k"
    ]
    size = float(re.search(r"font-size: ([\d.]+)px", legend_long.get("style")).group(1))
    assert 6 < size < 11.5 and legend_long.get("textLength") is None
    assert legend_short.get("style") is None and legend_short.get("textLength") is None
