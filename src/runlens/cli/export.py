"""``runlens export``: a logdir's scalars (or epochs) to csv, parquet or json, in a file or on stdout."""

from __future__ import annotations

import sys

import click

from runlens.cli.output import RUNS_HELP, say
from runlens.options import FRAME_FORMATS, STDOUT


@click.command("export")
@click.argument("path", type=click.Path())
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="File to write: .csv, .parquet or .json; '-' for stdout (csv unless --format).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FRAME_FORMATS),
    help="Output format.  [default: from the -o file's extension; csv on stdout]",
)
@click.option(
    "--epochs",
    "epochs",
    is_flag=True,
    help="Write the epoch frame (one row per run and epoch) instead of every scalar.",
)
@click.option("--runs", multiple=True, help=RUNS_HELP)
@click.option(
    "--cache", is_flag=True, help="Keep decoded files in ~/.cache/runlens: re-reads parse only what changed."
)
@click.option(
    "--tags", multiple=True, help="Only tags with this name or glob (repeatable; not with --epochs)."
)
def export_command(
    path: str,
    output: str,
    fmt: str | None,
    epochs: bool,
    runs: tuple[str, ...],
    cache: bool,
    tags: tuple[str, ...],
) -> None:
    """Write every scalar under PATH (long format: run, tag, step, wall_time, value) to a file.

    The format follows the extension (or --format); '-o -' writes csv (or --format json) to
    stdout, e.g. into pandas.read_csv or jq. With --epochs, write one row per (run, epoch) with
    Keras' metric names (loss, val_loss, ...) instead.

    \b
    Examples:
        runlens export sample_logs -o scalars.csv
        runlens export sample_logs --epochs -o epochs.parquet   # needs pyarrow
        runlens export sample_logs --epochs -o - --format json | jq '.[0]'
    """
    from runlens.epochs import read_epochs
    from runlens.events.logdir import read_scalars
    from runlens.export import check_writable, output_format, write_frame

    if epochs and tags:
        raise click.UsageError("--tags selects rows of the long frame; it cannot be combined with --epochs")
    to_stdout = output == STDOUT
    if to_stdout and fmt == "parquet":
        raise click.UsageError("parquet is a binary format: write it to a file (-o NAME.parquet)")
    fmt = fmt or ("csv" if to_stdout else output_format(output))
    check_writable(fmt, output)  # before any reading
    if epochs:
        frame = read_epochs(path, runs=runs or None, cache=cache)
    else:
        frame = read_scalars(path, runs=runs or None, tags=tags or None, cache=cache)
    if to_stdout:
        write_frame(frame, sys.stdout, format=fmt)
        return
    written = write_frame(frame, output, format=fmt)
    say(f"wrote {len(frame):,} rows to {written}")
