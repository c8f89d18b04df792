"""runlens called inside a ``multiprocessing.Pool`` worker (a daemonic process, which may start no
children): a read that would use worker processes, a sweep's report (built with workers of its
own elsewhere) and an HTML report (figures drawn in workers elsewhere) all run in that process
instead of failing with "daemonic processes are not allowed to have children"."""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path

import runlens
from runlens.report.build.source import SWEEP_RUNS

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


def _in_worker(logdir: str) -> tuple[int, str, str]:
    frame = runlens.read_scalars(logdir, workers=2)
    report = runlens.build_report(logdir)
    html = runlens.render_report(report, "html", detail=1)
    return len(frame), runlens.render_report(report, "json"), html[:15]


def test_reads_and_reports_in_a_pool_worker_run_in_that_process(tmp_path):
    logdir = tmp_path / "sweep"
    for i in range(SWEEP_RUNS):  # a sweep: its report is built with worker processes elsewhere
        shutil.copytree(SAMPLE / "plateau", logdir / f"run-{i:03d}")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        rows, json_report, html = pool.apply(_in_worker, (str(logdir),))
    assert multiprocessing.current_process().daemon is False
    assert rows == len(runlens.read_scalars(logdir))
    assert json_report == runlens.render_report(runlens.build_report(logdir), "json")
    assert html.startswith("<!DOCTYPE html>")
