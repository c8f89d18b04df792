"""``runlens ls``: what a logdir holds."""

from __future__ import annotations

import click

from runlens.cli.output import echo_frame, echo_problems, say
from runlens.cli.shared_options import CACHE, RUNS


@click.command("ls")
@click.argument("path", type=click.Path())
@click.option("--tags", "by_tag", is_flag=True, help="One line per run and tag instead of per run.")
@RUNS
@CACHE
def ls_command(path: str, by_tag: bool, runs: tuple[str, ...], cache: bool) -> None:
    """List the runs under PATH: tags, points, step range, time span, and any damaged files.

    \b
    Examples:
        runlens ls sample_logs
        runlens ls sample_logs --tags --runs overfits
        runlens ls s3://bucket/logs --cache
    """
    from runlens.events.logdir import read_scalars
    from runlens.events.summary import summarize_scalars

    scalars = read_scalars(path, runs=runs or None, cache=cache)
    summary = summarize_scalars(scalars, by_tag=by_tag)
    echo_frame(summary.assign(start=summary["start"].dt.floor("s"), end=summary["end"].dt.floor("s")))
    say("", f"{len(scalars):,} points in {scalars['run'].nunique()} run(s)")
    echo_problems(scalars.attrs["problems"])
