"""``runlens export``: a logdir's scalars (or epochs, or evaluations) to csv, parquet or json, in a file
or on stdout."""

from __future__ import annotations

import sys

import click

from runlens.cli.output import say
from runlens.cli.shared_options import CACHE, RUNS, format_option, framework_option, output_option
from runlens.options import FRAME_FORMATS, STDOUT


@click.command("export")
@click.argument("path", type=click.Path())
@output_option("File to write: .csv, .parquet or .json; '-' for stdout (csv unless --format).", required=True)
@format_option(FRAME_FORMATS, "from the -o file's extension; csv on stdout")
@click.option(
    "--epochs",
    "epochs",
    is_flag=True,
    help="Write the epoch frame (one row per run and epoch) instead of every scalar.",
)
@click.option(
    "--evals",
    "evals",
    is_flag=True,
    help="Write the evaluation frame (one row per run and evaluation: Keras epochs, Lightning "
    "validation checks, HF Trainer evaluations, or each value of --monitor) instead of every scalar.",
)
@framework_option("With --evals: read every run as this framework's (auto: each run by its layout).")
@click.option(
    "--monitor",
    metavar="TAG",
    help="With --evals: the tag whose every logged value is an evaluation of a run of no known "
    "framework (e.g. val/loss).",
)
@RUNS
@CACHE
@click.option(
    "--tags",
    multiple=True,
    help="Only tags with this name or glob (repeatable; not with --epochs or --evals).",
)
def export_command(
    path: str,
    output: str,
    fmt: str | None,
    epochs: bool,
    evals: bool,
    framework: str,
    monitor: str | None,
    runs: tuple[str, ...],
    cache: bool,
    tags: tuple[str, ...],
) -> None:
    """Write every scalar under PATH (long format: run, tag, step, wall_time, value) to a file.

    The format follows the extension (or --format); '-o -' writes csv (or --format json) to
    stdout, e.g. into pandas.read_csv or jq. With --epochs, write one row per (run, epoch) with
    Keras' metric names (loss, val_loss, ...) instead; with --evals, one row per (run,
    evaluation) of any framework (columns run, framework, eval, step, epoch, wall_time, then the
    metrics as that framework names them). A logdir that holds nothing to write is an error saying
    what was found, never an empty file.

    \b
    Examples:
        runlens export sample_logs -o scalars.csv
        runlens export sample_logs --epochs -o epochs.parquet   # needs pyarrow
        runlens export sample_logs --epochs -o - --format json | jq '.[0]'
        runlens export sample_logs --evals -o evals.csv
        runlens export runs/ --evals --monitor val/loss -o evals.csv   # plain PyTorch logs
    """
    from runlens.epochs import read_epochs
    from runlens.evals import read_evals
    from runlens.events.logdir import read_scalars
    from runlens.export import check_writable, output_format, write_frame

    if epochs and evals:
        raise click.UsageError("--epochs and --evals write different frames: give one of them")
    if (epochs or evals) and tags:
        flag = "--epochs" if epochs else "--evals"
        raise click.UsageError(f"--tags selects rows of the long frame; it cannot be combined with {flag}")
    if not evals and (monitor is not None or framework != "auto"):
        raise click.UsageError("--framework and --monitor choose how --evals reads runs: add --evals")
    to_stdout = output == STDOUT
    if to_stdout and fmt == "parquet":
        raise click.UsageError("parquet is a binary format: write it to a file (-o NAME.parquet)")
    fmt = fmt or ("csv" if to_stdout else output_format(output))
    check_writable(fmt, output)  # before any reading
    if epochs:
        frame = read_epochs(path, runs=runs or None, cache=cache)
    elif evals:
        frame = read_evals(path, framework=framework, monitor=monitor, runs=runs or None, cache=cache)
    else:
        frame = read_scalars(path, runs=runs or None, tags=tags or None, cache=cache)
    if to_stdout:
        write_frame(frame, sys.stdout, format=fmt)
        return
    written = write_frame(frame, output, format=fmt)
    say(f"wrote {len(frame):,} rows to {written}")
