"""Files within --min-age are held back because training may still be writing them -- except in
runs whose runlens.json says training ended normally: nothing is writing those. So right after a
clone (git dates every file at checkout) the sample's report and prune show a real plan."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from runlens.cli import main
from runlens.manifest import ended_runs

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
PRUNE = ["--keep-best", "3", "--monitor", "val_loss", "--keep-last", "1"]


@pytest.fixture
def fresh_clone(tmp_path):
    """The sample as a fresh clone has it: every file modified just now."""
    root = Path(
        shutil.copytree(SAMPLE, tmp_path / "sample_logs", ignore=shutil.ignore_patterns("__pycache__"))
    )
    now = time.time()
    for path in root.rglob("*"):
        os.utime(path, (now, now))
    return root


def mark_running(run: Path) -> None:
    """The manifest a fit in progress (or one that died) leaves."""
    manifest = json.loads((run / "runlens.json").read_text())
    manifest.update(status="running", ended_normally=False, ended_at=None)
    (run / "runlens.json").write_text(json.dumps(manifest))


def test_a_finished_runs_fresh_checkpoints_are_planned_at_once(fresh_clone):
    result = CliRunner().invoke(main, ["checkpoints", "prune", str(fresh_clone / "unpruned"), *PRUNE])
    assert result.exit_code == 0, result.output
    assert "would delete 8 of 12 checkpoints" in result.output and "min-age" not in result.output
    report = CliRunner().invoke(main, ["report", str(fresh_clone)])
    # The Keras part: its runs' runlens.json say training ended. (The Lightning and HF sample runs
    # have no runlens.json: their fresh checkpoints are kept as maybe still written, a limitation
    # the docs state.)
    keras_part = report.output.split("\nrunlens report: ", 1)[0]
    assert "delete 8, free 172.0 KiB" in keras_part and "modified within" not in keras_part


def test_a_run_still_training_keeps_its_fresh_checkpoints(fresh_clone):
    mark_running(fresh_clone / "unpruned")
    result = CliRunner().invoke(main, ["checkpoints", "prune", str(fresh_clone / "unpruned"), *PRUNE])
    assert result.exit_code == 0, result.output
    assert "would delete 0 of 12 checkpoints" in result.output
    assert result.output.count("modified within min-age (300s): may still be written") == 12
    settled = CliRunner().invoke(
        main, ["checkpoints", "prune", str(fresh_clone / "unpruned"), *PRUNE, "--min-age", "0"]
    )
    assert "would delete 8 of 12 checkpoints" in settled.output


def test_ended_runs_reads_each_runs_manifest(fresh_clone):
    (fresh_clone / "overfits" / "runlens.json").write_text("{not json")  # damaged: min-age holds
    mark_running(fresh_clone / "plateau")
    runs = ["improving", "overfits", "plateau", "sparse_validation", "unpruned", "no_such_run"]
    assert ended_runs(fresh_clone, runs) == {"improving", "sparse_validation", "unpruned"}
    assert ended_runs(fresh_clone / "unpruned", ["."]) == {"."}  # the run folder given
    assert ended_runs(fresh_clone / "unpruned" / "checkpoints", ["."]) == {"."}  # its checkpoints/
