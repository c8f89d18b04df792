"""A real fit that early-stops with the bundle: logs, replay, retained checkpoints, manifest, CSV."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas
import pytest
from _bundle_fits import bundle_fit, checkpoint_name, expected_kept

import runlens

EPOCHS = 40
ES_ARGS = {"patience": 3, "restore_best_weights": True}
HPARAMS = {"units": 16, "optimizer": "adam", "dropout": 0.0, "batchnorm": False}


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    return bundle_fit(
        tmp_path_factory.mktemp("early_stop") / "run",
        epochs=EPOCHS,
        early_stopping=ES_ARGS,
        keep_best=2,
        keep_last=1,
        hparams=HPARAMS,
    )


def _f32(values):
    return np.asarray(values, dtype=np.float32)


def test_the_fit_stopped_early_after_overfitting(fit):
    es = fit.callback("EarlyStopping")
    assert 0 < es.stopped_epoch < EPOCHS - 1
    assert len(fit.history["loss"]) == es.stopped_epoch + 1
    assert es.best_epoch < es.stopped_epoch  # the best is behind: something to restore


def test_logs_read_back_equal_history_in_float32(fit):
    epochs = runlens.read_epochs(fit.run_dir)
    assert list(epochs["run"].unique()) == ["."]
    assert list(epochs["epoch"]) == fit.epochs
    for key, values in fit.history.items():
        logged = epochs[key].to_numpy(dtype=float, na_value=np.nan)
        assert np.array_equal(_f32(logged), _f32(values)), key
    # TensorBoard runs first in the bundle: it logs the rate used during each epoch.
    used = [fit.observed.rate_used[e] for e in fit.epochs]
    assert np.array_equal(_f32(epochs["learning_rate"].to_numpy(dtype=float)), _f32(used))


def test_replay_with_the_same_settings_reproduces_the_live_stop(fit):
    es = fit.callback("EarlyStopping")
    manifest = runlens.read_manifest(fit.run_dir)
    policy = runlens.EarlyStopping(**manifest["config"]["early_stopping"])
    row = runlens.replay(runlens.read_epochs(fit.run_dir), policy).iloc[0]
    assert (row.stopped_epoch, row.best_epoch, row.restored_epoch) == (
        es.stopped_epoch,
        es.best_epoch,
        es.best_epoch,
    )
    # Keras' wait counter, recorded per epoch in the manifest, is the replay's one.
    replayed = policy.replay(fit.history["val_loss"])
    assert tuple(e["early_stopping"]["wait"] for e in manifest["epochs"]) == replayed.wait


def test_only_the_best_k_and_the_last_checkpoints_remain_at_every_epoch(fit):
    values = dict(enumerate(fit.history["val_loss"]))
    for epoch, files in fit.observed.files.items():
        so_far = {e: v for e, v in values.items() if e <= epoch}
        expected = expected_kept(so_far, epoch, keep_best=2, keep_last=1)
        assert files == {checkpoint_name(e, values[e]) for e in expected}, epoch
    final = {p.name for p in (fit.run_dir / "checkpoints").glob("*.keras")}
    assert final == fit.observed.files[fit.epochs[-1]]
    assert len(final) == 3  # best two + the last one, which is neither


def test_the_best_checkpoint_holds_the_weights_early_stopping_restored(fit):
    import keras

    best = fit.callback("EarlyStopping").best_epoch
    path = fit.run_dir / "checkpoints" / checkpoint_name(best, fit.history["val_loss"][best])
    saved = keras.saving.load_model(path).get_weights()
    restored = fit.model.get_weights()
    assert len(saved) == len(restored)
    assert all(np.array_equal(a, b) for a, b in zip(saved, restored))


def test_read_checkpoints_finds_the_layout_and_ranks_with_full_precision_logs(fit):
    table = runlens.read_checkpoints(fit.run_dir)  # no template, no logdir: found by the layout
    assert set(table["run"]) == {"."} and table["valid"].all()
    assert (table["metrics_from"] == "logs").all()
    expected = _f32([fit.history["val_loss"][e] for e in table["epoch"]])
    assert np.array_equal(_f32(table["val_loss"].to_numpy(dtype=float)), expected)


def test_manifest_says_what_happened(fit):
    import keras

    m = runlens.read_manifest(fit.run_dir)
    es = fit.callback("EarlyStopping")
    assert (m["status"], m["ended_normally"]) == ("stopped_early", True)
    assert m["epochs_trained"] == len(fit.epochs) and m["last_epoch"] == fit.epochs[-1]
    assert [e["epoch"] for e in m["epochs"]] == fit.epochs
    for entry in m["epochs"]:
        assert entry["logs"] == {k: v[entry["epoch"]] for k, v in fit.history.items()}
        assert entry["learning_rate"] == fit.observed.rate_used[entry["epoch"]]
    assert m["early_stopping"] == {
        "stopped_epoch": es.stopped_epoch,
        "best_epoch": es.best_epoch,
        "best_value": fit.history["val_loss"][es.best_epoch],
        "restored": True,
        "restored_epoch": es.best_epoch,
    }
    assert m["reduce_lr"] is None
    kept = {k["path"].split("/")[-1] for k in m["checkpoints"]["kept"]}
    assert kept == fit.observed.files[fit.epochs[-1]]
    assert m["config"]["early_stopping"] == {"monitor": "val_loss", "mode": "auto", **ES_ARGS}
    assert (m["config"]["keep_best"], m["config"]["keep_last"], m["config"]["direction"]) == (2, 1, "min")
    assert m["hparams"] == HPARAMS
    assert m["versions"]["keras"] == keras.__version__ and m["versions"]["runlens"] == runlens.__version__
    times = [dt.datetime.fromisoformat(m[k]) for k in ("started_at", "ended_at", "updated_at")]
    assert times == sorted(times) and all(t.utcoffset() == dt.timedelta(0) for t in times)
    assert [(a["initial_epoch"], a["ended_normally"]) for a in m["attempts"]] == [(0, True)]


def test_history_csv_is_history(fit):
    csv = pandas.read_csv(fit.run_dir / "history.csv")
    assert list(csv["epoch"]) == fit.epochs
    for key, values in fit.history.items():
        assert csv[key].tolist() == values, key  # CSVLogger writes floats at full precision


def test_hparams_round_trip_through_read_hparams(fit):
    hp = runlens.read_hparams(fit.run_dir)
    assert list(hp["run"]) == ["."]  # the run read_epochs names
    assert {k: hp[k].iloc[0] for k in HPARAMS} == HPARAMS
    assert str(hp["units"].dtype) == "Float64" and str(hp["batchnorm"].dtype) == "boolean"
    assert str(hp["optimizer"].dtype) == "string"


def test_the_report_shows_the_live_stop_beside_the_replay_of_the_same_settings(fit):
    record = runlens.build_report(fit.run_dir, checkpoint_min_age=0).run(".")
    es = fit.callback("EarlyStopping")
    decided = {
        "stopped_epoch": es.stopped_epoch,
        "best_epoch": es.best_epoch,
        "restored_epoch": es.best_epoch,
    }
    assert (
        record.live.agrees
        and record.live.early_stopping.live == record.live.early_stopping.replayed == decided
    )
    assert (record.live.status, record.live.ended_normally) == ("stopped_early", True)
    assert {h["name"]: h["value"] for h in record.hparams} == HPARAMS
