"""A real fit with the bundle's ReduceLROnPlateau: the rate logged per epoch is the one used during
it, the manifest's reductions are the logged rate changes, and the offline replay agrees."""

from __future__ import annotations

import numpy as np
import pandas
import pytest
from _bundle_fits import bundle_fit, observer, overfitting_data, tiny_model

import runlens

EPOCHS = 16
RLR_ARGS = {"patience": 1, "factor": 0.5, "cooldown": 1}


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    return bundle_fit(tmp_path_factory.mktemp("plateau") / "run", epochs=EPOCHS, reduce_lr=RLR_ARGS)


def _f32(values):
    return np.asarray(values, dtype=np.float32)


def _changes(fit):
    """(epoch, rate used during it, rate used after it) for every epoch whose end changed the
    rate, from the observer's rates at epoch begin and the optimizer's final rate."""
    import keras

    used = [fit.observed.rate_used[e] for e in fit.epochs]
    final = float(keras.ops.convert_to_numpy(fit.model.optimizer.learning_rate))
    after = used[1:] + [final]
    return [(e, a, b) for e, a, b in zip(fit.epochs, used, after) if a != b]


def test_tensorboard_runs_before_reduce_lr_in_the_bundle(fit):
    names = [type(c).__name__ for c in fit.callbacks]
    assert names.index("TensorBoard") < names.index("ReduceLROnPlateau") < names.index("RunManifest")
    assert (names[0], names[-2:]) == ("RunGuard", ["RunManifest", "RunGuardEnd"])


def test_the_logged_rate_is_the_rate_used_during_each_epoch(fit):
    epochs = runlens.read_epochs(fit.run_dir)
    used = [fit.observed.rate_used[e] for e in fit.epochs]
    assert np.array_equal(_f32(epochs["learning_rate"].to_numpy(dtype=float)), _f32(used))
    assert len(_changes(fit)) >= 2  # the fit really reduced the rate, more than once
    csv = pandas.read_csv(fit.run_dir / "history.csv")
    assert csv["learning_rate"].tolist() == used


def test_manifest_reductions_are_the_rate_changes(fit):
    m = runlens.read_manifest(fit.run_dir)
    reductions = [(r["epoch"], r["old_lr"], r["new_lr"]) for r in m["reduce_lr"]["reductions"]]
    assert reductions == _changes(fit)
    logged = runlens.read_epochs(fit.run_dir)["learning_rate"].to_numpy(dtype=float)
    drops = [e for e in range(1, len(logged)) if logged[e] < logged[e - 1]]
    assert drops == [e + 1 for e, _, _ in reductions if e + 1 < len(logged)]


def test_offline_replay_reproduces_the_live_reductions(fit):
    m = runlens.read_manifest(fit.run_dir)
    epochs = runlens.read_epochs(fit.run_dir)
    policy = runlens.ReduceLROnPlateau(**m["config"]["reduce_lr"])
    result = policy.replay(
        epochs["val_loss"],
        initial_lr=float(epochs["learning_rate"].iloc[0]),
        logged_lr=epochs["learning_rate"],
    )
    assert list(result.reduced_at) == [r["epoch"] for r in m["reduce_lr"]["reductions"]]
    assert result.diverges_at is None
    assert result.wait == tuple(e["reduce_lr"]["wait"] for e in m["epochs"])
    assert [e["reduce_lr"]["cooldown_counter"] for e in m["epochs"]].count(1) >= 2  # cooldown ran


def test_reduce_lr_before_tensorboard_would_log_the_reduced_rate(tmp_path):
    # Why the order matters, shown on Keras itself: with ReduceLROnPlateau first, the rate
    # TensorBoard logs at an epoch that reduced it is the new one, not the one used.
    import keras

    keras.utils.set_random_seed(1)
    train, validation = overfitting_data()
    model = tiny_model()
    seen = observer()
    seen.run_dir = tmp_path
    (tmp_path / "checkpoints").mkdir()
    model.fit(
        *train,
        validation_data=validation,
        epochs=10,
        batch_size=8,
        verbose=0,
        callbacks=[
            keras.callbacks.ReduceLROnPlateau(**RLR_ARGS),
            keras.callbacks.TensorBoard(str(tmp_path)),
            seen,
        ],
    )
    logged = runlens.read_epochs(tmp_path)["learning_rate"].to_numpy(dtype=float)
    used = [seen.rate_used[e] for e in sorted(seen.rate_used)]
    assert not np.array_equal(_f32(logged), _f32(used))
    assert np.array_equal(_f32(logged[:-1]), _f32(used[1:]))  # one epoch early: the "after" rate
