"""The report's overview (issue 13): the distributions, the frontier, the runs worth a look, the
runs shown in detail and the runs table's order, on a generated Keras sweep of 50 runs
(benchmarks/make_sweep.py, whose files are checked against a real Keras fit) and on sample_logs
with a damaged file."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

import runlens
from runlens.errors import RunlensError
from runlens.report.build.overview import (
    DETAIL,
    SMALL_LOGDIR,
    SORTS,
    Sort,
    detail_runs,
    histogram,
    sorted_runs,
)
from runlens.report.render.json_format import render_json

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


def test_hparams_are_read_from_the_folders_that_hold_them(sweep_logdir, sweep_report):
    recorded = runlens.read_hparams(sweep_logdir).set_index("run")
    assert len(recorded) == 50
    for record in sweep_report.runs:
        expected = {k: v for k, v in recorded.loc[record.run].items() if not pd.isna(v)}
        assert {h["name"]: h["value"] for h in record.hparams} == pytest.approx(expected)


def test_sorts_are_the_options_vocabulary():
    from typing import get_args

    from runlens.options import REPORT_SORTS

    assert get_args(Sort) == SORTS == REPORT_SORTS


def test_histogram_counts_every_value_once_in_bins_of_one_width():
    values = [0, 1, 1, 7, 33, 59, 59, 59]
    h = histogram(values, none=4, max_bins=20)
    assert sum(b["runs"] for b in h.bins) == len(values) and h.none == 4
    widths = {b["high"] - b["low"] + 1 for b in h.bins}
    assert len(widths) == 1 and len(h.bins) <= 20
    for b in h.bins:
        assert b["runs"] == sum(b["low"] <= v <= b["high"] for v in values)
    assert histogram([], none=2).bins == []


def test_overview_adds_up_to_the_runs(sweep_report):
    report, o = sweep_report, sweep_report.overview
    assert o.runs == len(report.runs) == 50
    stops = [r.stopped_epoch for r in report.runs]
    assert o.runs_stopped == sum(s is not None for s in stops) == report.totals.runs_stopped
    assert o.stop_epochs.none == stops.count(None)
    for b in o.stop_epochs.bins:
        assert b["runs"] == sum(s is not None and b["low"] <= s <= b["high"] for s in stops)
    saved = [r.epochs_saved for r in report.runs]
    assert sum(b["runs"] for b in o.epochs_saved.bins) == len(saved)
    assert o.frontier == sorted(
        (row for row in report.sweep.rows if row["frontier"]), key=lambda row: row["epochs_saved"]
    )
    assert o.recommended == next(row for row in report.sweep.rows if row["recommended"])
    assert o.current["current"] and o.current["patience"] == 5


def test_runs_worth_a_look_are_the_largest_regrets_and_savings(sweep_report):
    report, o = sweep_report, sweep_report.overview
    by_reason = {}
    for s in o.worth_a_look:
        by_reason.setdefault(s.reason, []).append(s)
    regrets = sorted((r.regret for r in report.runs if r.regret), reverse=True)
    assert [s.value for s in by_reason["regret"]] == regrets[:3]
    saved = sorted((r.epochs_saved for r in report.runs if r.epochs_saved), reverse=True)
    assert [s.value for s in by_reason["saved"]] == saved[:3]
    for s in o.worth_a_look:
        record = report.run(s.run)
        assert s.value == {"regret": record.regret, "saved": record.epochs_saved}[s.reason]
    assert [s.reason for s in o.worth_a_look] == sorted(
        (s.reason for s in o.worth_a_look), key=["damaged", "disagrees", "regret", "saved"].index
    )


def test_detail_runs_puts_the_runs_worth_a_look_first(sweep_report):
    report = sweep_report
    spotlight = list(dict.fromkeys(s.run for s in report.overview.worth_a_look))
    default = detail_runs(report)
    first = spotlight[:DETAIL]
    assert len(default) == DETAIL and [r.run for r in default][: len(first)] == first
    others = [r.run for r in report.runs if r.run not in spotlight]  # then the report's order
    assert [r.run for r in default][len(first) :] == others[: DETAIL - len(first)]
    many = detail_runs(report, 20)
    assert [r.run for r in many][: len(spotlight)] == spotlight and len({r.run for r in many}) == 20
    assert detail_runs(report, "all") == report.runs and detail_runs(report, 0) == []
    for bad in (-1, "some", 2.5, True):
        with pytest.raises(RunlensError, match="detail must be"):
            detail_runs(report, bad)


def test_a_small_logdir_is_detailed_whole_by_default():
    report = runlens.build_report(SAMPLE)
    assert len(report.runs) <= SMALL_LOGDIR
    assert detail_runs(report) == report.runs
    assert [r.run for r in detail_runs(report, 1)] == [report.overview.worth_a_look[0].run]


@pytest.mark.parametrize("by", SORTS)
def test_sorted_runs_orders_the_table(sweep_report, by):
    ordered = sorted_runs(sweep_report, by)
    assert sorted(r.run for r in ordered) == sorted(r.run for r in sweep_report.runs)
    pairs = list(itertools.pairwise(ordered))
    if by == "run":
        assert all(a.run < b.run for a, b in pairs)
    elif by == "saved":
        assert all(a.epochs_saved >= b.epochs_saved for a, b in pairs)
    elif by == "regret":
        regrets = [r.regret for r in ordered]
        known = [r for r in regrets if r is not None]
        assert known == sorted(known, reverse=True) and regrets[: len(known)] == known
    elif by == "stop":
        stops = [r.stopped_epoch for r in ordered]
        known = [s for s in stops if s is not None]
        assert known == sorted(known) and stops[: len(known)] == known
    else:  # val_loss: lower is better
        best = [r.run_best_value for r in ordered if r.run_best_value is not None]
        assert best == sorted(best)
    with pytest.raises(RunlensError, match="sort must be one of"):
        sorted_runs(sweep_report, "size")


def test_runs_selects_by_printed_name_in_a_logdir_and_in_a_frame(sweep_logdir):
    chosen = runlens.build_report(sweep_logdir, runs="run-000*")
    assert [r.run for r in chosen.runs] == [f"run-{i:04d}" for i in range(10)]
    assert chosen.overview.runs == 10
    frame = runlens.read_epochs(sweep_logdir)
    same = runlens.build_report(frame, runs=["run-000*"])
    assert [r.run for r in same.runs] == [r.run for r in chosen.runs]
    for source in (sweep_logdir, frame):
        with pytest.raises(RunlensError, match=r"no run matches runs='nope'.*run-0000"):
            runlens.build_report(source, runs="nope")


@pytest.fixture
def damaged_sample(copy_logdir):
    """sample_logs with the last record of run overfits' validation file cut short."""
    path = copy_logdir(SAMPLE)
    [file] = (path / "overfits" / "validation").glob("*tfevents*")
    file.write_bytes(file.read_bytes()[:-7])
    return path, file


def test_a_damaged_file_is_named_in_its_run(damaged_sample):
    path, file = damaged_sample
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = runlens.build_report(path)
    overfits = report.run("overfits")
    assert [p["path"] for p in overfits.damaged] == [str(file)]
    assert overfits.damaged[0]["kind"] == "truncated"
    assert all(not r.damaged for r in report.runs if r.run != "overfits")
    first = report.overview.worth_a_look[0]
    assert (first.run, first.reason, first.value) == ("overfits", "damaged", 1)
    assert report.overview.damaged_files == 1
    text = runlens.render_report(report, "text", width=200)
    section = text.split("\n== overfits\n", 1)[1].split("\n== ", 1)[0]
    assert "damaged file" in section and file.name in section
    row = next(line for line in text.splitlines() if line.startswith("  overfits "))
    assert row.rstrip().endswith("D") and "D = damaged event files" in text
    document = json.loads(render_json(report))
    assert (
        document["runs"][[r.run for r in report.runs].index("overfits")]["damaged"][0]["kind"] == "truncated"
    )
    assert document["overview"]["worth_a_look"][0] == {"run": "overfits", "reason": "damaged", "value": 1}
