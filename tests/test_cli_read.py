"""`runlens ls` and `runlens export` through click's CliRunner, and the CLI's error contract."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import writers
from click.testing import CliRunner

import runlens
from runlens.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_ls_lists_runs_points_and_steps(simple_value_logdir):
    result = invoke("ls", simple_value_logdir.path)
    assert result.exit_code == 0
    frame = runlens.read_scalars(simple_value_logdir.path)
    for run, rows in frame.groupby("run", observed=True):
        line = next(line for line in result.output.splitlines() if line.split()[0] == run)
        assert f" {len(rows)} " in f" {line} "
        assert str(rows["step"].max()) in line
    assert f"{len(frame):,} points" in result.output


def test_ls_tags_and_problems(simple_value_logdir, copy_logdir):
    path = copy_logdir(simple_value_logdir.path)
    garbage = writers.write_garbage(path / "raw", "events.out.tfevents.5.junk")
    result = CliRunner().invoke(main, ["ls", str(path), "--tags", "--runs", "raw"])
    assert result.exit_code == 0
    assert "loss/double_val" in result.output
    assert "tensorboardX" not in result.output
    assert str(garbage) in result.output and "problem" in result.output


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_export_writes_every_scalar(simple_value_logdir, tmp_path, suffix):
    out = tmp_path / f"scalars{suffix}"
    result = invoke("export", simple_value_logdir.path, "-o", out)
    assert result.exit_code == 0, result.output
    frame = runlens.read_scalars(simple_value_logdir.path)
    if suffix == ".csv":
        back = pd.read_csv(out)
    elif suffix == ".parquet":
        back = pd.read_parquet(out)
    else:
        back = pd.DataFrame(json.loads(out.read_text()))
        back["value"] = back["value"].map(
            lambda v: float(v) if not isinstance(v, str) else float(v.lower().replace("infinity", "inf"))
        )
    assert len(back) == len(frame)
    assert back["step"].tolist() == frame["step"].tolist()
    np.testing.assert_array_equal(back["value"].to_numpy(dtype=float), frame["value"].to_numpy())


def test_export_epochs_keeps_nan_apart_from_not_logged(keras_sparse_validation_run, tmp_path):
    csv = tmp_path / "epochs.csv"
    assert invoke("export", keras_sparse_validation_run.path, "--epochs", "-o", csv).exit_code == 0
    lines = csv.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("val_loss")
    cells = [line.split(",")[column] for line in lines[1:]]
    assert cells[0] == "" and cells[1] not in ("", "nan")  # not logged is an empty cell
    parquet = tmp_path / "epochs.parquet"
    assert invoke("export", keras_sparse_validation_run.path, "--epochs", "-o", parquet).exit_code == 0
    table = pq.read_table(parquet)
    assert table.column("val_loss").null_count == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["ls", "/no/such/logdir"], "no such file or folder"),
        (["export", "/no/such/logdir", "-o", "x.csv"], "no such file or folder"),
        (["export", ".", "-o", "x.xlsx"], "no output format has the extension '.xlsx'"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_an_empty_logdir_says_so(tmp_path):
    result = CliRunner().invoke(main, ["ls", str(tmp_path)])
    assert result.exit_code == 2 and "no event files" in result.output


def _commands(group, prefix=()):
    import click

    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_command_has_help_with_an_example():
    assert CliRunner().invoke(main, ["--help"]).exit_code == 0
    for path, _command in _commands(main):
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, path
        assert "Example" in result.output, f"`runlens {' '.join(path)} --help` has no example"


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and runlens.__version__ in result.output


def test_names_with_terminal_escapes_are_printed_harmlessly(tmp_path):
    """Run and tag names come from files anyone can write: an ESC in one must not reach the terminal."""
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "run\x1b[2J")) as writer:
        writer.add_scalar("epoch_loss\x07", 1.0, 0)
    for args in (
        ["ls", str(tmp_path), "--tags"],
        ["report", str(tmp_path), "--monitor", "loss\x07", "--no-checkpoints"],
    ):
        result = CliRunner().invoke(main, args)
        assert "\x1b" not in result.output and "\x07" not in result.output, args
        assert "\\x1b" in result.output or "\\x07" in result.output
