"""Output files of `runlens export` and `runlens report`: the format follows the extension, an
extension that names no format is an error (exit 2, the formats listed, nothing written, nothing
read), and '-' is standard output (export: csv, or json with --format)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("name", ["report.pdf", "report", "report.html.bak"])
def test_a_report_file_whose_extension_names_no_format_is_refused(tmp_path, name):
    result = invoke("report", "/no/such/logdir", "-o", tmp_path / name)  # refused before reading
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert ".txt, .md, .markdown, .json, .html or .htm" in result.output and "--format" in result.output
    assert not (tmp_path / name).exists()


def test_a_report_with_an_explicit_format_goes_to_any_file_name(tmp_path):
    out = tmp_path / "report.out"
    result = invoke("report", SAMPLE, "--format", "markdown", "-o", out, "--no-checkpoints")
    assert result.exit_code == 0 and out.read_text().startswith("# runlens report")


def test_a_report_to_dash_goes_to_stdout():
    to_dash = invoke("report", SAMPLE, "-o", "-", "--no-checkpoints", "--format", "json")
    plain = invoke("report", SAMPLE, "--no-checkpoints", "--format", "json")
    assert to_dash.exit_code == 0 and json.loads(to_dash.stdout)["runs"]
    assert _without_times(to_dash.stdout) == _without_times(plain.stdout)
    assert not Path("-").exists()


def _without_times(document: str) -> dict:
    parsed = json.loads(document)
    return {k: v for k, v in parsed.items() if k != "runlens_version"}


def test_export_to_dash_writes_csv_that_pandas_reads_back():
    result = invoke("export", SAMPLE, "-o", "-")
    assert result.exit_code == 0 and result.stderr == ""
    back = pd.read_csv(io.StringIO(result.stdout))
    frame = runlens.read_scalars(SAMPLE)
    assert back["run"].tolist() == frame["run"].astype(str).tolist()
    np.testing.assert_array_equal(back["value"].to_numpy(), frame["value"].to_numpy())


def test_export_epochs_to_dash_as_json_keeps_not_logged_as_null():
    result = invoke("export", SAMPLE, "--epochs", "-o", "-", "--format", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    frame = runlens.read_epochs(SAMPLE)
    assert len(rows) == len(frame)
    sparse = [r for r in rows if r["run"] == "sparse_validation"]
    assert [r["val_loss"] is None for r in sparse] == frame.loc[
        frame.run == "sparse_validation", "val_loss"
    ].isna().tolist()
    assert any(r["val_loss"] is None for r in sparse)


def test_export_format_overrides_the_extension(tmp_path):
    out = tmp_path / "scalars.txt"
    assert invoke("export", SAMPLE, "-o", out, "--format", "json").exit_code == 0
    assert len(json.loads(out.read_text())) == len(runlens.read_scalars(SAMPLE))


def test_parquet_without_pyarrow_names_the_extra_before_reading(tmp_path):
    """pyarrow is the optional [parquet] extra: without it (hidden from this interpreter, as if not
    installed) the export stops before reading anything and says what to install."""
    code = f"""
import sys
sys.modules["pyarrow"] = sys.modules["fastparquet"] = None  # as if neither were installed
from runlens.cli import main
main(["export", "/no/such/logdir", "-o", {str(tmp_path / "x.parquet")!r}], prog_name="runlens")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"Error: {tmp_path / 'x.parquet'}: writing parquet needs pyarrow (pip install 'runlens-ml[parquet]')\n"
    )
    assert not (tmp_path / "x.parquet").exists()
