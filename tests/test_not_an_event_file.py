"""A file given where a logdir or an event file is expected, that is no event file, is refused the
same way by every reader and command: "not an event file", the file named, exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import writers
from click.testing import CliRunner

import runlens
from runlens.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


@pytest.fixture
def not_events(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("these are my notes, not a TensorBoard log\n")
    return path


@pytest.mark.parametrize("read", [runlens.read_scalars, runlens.read_epochs, runlens.read_hparams])
def test_readers_refuse_it(read, not_events):
    with pytest.raises(runlens.RunlensError, match=f"^{not_events}: not an event file"):
        read(not_events)


@pytest.mark.parametrize(
    "args", [["ls"], ["report"], ["export", "-o", "x.csv"], ["export", "--epochs", "-o", "x.csv"]]
)
def test_commands_refuse_it_with_one_line_and_exit_2(args, not_events, tmp_path):
    result = CliRunner().invoke(main, [args[0], str(not_events), *args[1:]])
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {not_events}: not an event file (its name has no 'tfevents' and it does not start with "
        "a TFRecord); give a logdir or a TensorBoard event file\n"
    )


def test_a_renamed_event_file_is_still_read(tmp_path):
    original = next((SAMPLE / "overfits" / "train").glob("*tfevents*"))
    renamed = Path(shutil.copy(original, tmp_path / "train.log"))
    assert runlens.read_scalars(renamed)["value"].tolist() == runlens.read_scalars(original)["value"].tolist()


def test_a_damaged_file_named_like_an_event_file_is_damage_not_refused(tmp_path):
    garbage = writers.write_garbage(tmp_path, "events.out.tfevents.5.junk")
    with pytest.warns(runlens.DamagedDataWarning):
        frame = runlens.read_scalars(garbage)
    assert frame.empty and frame.attrs["problems"]
