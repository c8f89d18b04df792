"""validation_freq=2 with the bundle: epochs without ``val_loss`` are saved under the no-value name,
never ranked, kept only while they are the last; logs, replay and manifest keep NA apart."""

from __future__ import annotations

import numpy as np
import pandas
import pytest
from _bundle_fits import bundle_fit, checkpoint_name, expected_kept

import runlens

EPOCHS = 14
ES_ARGS = {"patience": 2}

# Keras' EarlyStopping warns at every epoch without val_loss: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Early stopping conditioned on metric")


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    return bundle_fit(
        tmp_path_factory.mktemp("sparse") / "run",
        epochs=EPOCHS,
        validation_freq=2,
        early_stopping=ES_ARGS,
        keep_best=2,
        keep_last=1,
    )


def _val_loss(fit) -> dict[int, float]:
    """val_loss per validated epoch, from what the callbacks saw (History lists them without
    their epochs)."""
    return {e: logs["val_loss"] for e, logs in fit.observed.logs.items() if "val_loss" in logs}


def test_validation_every_second_epoch_and_the_logs_keep_na_apart(fit):
    values = _val_loss(fit)
    assert sorted(values) == [e for e in fit.epochs if e % 2 == 1]
    assert list(values.values()) == fit.history["val_loss"]
    epochs = runlens.read_epochs(fit.run_dir)
    assert epochs["val_loss"].isna().tolist() == [e % 2 == 0 for e in fit.epochs]
    logged = epochs["val_loss"].to_numpy(dtype=float, na_value=np.nan)[1::2]
    assert np.array_equal(logged.astype(np.float32), np.float32(fit.history["val_loss"]))
    csv = pandas.read_csv(fit.run_dir / "history.csv")
    assert csv["val_loss"].isna().tolist() == [e % 2 == 0 for e in fit.epochs]


def test_unvalidated_epochs_are_saved_but_kept_only_while_last(fit):
    values = _val_loss(fit)
    for epoch, files in fit.observed.files.items():
        ranked = {e: v for e, v in values.items() if e <= epoch}
        kept = expected_kept(ranked, epoch, keep_best=2, keep_last=1) if ranked else {epoch}
        assert files == {checkpoint_name(e, values.get(e)) for e in kept}, epoch
    assert any("none" in name for name in fit.observed.files[0])


def test_every_name_parses_back_with_the_manifest_templates(fit):
    m = runlens.read_manifest(fit.run_dir)
    templates = [m["config"]["checkpoint_template"], m["config"]["checkpoint_template_no_value"]]
    table = runlens.read_checkpoints(fit.run_dir / "checkpoints", template=templates)
    assert table["epoch"].notna().all() and len(table) == len(fit.observed.files[fit.epochs[-1]])
    kept = {k["epoch"]: k["value"] for k in m["checkpoints"]["kept"]}
    assert kept == {e: _val_loss(fit).get(e) for e in table["epoch"]}


def test_replay_reproduces_the_live_stop_over_missing_epochs(fit):
    es = fit.callback("EarlyStopping")
    assert 0 < es.stopped_epoch < EPOCHS - 1
    m = runlens.read_manifest(fit.run_dir)
    policy = runlens.EarlyStopping(**m["config"]["early_stopping"])
    row = runlens.replay(runlens.read_epochs(fit.run_dir), policy).iloc[0]
    assert (row.stopped_epoch, row.best_epoch) == (es.stopped_epoch, es.best_epoch)
    assert (m["early_stopping"]["stopped_epoch"], m["early_stopping"]["best_epoch"]) == (
        es.stopped_epoch,
        es.best_epoch,
    )
    assert all("val_loss" not in e["logs"] for e in m["epochs"] if e["epoch"] % 2 == 0)
