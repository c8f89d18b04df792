"""Every figure of an HTML report, drawn in worker processes while the page's text is laid out.

A page has, per part (the report, then each :attr:`Report.parts`), the overlay of every run's
curve, the two histograms, the frontier, and a plot per detailed run: about 1.5 s of matplotlib
on one core at 2,000 runs, plus 0.27 s to import it. :class:`Figures` hands them out as jobs to
one worker process per core as soon as it is made, largest first, and gives each picture when the
page asks for it; the page's tables are written meanwhile. Each job carries what its figure is
drawn from (:func:`figure_args`: the overlay all runs' records, 3 MB pickled at 2,000 runs, a run
plot one record). The workers can be started before the report is built
(:func:`figure_workers`): they import matplotlib while this process builds it.

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


def figure_args(report: Report, name: str, run: int = -1) -> tuple:
    """What figure ``name`` of ``report`` is drawn from (``run``: the position of the run whose
    plot it is): a job's arguments, sent to the worker that draws it."""
    s = report.settings
    if name == "overlay":
        return (report.runs, s)
    if name == "distribution":
        return (report.overview, describe_overview.distribution_titles(report))
    if name == "frontier":
        return (report.sweep, describe.grid_keys(report))
    return (report.runs[run], s)


_DRAW = {
    "overlay": overlay_plot,
    "distribution": distribution_plot,
    "frontier": frontier_plot,
    "run": run_plot,
}


def draw(name: str, *args: Any) -> Picture:
    """Figure ``name`` drawn from :func:`figure_args`' arguments (here or in a worker)."""
    return _DRAW[name](*args)


def _import_matplotlib() -> None:
    import matplotlib.backends.backend_agg  # noqa: F401 -- a worker's start: ready when the jobs come


def figure_workers(workers: int | None = None) -> ProcessPoolExecutor | None:
    """Worker processes for an HTML report's figures, each importing matplotlib as it starts
    (``workers``: default one per core). Started before the report is built (as ``runlens report
    -o r.html`` does), they are ready when it is; None where this process draws its figures
    itself (one core, or a threaded library loaded: see the module docstring)."""
    count = (os.cpu_count() or 1) if workers is None else workers
    if count < 2 or not fork_is_safe():
        return None
    pool = ProcessPoolExecutor(count, initializer=_import_matplotlib)
    for _ in range(count):
        pool.submit(int)  # workers start on the first job: start them now
    return pool


class Figures:
    """The figures of ``reports`` (a page's parts in order), with the runs drawn in detail of each
    (``detailed[part]``: positions in its ``runs``), started at once in ``workers``: a pool of
    :func:`figure_workers`, or how many to start (default: one per core, at most one per figure;
    1, or a threaded library loaded: none, each figure is drawn here when asked for)."""

    def __init__(
        self,
        reports: Sequence[Report],
        detailed: Sequence[Sequence[int]],
        *,
        workers: int | ProcessPoolExecutor | None = None,
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
        self._owned = None
        pool = workers if isinstance(workers, ProcessPoolExecutor) else None
        if pool is None and len(jobs) > 1:
            pool = self._owned = figure_workers(None if workers is None else min(workers, len(jobs)))
        self._futures: dict[tuple[int, str, int], Future] = {}
        if pool is not None:
            for part, name, run in jobs:
                args = figure_args(reports[part], name, run)
                self._futures[(part, name, run)] = pool.submit(draw, name, *args)

    def get(self, part: int, name: str, run: int = -1) -> Picture:
        """The picture of figure ``name`` of part ``part`` (``run``: the run's position)."""
        future = self._futures.pop((part, name, run), None)
        if future is None:
            return draw(name, *figure_args(self._reports[part], name, run))
        return future.result()

    def __enter__(self) -> Figures:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._owned is not None:
            self._owned.shutdown(cancel_futures=True)
