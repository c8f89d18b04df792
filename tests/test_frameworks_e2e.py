"""End to end: real Lightning, HF Trainer and torch runs, read back by read_evals and replayed.

Each fit logs with its framework's own TensorBoard writer; the replay of runlens' policy on the
frame ``read_evals`` makes must stop at the check / evaluation where training really stopped, with
the framework's own best, counters and learning rates (see tests/framework_fits.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from framework_fits import f32, lightning_fit, torch_plateau_loop, trainer_fit

import runlens
import runlens.lightning
import runlens.torch
import runlens.transformers

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"

REASONS = {"PATIENCE_EXHAUSTED": "patience", "NON_FINITE_METRIC": "not_finite"}
PLATEAU = dict(mode="min", factor=0.5, patience=0, threshold=1e-4)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """One logdir holding every fit below (each in its own folder) and a Keras run."""
    root = tmp_path_factory.mktemp("frameworks")
    shutil.copytree(SAMPLE / "plateau", root / "keras" / "plateau")
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(root / "plain")) as writer:  # no framework's layout, no validation tag
        for step in range(5):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
    return root


@pytest.fixture(scope="module")
def every_epoch(logdir):
    """A check per epoch, patience 3 with min_delta 0.01 (a float32 near-tie at check 3), and a
    ReduceLROnPlateau on val_loss with a LearningRateMonitor."""
    script = f32([1.0, 0.8, 0.795, 0.79, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75])
    fit = lightning_fit(
        logdir / "lightning" / "every_epoch",
        script,
        early_stopping=dict(patience=3, min_delta=0.01),
        plateau=PLATEAU,
        checkpoint=True,
    )
    return fit, script


@pytest.fixture(scope="module")
def every_second_epoch(logdir):
    script = f32([1.0, 0.9, 0.95, 0.96, 0.97, 0.98])
    fit = lightning_fit(
        logdir / "lightning" / "every_second",
        script,
        early_stopping=dict(patience=2),
        check_val_every_n_epoch=2,
    )
    return fit, script


def lightning_replay(fit, policy, *, min_epochs=None):
    evals = runlens.read_evals(fit.path)
    assert set(evals["framework"]) == {"lightning"} and evals["run"].nunique() == 1
    epochs = evals["epoch"].to_numpy(dtype=float)
    result = policy.replay(
        evals["val_loss"], can_stop_from=runlens.lightning.can_stop_from(epochs, min_epochs)
    )
    return evals, result


def assert_lightning_agrees(fit, evals, result):
    """The replay stops at the last check the run made, with Lightning's own state."""
    assert result.stopped_at == len(evals) - 1
    assert [tuple(x) for x in evals[["epoch", "step"]].to_numpy()] == [(e, s - 1) for e, s in fit.checks]
    assert int(evals["epoch"].iloc[result.stopped_at]) == fit.stopped_epoch
    assert result.wait[-1] == fit.wait_count
    assert result.best_value == fit.best_score
    assert result.reason == REASONS[fit.reason]


def test_lightning_every_epoch(every_epoch):
    fit, script = every_epoch
    evals, result = lightning_replay(
        fit, runlens.lightning.EarlyStopping("val_loss", patience=3, min_delta=0.01)
    )
    assert evals["val_loss"].tolist() == script[: len(evals)]
    assert evals["epoch"].tolist() == list(range(len(evals)))
    assert_lightning_agrees(fit, evals, result)
    assert result.stopped_at < len(script) - 1  # it really stopped early
    # EarlyStopping's best (min_delta 0.01) and ModelCheckpoint's (strict, no delta) are the same
    # check here; the checkpoint is named after its epoch and global step (the check's step + 1)
    best = evals.iloc[result.best_at]
    assert Path(fit.best_checkpoint).name == f"epoch={best.epoch}-step={best.step + 1}.ckpt"
    assert result.best_at == int(evals["val_loss"].to_numpy(dtype=float).argmin())


def test_lightning_learning_rates_replay_with_torch_plateau(every_epoch):
    fit, _ = every_epoch
    evals = runlens.read_evals(fit.path)
    rates = runlens.torch.ReduceLROnPlateau(**PLATEAU).replay(evals["val_loss"], initial_lr=0.1)
    assert list(rates.learning_rates) == fit.rates  # the optimizer's own rate at each epoch start
    assert len(rates.reduced_at) >= 2
    logged = evals["lr-SGD"].to_numpy(dtype=float)  # LearningRateMonitor, attached to its epoch's check
    np.testing.assert_array_equal(logged, np.float32(rates.learning_rates).astype(float))


def test_lightning_check_val_every_n_epoch(every_second_epoch):
    fit, _ = every_second_epoch
    evals, result = lightning_replay(fit, runlens.lightning.EarlyStopping("val_loss", patience=2))
    assert evals["epoch"].tolist() == [1, 3, 5, 7]  # patience counted 2 checks, 4 epochs
    assert_lightning_agrees(fit, evals, result)


@pytest.mark.parametrize(
    "variant",
    [
        dict(min_epochs=6, script=[1.0, 1.1, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99]),
        # two checks per epoch: a stop flagged in epoch 0 runs to the end of epoch 1
        dict(min_epochs=2, script=[1.0, 1.1, 1.2, 1.3, 1.4, 1.5], val_check_interval=0.5),
        # check_val_every_n_epoch=2 and min_epochs=3: the run ends after epoch 2, which has no check
        dict(min_epochs=3, script=[1.0, 1.1, 1.2, 1.3], check_val_every_n_epoch=2),
    ],
    ids=["min_epochs", "val_check_interval", "every_second_epoch"],
)
def test_lightning_min_epochs_delays_a_sticky_stop(tmp_path, variant):
    script = f32(variant.pop("script"))
    min_epochs = variant["min_epochs"]
    fit = lightning_fit(tmp_path, script, early_stopping=dict(patience=1), **variant)
    policy = runlens.lightning.EarlyStopping("val_loss", patience=1)
    evals, result = lightning_replay(fit, policy, min_epochs=min_epochs)
    assert_lightning_agrees(fit, evals, result)
    assert result.signaled_at == 1
    undelayed = policy.replay(evals["val_loss"])
    assert undelayed.stopped_at == 1 and (result.stopped_at > 1 or variant.get("check_val_every_n_epoch"))
    assert fit.current_epoch >= min_epochs


@pytest.fixture(scope="module")
def hf_epochs(logdir):
    # each evaluation beats the Trainer's best by less than the threshold: the quirk stops it at
    # the 4th evaluation although 0.987 is 0.013 better than the first value
    script = f32([1.0, 0.995, 0.991, 0.987, 0.5, 0.4])
    return trainer_fit(logdir / "hf" / "epochs", script, patience=3, threshold=0.01), script


def hf_replay(fit, policy):
    evals = runlens.read_evals(fit.path)
    assert set(evals["framework"]) == {"transformers"} and evals["run"].nunique() == 1
    assert evals["run"].iloc[0].startswith("runs/")
    return evals, policy.replay(evals[policy.monitor])


def assert_hf_agrees(fit, evals, result):
    assert evals["step"].tolist() == fit.evaluations
    assert result.stopped_at == len(evals) - 1
    assert int(evals["step"].iloc[result.stopped_at]) == fit.global_step
    assert result.best_metric == fit.best_metric
    assert int(evals["step"].iloc[result.best_at]) == fit.best_global_step
    assert result.counter[-1] == fit.counter


def test_hf_trainer_quirk_end_to_end(hf_epochs):
    fit, script = hf_epochs
    policy = runlens.transformers.EarlyStoppingCallback(
        3, 0.01, metric_for_best_model="score", greater_is_better=False
    )
    evals, result = hf_replay(fit, policy)
    assert result.stopped_at == 3 and evals["eval_score"].tolist() == script[:4]
    assert evals["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0]  # HF's epoch progress
    assert_hf_agrees(fit, evals, result)
    # the Trainer's keys, rewrite_logs undone; the training loss attached from its window
    assert {"eval_loss", "loss", "learning_rate", "grad_norm"} <= set(evals.columns)
    assert evals["loss"].notna().all()


def test_hf_trainer_evaluating_every_few_steps(tmp_path):
    script = f32([1.0, 0.9, 0.8, 0.85, 0.86, 0.87, 0.1])
    fit = trainer_fit(tmp_path, script, patience=2, eval_strategy="steps", eval_steps=3)
    evals, result = hf_replay(
        fit,
        runlens.transformers.EarlyStoppingCallback(2, metric_for_best_model="score", greater_is_better=False),
    )
    assert evals["step"].tolist()[:3] == [3, 6, 9]
    assert evals["epoch"].tolist()[:3] == [0.75, 1.5, 2.25]  # fractional progress
    assert_hf_agrees(fit, evals, result)


TORCH_PLATEAU = dict(patience=1, factor=0.5, threshold=0.0, cooldown=1)


@pytest.fixture(scope="module")
def torch_loop(logdir):
    script = f32([1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8])
    return torch_plateau_loop(logdir / "torch", script, initial_lr=0.1, plateau=TORCH_PLATEAU), script


def test_torch_loop_learning_rates(logdir, torch_loop):
    loop, script = torch_loop
    plateau = TORCH_PLATEAU
    evals = runlens.read_evals(logdir / "torch", monitor="val/loss")
    assert set(evals["framework"]) == {"lightning"}  # its `epoch` tag reads like Lightning's
    assert evals["epoch"].tolist() == list(range(len(script)))
    generic = runlens.read_evals(logdir / "torch", framework="generic", monitor="val/loss")
    assert generic.drop(columns="framework").equals(evals.drop(columns="framework"))
    result = runlens.torch.ReduceLROnPlateau(**plateau).replay(evals["val/loss"], initial_lr=0.1)
    assert list(result.learning_rates) == loop.rates and result.final_lr == loop.final_lr
    assert len(result.reduced_at) >= 2
    np.testing.assert_array_equal(evals["lr"].to_numpy(dtype=float), np.float32(loop.rates).astype(float))


def test_a_logdir_of_several_frameworks_reads_each_run_its_own_way(
    logdir, every_epoch, every_second_epoch, hf_epochs, torch_loop
):
    evals = runlens.read_evals(logdir / "keras")
    assert set(evals["framework"]) == {"keras"}
    with pytest.warns(runlens.RunlensWarning, match="'plain' gave no evaluation.*monitor="):
        evals = runlens.read_evals(logdir)
    frameworks = evals.groupby("run")["framework"].first().to_dict()
    assert frameworks["keras/plateau"] == "keras"
    assert frameworks["lightning/every_epoch/lightning_logs/version_0"] == "lightning"
    hf_run = next(r for r in frameworks if r.startswith("hf/epochs/runs/"))
    assert frameworks[hf_run] == "transformers"
    assert evals["epoch"].dtype == "Float64"  # an HF run is in the frame
    verdicts = evals.attrs["frameworks"]
    assert "hparams.yaml" in verdicts["lightning/every_epoch/lightning_logs/version_0"]["why"]
    assert "eval/*" in verdicts[hf_run]["why"] and "Keras" in verdicts["keras/plateau"]["why"]
    assert "plain" in evals.attrs["skipped"] and frameworks["torch"] == "lightning"  # tags epoch, val/loss
    plain = runlens.read_evals(logdir / "plain", monitor="loss")
    assert plain["framework"].tolist() == ["generic"] * 5 and plain["step"].tolist() == list(range(5))
    keras_part = evals[evals["run"] == "keras/plateau"].reset_index(drop=True)
    epochs = runlens.read_epochs(logdir / "keras")
    assert keras_part["val_loss"].equals(epochs["val_loss"]) and (keras_part["eval"] == epochs["epoch"]).all()
