"""`runs=` / `--runs` select runs by the names runlens prints: a folder as read_scalars and ls name
it (`overfits/train`), or the run read_epochs, read_hparams and report merge Keras' folders into
(`overfits`). A name or glob that selects nothing is an error listing the runs there are."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


def test_the_name_read_epochs_prints_selects_that_run_everywhere():
    epochs = runlens.read_epochs(SAMPLE, runs="overfits")
    assert set(epochs["run"]) == {"overfits"}
    everything = runlens.read_epochs(SAMPLE)
    assert len(epochs) == (everything["run"] == "overfits").sum() == 30
    scalars = runlens.read_scalars(SAMPLE, runs="overfits")
    assert set(scalars["run"]) == {"overfits/train", "overfits/validation"}
    hparams = runlens.read_hparams(SAMPLE, runs="overfits")
    assert hparams["run"].tolist() == ["overfits"]


def test_a_folder_name_selects_only_that_folder():
    scalars = runlens.read_scalars(SAMPLE, runs="overfits/train")
    assert set(scalars["run"]) == {"overfits/train"}
    epochs = runlens.read_epochs(SAMPLE, runs="overfits/train")  # the run, without val_* values
    assert set(epochs["run"]) == {"overfits"} and "loss" in epochs and "val_loss" not in epochs


def test_globs_match_both_kinds_of_names():
    assert set(runlens.read_epochs(SAMPLE, runs="overfit?")["run"]) == {"overfits"}
    assert set(runlens.read_scalars(SAMPLE, runs="*/validation")["run"].unique()) == {
        f"{run}/validation" for run in runlens.read_epochs(SAMPLE)["run"].unique()
    }


@pytest.mark.parametrize("read", [runlens.read_scalars, runlens.read_epochs, runlens.read_hparams])
def test_a_name_that_selects_nothing_is_an_error_listing_the_runs(read):
    with pytest.raises(runlens.RunlensError) as error:
        read(SAMPLE, runs=["overfits", "overfit"])
    message = str(error.value)
    assert "runs='overfit'" in message and "'overfits'" not in message.split(";")[0]
    assert "overfits, overfits/train, overfits/validation" in message and "plateau" in message


def test_ls_and_export_select_the_same_way(tmp_path):
    result = CliRunner().invoke(main, ["ls", str(SAMPLE), "--runs", "overfits"])
    assert result.exit_code == 0 and "overfits/train" in result.output and "(nothing)" not in result.output
    assert "plateau" not in result.output
    out = tmp_path / "e.csv"
    result = CliRunner().invoke(
        main, ["export", str(SAMPLE), "--epochs", "--runs", "overfits", "-o", str(out)]
    )
    assert result.exit_code == 0 and "wrote 30 rows" in result.output
    typo = CliRunner().invoke(main, ["ls", str(SAMPLE), "--runs", "overfit"])
    assert typo.exit_code == 2 and typo.output.count("\n") == 1 and "the runs are: improving" in typo.output


def test_many_runs_are_listed_in_part(tmp_path):
    for i in range(30):
        (tmp_path / f"run{i:02d}").mkdir()
        (tmp_path / f"run{i:02d}" / "events.out.tfevents.1.host").write_bytes(b"")
    with pytest.raises(runlens.RunlensError, match=r"run00, run01, .*run11, \.\.\. \(18 more\)$"):
        runlens.read_scalars(tmp_path, runs="nope")
