"""Every public frame follows one convention (docs/reading.md, "Frames"): instants are datetime64[ns, UTC],
durations float64 seconds named *_s; `run` is a categorical holding only the runs with rows in the
long frames (read_scalars, read_epochs) and str in frames of one row per run or file. And
dir(runlens) lists the public API only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import runlens
import runlens.lightning

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
INSTANT = "datetime64[ns, UTC]"
INSTANTS = {"wall_time", "start", "end", "mtime", "saved_at"}


def frames() -> dict[str, pd.DataFrame]:
    scalars = runlens.read_scalars(SAMPLE)
    epochs = runlens.read_epochs(SAMPLE)
    checkpoints = runlens.read_checkpoints(SAMPLE)
    policy = runlens.EarlyStopping(patience=3)
    return {
        "read_scalars": scalars,
        "read_epochs": epochs,
        "read_evals": runlens.read_evals(SAMPLE),
        "epochs_from_scalars": runlens.epochs_from_scalars(scalars),
        "summarize_scalars": runlens.summarize_scalars(scalars),
        "summarize_scalars(by_tag)": runlens.summarize_scalars(scalars, by_tag=True),
        "read_checkpoints": checkpoints,
        "plan_prune": runlens.plan_prune(checkpoints, rules=[runlens.KeepBestK(1, "val_loss")], min_age=0),
        "read_hparams": runlens.read_hparams(SAMPLE),
        "replay": runlens.replay(epochs, policy, lr_policy=runlens.ReduceLROnPlateau()),
        "sweep": runlens.sweep(epochs, patience=[1, 3]).table,
        "replay(read_evals)": runlens.replay(
            runlens.read_evals(SAMPLE / "lightning"), runlens.lightning.EarlyStopping("val_loss")
        ),
    }


@pytest.fixture(scope="module")
def every_frame():
    return frames()


def test_every_time_column_of_every_public_frame_follows_the_convention(every_frame):
    seen = set()
    for name, frame in every_frame.items():
        for column in frame.columns:
            if column in INSTANTS:
                assert str(frame[column].dtype) == INSTANT, (name, column, frame[column].dtype)
                seen.add(column)
            elif str(column).endswith("_s"):
                assert frame[column].dtype == "float64", (name, column, frame[column].dtype)
                seen.add(column)
    assert seen == INSTANTS | {"duration_s", "time_saved_s"}


def test_instants_are_the_times_written(every_frame):
    scalars = every_frame["read_scalars"]
    manifest = runlens.read_manifest(SAMPLE / "overfits")  # Unix seconds, written by the bundle
    epochs = every_frame["read_epochs"]
    last = epochs[epochs.run == "overfits"]["wall_time"].max()
    assert abs(last.timestamp() - manifest["epochs"][-1]["wall_time"]) < 1  # same epoch end
    assert scalars["wall_time"].min().year >= 2024
    checkpoints = every_frame["read_checkpoints"]
    known = checkpoints["saved_at"].notna()  # .keras metadata.json says when; .ckpt/HF folders do not
    assert known[checkpoints["kind"] == "keras"].all()
    assert (
        checkpoints["mtime"][known] >= checkpoints["saved_at"][known]
    ).all()  # saved (to the second), then copied


def test_run_is_categorical_of_the_runs_with_rows_in_the_long_frames(every_frame):
    for name in ("read_scalars", "read_epochs", "epochs_from_scalars", "read_evals"):
        run = every_frame[name]["run"]
        assert isinstance(run.dtype, pd.CategoricalDtype), name
        assert sorted(run.cat.categories) == sorted(run.unique()), name  # no empty category
    assert "overfits" not in every_frame["read_scalars"]["run"].cat.categories  # hparams only
    for name in ("read_hparams", "replay", "read_checkpoints"):
        assert not isinstance(every_frame[name]["run"].dtype, pd.CategoricalDtype), name


def test_an_epoch_frame_with_float_wall_times_still_replays():
    """Frames built by hand (floats, as before) are accepted by the policies."""
    epochs = runlens.read_epochs(SAMPLE)
    hand = epochs.assign(wall_time=epochs["wall_time"].astype("int64") / 1e9, run=epochs["run"].astype(str))
    policy = runlens.EarlyStopping(patience=3)
    pd.testing.assert_series_equal(
        runlens.replay(hand, policy)["time_saved_s"], runlens.replay(epochs, policy)["time_saved_s"]
    )


def test_dir_lists_only_the_public_api():
    import runlens.cli  # submodules imported so far are no public names

    assert dir(runlens) == sorted(runlens.__all__)
    assert not {"Any", "annotations", "importlib", "cli", "errors"} & set(dir(runlens))


def test_exports_keep_times_readable(tmp_path):
    import json

    out = tmp_path / "e.json"
    runlens.write_frame(runlens.read_epochs(SAMPLE), out)
    first = json.loads(out.read_text())[0]["wall_time"]
    assert first.endswith("+00:00") and pd.Timestamp(first) == runlens.read_epochs(SAMPLE)["wall_time"][0]
