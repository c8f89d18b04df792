"""Every figure of an HTML report, drawn in worker processes while the page's text is laid out.

A page has, per part (the report, then each :attr:`Report.parts`), the overlay of every run's
curve, the two histograms, the frontier, and a plot per detailed run: about 1.5 s of matplotlib
on one core at 2,000 runs, plus 0.27 s to import it. :class:`Figures` hands them out as jobs to
one worker process per core as soon as it is made, largest first, and gives each picture when the
page asks for it; the page's tables are written meanwhile. The workers get the reports when they
start (inherited by forking, or pickled once per worker where processes are spawned), so a job is
only a name and positions, and only the PNGs travel back.

Forking a process that has loaded TensorFlow, torch or JAX is not safe
(:func:`runlens.processes.fork_is_safe`; a worker crashed so in a test session), and workers
started any other way would each import matplotlib and runlens first: in such a process -- a
notebook that trained a model -- every figure is drawn here, one after the other, when asked for;
the pictures are the same.

>>> with Figures([report], [[0, 3]]) as figures:               # doctest: +SKIP
...     figures.get(0, "overlay")
Picture(png='iVBORw0...', width=864, height=360)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from runlens.processes import fork_is_safe
from runlens.report.model import Report
from runlens.report.render import describe, describe_overview
from runlens.report.render.plots import Picture, run_plot
from runlens.report.render.sweep_plots import distribution_plot, frontier_plot, overlay_plot

_reports: Sequence[Report] = ()  # a worker's reports, set when it starts


def draw(reports: Sequence[Report], part: int, name: str, run: int = -1) -> Picture:
    """The figure ``name`` (``overlay``, ``distribution``, ``frontier``, or ``run`` for the plot
    of run number ``run``) of ``reports[part]``."""
    report = reports[part]
    s = report.settings
    if name == "overlay":
        return overlay_plot(report.runs, s)
    if name == "distribution":
        return distribution_plot(report.overview, describe_overview.distribution_titles(report))
    if name == "frontier":
        return frontier_plot(report.sweep, describe.grid_keys(report))
    return run_plot(report.runs[run], s)


def _start(reports: Sequence[Report]) -> None:
    global _reports
    _reports = reports


def _draw_here(part: int, name: str, run: int) -> Picture:
    return draw(_reports, part, name, run)


class Figures:
    """The figures of ``reports`` (a page's parts in order), with the runs drawn in detail of each
    (``detailed[part]``: positions in its ``runs``), started at once in ``workers`` processes
    (default: one per core, at most one per figure; 1, or a threaded library loaded: none)."""

    def __init__(
        self, reports: Sequence[Report], detailed: Sequence[Sequence[int]], *, workers: int | None = None
    ) -> None:
        self._reports = reports
        jobs = [
            (part, name, -1)
            for part in range(len(reports))
            for name in ("overlay", "frontier", "distribution")
        ]
        jobs[1:1] = [
            (part, "run", run) for part, runs in enumerate(detailed) for run in runs
        ]  # largest first
        if workers is None:
            workers = min(os.cpu_count() or 1, len(jobs)) if fork_is_safe() else 1
        self._pool = None
        self._futures: dict[tuple[int, str, int], Future] = {}
        if workers > 1:
            self._pool = ProcessPoolExecutor(workers, initializer=_start, initargs=(reports,))
            self._futures = {job: self._pool.submit(_draw_here, *job) for job in jobs}

    def get(self, part: int, name: str, run: int = -1) -> Picture:
        """The picture of figure ``name`` of part ``part`` (``run``: the run's position)."""
        future = self._futures.pop((part, name, run), None)
        return draw(self._reports, part, name, run) if future is None else future.result()

    def __enter__(self) -> Figures:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
