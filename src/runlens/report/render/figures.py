"""Every figure of an HTML report, drawn in worker processes while the page's text is laid out.

A page has, per part (the report, then each :attr:`Report.parts`), the overlay of every run's
curve, the two histograms and the frontier: about 1.5 s of matplotlib on one core at 2,000 runs,
plus 0.2-0.7 s to import it (the detailed runs' plots are inline SVG, made with the page's text:
:mod:`~runlens.report.render.run_plots`). :class:`Figures` hands them out as jobs to one worker
process per core as soon as it is made, largest first, and gives each picture when the page asks
for it: the page's text is laid out meanwhile. Each job carries what its figure is drawn from
(:func:`figure_args`: the overlay every run's monitored curve and stop, 1 MB pickled at 2,000
runs). The workers can be started before the report is built (:func:`figure_workers`): one
imports matplotlib and draws a first figure at a lower priority (:func:`_warm_up`), on the core
the build leaves idle once its files are read, and is then forked into the others
(:class:`~runlens.processes.ForkedPool`, on Linux): matplotlib's import, ~0.7 s of a core, is
paid once, not once per worker.

Forking a process that has loaded TensorFlow, torch or JAX is not safe
(:func:`runlens.processes.fork_is_safe`; a worker crashed so in a test session), and workers
started any other way would each import matplotlib and runlens first: in such a process -- a
notebook that trained a model -- every figure is drawn here, one after the other, when asked for;
the pictures are the same.

>>> with Figures([report]) as figures:                          # doctest: +SKIP
...     figures.get(0, "overlay")
Picture(png='iVBORw0...', width=864, height=360)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from typing import Any

from runlens.processes import can_start_workers, fork_is_safe, started_workers
from runlens.report.model import Report
from runlens.report.render import describe, describe_overview
from runlens.report.render.plots import RC, Picture, figure, log_axis, picture
from runlens.report.render.sweep_plots import distribution_plot, frontier_plot, overlay_plot


def figure_args(report: Report, name: str) -> tuple:
    """What figure ``name`` of ``report`` is drawn from: a job's arguments, sent to the worker
    that draws it."""
    s = report.settings
    if name == "overlay":  # what it draws of each run: 1 MB pickled at 2,000 runs, not 3 MB of records
        return ([r.curves.get(s.monitor, []) for r in report.runs], [r.stopped_epoch for r in report.runs], s)
    if name == "distribution":
        return (report.overview, describe_overview.distribution_titles(report))
    return (report.sweep, describe.grid_keys(report))  # the frontier


_DRAW = {
    "overlay": overlay_plot,
    "distribution": distribution_plot,
    "frontier": frontier_plot,
}


def draw(name: str, *args: Any) -> Picture:
    """Figure ``name`` drawn from :func:`figure_args`' arguments (here or in a worker)."""
    return _DRAW[name](*args)


def _warm_up() -> None:
    """A worker's start, while the report is built: matplotlib imported and a first figure drawn
    and dropped (a worker's first figure costs 0.1 s more than the next: fonts, glyph caches,
    PIL's encoder), at a lower priority (``nice`` 10): done with the cores the report's build
    leaves idle (the build is single-threaded once its files are read), not taken from it."""
    from matplotlib import rc_context

    os.nice(10)
    with rc_context(RC):
        fig, (ax, ax_log) = figure(2, height=100)
        ax.plot([1, 2], [1, 2], marker=".", label="warm-up")
        ax.legend()
        ax_log.step([1, 2], [1e-3, 1e-2])
        log_axis(ax_log)
        for a in (ax, ax_log):
            a.set_title("warm-up")
            a.grid()
        picture(fig)


def figure_workers(workers: int | None = None) -> Executor | None:
    """Worker processes for an HTML report's figures (``workers``: default one per core), warmed
    up as they start (:func:`_warm_up`): on Linux, one worker warms up and is forked into the
    others (:class:`~runlens.processes.ForkedPool`: matplotlib imported once, not once per
    worker); elsewhere each warms up on its own. Started before the report is built (as
    ``runlens report -o r.html`` does), they are ready when it is; None where this process draws
    its figures itself (one core, a threaded library loaded -- see the module docstring -- or this
    process a daemonic one, :func:`~runlens.processes.can_start_workers`)."""
    count = (os.cpu_count() or 1) if workers is None else workers
    if count < 2 or not fork_is_safe() or not can_start_workers():
        return None
    return started_workers(count, _warm_up)


class Figures:
    """The figures of ``reports`` (a page's parts in order), started at once in ``workers``: a pool of
    :func:`figure_workers`, or how many to start (default: one per core, at most one per figure;
    1, or a threaded library loaded: none, each figure is drawn here when asked for)."""

    def __init__(
        self,
        reports: Sequence[Report],
        *,
        workers: int | Executor | None = None,
    ) -> None:
        self._reports = reports
        # largest first (2,000 runs: overlay 0.7 s, frontier 0.6, distribution 0.2)
        names = ("overlay", "frontier", "distribution")
        jobs = [(part, name) for name in names for part in range(len(reports))]
        self._owned = None
        pool = workers if isinstance(workers, Executor) else None
        if pool is None and len(jobs) > 1:
            pool = self._owned = figure_workers(None if workers is None else min(workers, len(jobs)))
        self._futures: dict[tuple[int, str], Future] = {}
        if pool is not None:
            for part, name in jobs:
                self._futures[(part, name)] = pool.submit(draw, name, *figure_args(reports[part], name))

    def get(self, part: int, name: str) -> Picture:
        """The picture of figure ``name`` of part ``part``."""
        future = self._futures.pop((part, name), None)
        if future is None:
            return draw(name, *figure_args(self._reports[part], name))
        return future.result()

    def __enter__(self) -> Figures:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._owned is not None:
            self._owned.shutdown(cancel_futures=True)
