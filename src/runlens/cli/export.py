"""``runlens export``: a logdir's scalars (or epochs) to csv, parquet or json."""

from __future__ import annotations

import click

from runlens.cli.output import say
from runlens.epochs import read_epochs
from runlens.events.logdir import read_scalars
from runlens.export import output_format, write_frame


@click.command("export")
@click.argument("path", type=click.Path())
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="File to write: .csv, .parquet or .json.",
)
@click.option(
    "--epochs",
    "epochs",
    is_flag=True,
    help="Write the epoch frame (one row per run and epoch) instead of every scalar.",
)
@click.option("--runs", multiple=True, help="Only runs with this name or glob (repeatable).")
@click.option(
    "--cache", is_flag=True, help="Keep decoded files in ~/.cache/runlens: re-reads parse only what changed."
)
@click.option(
    "--tags", multiple=True, help="Only tags with this name or glob (repeatable; not with --epochs)."
)
def export_command(
    path: str, output: str, epochs: bool, runs: tuple[str, ...], cache: bool, tags: tuple[str, ...]
) -> None:
    """Write every scalar under PATH (long format: run, tag, step, wall_time, value) to a file.

    The format follows the extension. With --epochs, write one row per (run, epoch) with Keras'
    metric names (loss, val_loss, ...) instead.

    \b
    Examples:
        runlens export sample_logs -o scalars.parquet
        runlens export sample_logs --epochs -o epochs.csv
    """
    if epochs and tags:
        raise click.UsageError("--tags selects rows of the long frame; it cannot be combined with --epochs")
    output_format(output)
    if epochs:
        frame = read_epochs(path, runs=runs or None, cache=cache)
    else:
        frame = read_scalars(path, runs=runs or None, tags=tags or None, cache=cache)
    written = write_frame(frame, output)
    say(f"wrote {len(frame):,} rows to {written}")
