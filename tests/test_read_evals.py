"""read_evals on logs written by torch's SummaryWriter (the writer Lightning's TensorBoardLogger and
the HF Trainer use): evaluation rows, the window rule, NaN vs not logged, detection and the errors
that say what was found. Real framework fits are read in test_frameworks_e2e.py."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from torch.utils.tensorboard import SummaryWriter

import runlens


def write(folder, scalars: list[tuple[str, float, int]]) -> None:
    with SummaryWriter(str(folder)) as writer:
        for tag, value, step in scalars:
            writer.add_scalar(tag, value, step)


def column(frame: pd.DataFrame, name: str) -> list[float | None]:
    """Floats, None where not logged (NaN stays NaN)."""
    missing = frame[name].isna().tolist()
    return [
        None if m else v for m, v in zip(missing, frame[name].to_numpy(dtype=float, na_value=0.0).tolist())
    ]


@pytest.fixture
def stepped(tmp_path):
    """A generic run: val/loss at steps 9 and 19 (a NaN at 19), train/loss every step, lr at 0 and
    10, a tag once at step 3, another only after the last evaluation."""
    scalars = [("train/loss", 1.0 / (s + 1), s) for s in range(20)]
    scalars += [("lr", 0.5, 0), ("lr", 0.25, 10), ("once", 7.0, 3), ("late", 1.0, 25)]
    scalars += [("val/loss", 0.75, 9), ("val/loss", math.nan, 19), ("epoch", 0, 9), ("epoch", 1, 19)]
    write(tmp_path / "run", scalars)
    return tmp_path


def test_one_row_per_logged_value_of_the_monitor_and_values_attached_by_window(stepped):
    evals = runlens.read_evals(stepped, framework="generic", monitor="val/loss")
    assert list(evals.columns[:6]) == ["run", "framework", "eval", "step", "epoch", "wall_time"]
    assert evals["step"].tolist() == [9, 19] and evals["eval"].tolist() == [0, 1]
    assert evals["epoch"].tolist() == [0, 1] and evals["epoch"].dtype == "Int64"
    assert column(evals, "train/loss") == [
        float(np.float32(1 / 10)),
        float(np.float32(1 / 20)),
    ]  # last in window
    assert column(evals, "lr") == [0.5, 0.25]
    assert column(evals, "once") == [7.0, None]  # never carried into a later window
    assert "late" not in evals.columns  # logged after the last evaluation: in no window
    loss = column(evals, "val/loss")
    assert loss[0] == 0.75 and math.isnan(loss[1])  # a logged NaN is a value, not <NA>
    assert all(isinstance(evals[c].dtype, pd.Float64Dtype) for c in evals.columns[6:])
    assert evals.attrs["frameworks"] == {
        "run": {"framework": "generic", "why": "framework='generic' was passed"}
    }


def test_auto_reads_a_validation_tag_as_lightnings_checks(stepped):
    evals = runlens.read_evals(stepped)  # 'epoch' tag -> lightning; val/loss says validation
    assert evals["framework"].tolist() == ["lightning"] * 2 and evals["step"].tolist() == [9, 19]
    assert "tag 'epoch'" in evals.attrs["frameworks"]["run"]["why"]


def test_lightning_monitor_not_named_as_validation_adds_its_checks(tmp_path):
    write(tmp_path / "version_3", [("train_loss_epoch", 1.0, 3), ("train_loss_epoch", 0.5, 7)])
    with pytest.raises(runlens.RunlensError, match=r"no validation tag.*'train_loss_epoch'.*monitor="):
        runlens.read_evals(tmp_path)
    evals = runlens.read_evals(tmp_path, monitor="train_loss_epoch")
    assert evals["step"].tolist() == [3, 7] and evals["epoch"].isna().all()
    assert (
        evals.attrs["frameworks"]["version_3"]["why"] == "folder 'version_3' (Lightning's TensorBoardLogger)"
    )


def test_read_epochs_on_a_lightning_logdir_says_what_it_found(tmp_path):
    """It returned an empty frame without a word."""
    write(tmp_path / "lightning_logs" / "version_0", [("val_loss", 0.5, 3), ("epoch", 0, 3)])
    with pytest.raises(runlens.RunlensError, match=r"no per-epoch scalars.*'epoch', 'val_loss'.*read_evals"):
        runlens.read_epochs(tmp_path)


def test_read_epochs_warns_about_runs_it_leaves_out(tmp_path, keras_run, copy_logdir):
    root = copy_logdir(keras_run.path)
    write(root / "lightning_logs" / "version_0", [("val_loss", 0.5, 3), ("epoch", 0, 3)])
    with pytest.warns(runlens.RunlensWarning, match=r"'lightning_logs/version_0' hold no epoch_\* scalars"):
        epochs = runlens.read_epochs(root)
    assert set(epochs["run"]) == {"."}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras' own layout (hparams in the parent folder) is quiet
        runlens.read_epochs(keras_run.path)


def test_no_logdir_gives_an_empty_frame_silently(tmp_path):
    write(tmp_path / "a", [("loss", 1.0, 0), ("accuracy", 0.5, 0)])
    with pytest.raises(
        runlens.RunlensError, match=r"no evaluations found.*'a'.*'accuracy', 'loss'.*monitor="
    ):
        runlens.read_evals(tmp_path)
    with pytest.raises(runlens.RunlensError, match=r"no tag 'val_loss'.*monitor="):
        runlens.read_evals(tmp_path, monitor="val_loss")
    write(tmp_path / "runs" / "x", [("train/epoch", 1.0, 4), ("train/loss", 0.5, 4)])
    with pytest.raises(runlens.RunlensError, match=r"'x'.*no eval/\* tags.*eval_strategy"):
        runlens.read_evals(tmp_path / "runs")


def test_bad_options_are_errors_naming_them(stepped):
    for options, name in [
        (dict(framework="pytorch"), "framework"),
        (dict(framework="generic"), "monitor"),
        (dict(monitor=""), "monitor"),
        (dict(tags="val/*"), "tags="),
    ]:
        with pytest.raises(runlens.RunlensError, match=name):
            runlens.read_evals(stepped, **options)


def test_keras_runs_read_as_read_epochs(keras_sparse_validation_run):
    evals = runlens.read_evals(keras_sparse_validation_run.path)
    epochs = runlens.read_epochs(keras_sparse_validation_run.path)
    assert (evals["eval"] == epochs["epoch"]).all() and (evals["step"] == epochs["epoch"]).all()
    assert evals.drop(columns=["framework", "eval", "step"]).equals(epochs.astype({"epoch": "Int64"}))
    assert evals.attrs["frameworks"]["."]["framework"] == "keras"


@pytest.mark.parametrize("framework", ["lightning", "transformers", "generic"])
def test_step_logged_runs_in_folders_whose_names_are_not_utf8(tmp_path, framework):
    """A folder name that is not UTF-8 is kept as the OS gives it (a lone surrogate) in every
    framework's frame; step-logged runs used to fail with UnicodeEncodeError (pandas' Arrow strings)."""
    import os

    folder = os.fsdecode(b"version_0\xff")
    tags = {"lightning": "val_loss", "transformers": "eval/loss", "generic": "val/loss"}
    scalars = [
        (tags[framework], 0.5, 3),
        (tags[framework], 0.25, 7),
        ("epoch", 0, 3),
        ("train/epoch", 1.0, 7),
    ]
    write(tmp_path / "written", scalars)  # the writer refuses such a path: renamed after
    os.rename(tmp_path / "written", tmp_path / folder)
    monitor = None if framework == "transformers" else tags[framework]  # HF: every eval/* tag
    evals = runlens.read_evals(tmp_path, framework=framework, monitor=monitor)
    assert evals["run"].astype(object).tolist() == [folder, folder]
    assert evals["step"].tolist() == [3, 7]
    assert os.fsencode(evals["run"].iloc[0]) == b"version_0\xff"
