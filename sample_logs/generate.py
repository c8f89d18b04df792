"""Regenerate sample_logs/: five real Keras 3 fits of tiny models on synthetic data.

Each run is trained with runlens' bundled callbacks (``runlens.keras.callbacks``), so its folder
holds ``train/`` and ``validation/`` event files (Keras' TensorBoard), the run's hyperparameters
(TensorBoard's hparams plugin, an event file in the run folder), ``checkpoints/`` (the best 3 by
``val_loss`` and the last one, ``epoch_{epoch:03d}-val_loss_{val_loss:.6f}.keras``; ``unpruned``
keeps every epoch's, so that a report and a prune have something to delete),
``history.csv`` (CSVLogger) and ``runlens.json`` (the manifest). Deterministic: fixed data, seeds
and op determinism, so the metrics repeat exactly on the same platform (event file names carry a
timestamp and host name). Every run checks that it shows the behaviour it is there for, and the
script fails if not.

Usage (from the repository root; wipes the folders of the runs it fits first)::

    .venv/bin/python sample_logs/generate.py            # every run
    .venv/bin/python sample_logs/generate.py unpruned   # only the runs named
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # oneDNN may reorder float sums
os.environ["KERAS_BACKEND"] = "tensorflow"

import itertools

import keras
import numpy as np
import tensorflow as tf

import runlens.keras
from runlens.checkpoints.lock import LOCK_NAME

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Run:
    """One sample run: data, model, fit settings, and a check of the behaviour it must show. Its
    hyperparameters (logged with TensorBoard's hparams plugin) are these settings."""

    name: str
    seed: int
    epochs: int
    task: str  # "classification" or "regression" (TASKS)
    n_train: int
    n_val: int
    features: int
    noise: float  # the label noise of a classification, the target noise of a regression
    hidden: tuple[int, ...]
    optimizer: str  # "adam" or "sgd"
    learning_rate: float
    check: Callable[[dict[str, list[float]]], None]
    validation_freq: int = 1
    batch_size: int = 8
    reduce_lr: dict | None = None
    early_stopping: dict | None = None
    keep_best: int = 3
    more_hparams: dict = field(default_factory=dict)  # logged after the settings above

    def data(self, rng: np.random.Generator) -> tuple:
        make = classification if self.task == "classification" else regression
        return make(rng, n_train=self.n_train, n_val=self.n_val, features=self.features, noise=self.noise)

    def model(self) -> keras.Model:
        optimizer = OPTIMIZERS[self.optimizer](self.learning_rate)
        if self.task == "classification":
            return mlp(
                self.features,
                self.hidden,
                optimizer=optimizer,
                loss="binary_crossentropy",
                metrics=["accuracy"],
            )
        return mlp(self.features, self.hidden, optimizer=optimizer, loss="mse", metrics=["mae"], output=None)

    def hparams(self) -> dict:
        noise = "label_noise" if self.task == "classification" else "noise"
        return {
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "hidden": "x".join(map(str, self.hidden)),
            "batch_size": self.batch_size,
            "train_samples": self.n_train,
            noise: self.noise,
            **self.more_hparams,
        }


OPTIMIZERS = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD}


def classification(rng, *, n_train, n_val, features, noise):
    """Labels from a linear rule on two features, each flipped with probability ``noise``."""
    x = rng.normal(size=(n_train + n_val, features)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("float32")
    flip = rng.random(len(y)) < noise
    y[flip] = 1 - y[flip]
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def regression(rng, *, n_train, n_val, features, noise):
    """y = x @ w + noise."""
    x = rng.normal(size=(n_train + n_val, features)).astype("float32")
    y = (x @ rng.normal(size=features) + noise * rng.normal(size=len(x))).astype("float32")
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def mlp(features, hidden, *, optimizer, loss, metrics, output="sigmoid"):
    """A tiny compiled Sequential model: ``hidden`` ReLU layers and one output unit."""
    layers = [keras.Input((features,))]
    layers += [keras.layers.Dense(units, activation="relu") for units in hidden]
    model = keras.Sequential(layers + [keras.layers.Dense(1, activation=output)])
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    return model


def check_overfits(history):
    val = history["val_loss"]
    best = int(np.argmin(val))
    assert best < len(val) // 3 and val[-1] > 1.2 * val[best], f"no early overfit: {val}"


def check_plateau(history):  # ReduceLROnPlateau puts the rate used in the epoch into the logs
    rates = history["learning_rate"]
    reductions = sum(b < a for a, b in itertools.pairwise(rates))
    assert 2 <= reductions <= 3, f"{reductions} learning-rate reductions: {rates}"


def check_improving(history):  # and so its EarlyStopping never stops it
    assert len(history["loss"]) == 20, "EarlyStopping stopped the improving run"
    for key in ("loss", "val_loss"):
        assert int(np.argmin(history[key])) == len(history[key]) - 1, f"{key} not best at end"


def check_unpruned(history):  # overfits early enough for EarlyStopping and a prune to matter
    val = history["val_loss"]
    best = int(np.argmin(val))
    assert best <= len(val) - 5 and val[-1] > val[best], f"no overfit to prune: {val}"


def check_sparse(history):
    assert len(history["val_loss"]) == len(history["loss"]) // 2, "validation not every 2nd epoch"


RUNS = [
    Run(
        "overfits",
        seed=1,
        epochs=30,
        task="classification",
        n_train=40,
        n_val=60,
        features=10,
        noise=0.2,
        hidden=(16, 16),
        optimizer="adam",
        learning_rate=0.01,
        check=check_overfits,
    ),
    Run(
        "plateau",
        seed=2,
        epochs=30,
        batch_size=16,
        task="regression",
        n_train=96,
        n_val=48,
        features=6,
        noise=0.5,
        hidden=(8,),
        optimizer="sgd",
        learning_rate=0.1,
        reduce_lr=dict(monitor="val_loss", factor=0.5, patience=2, min_delta=1e-3),
        check=check_plateau,
    ),
    Run(
        "improving",
        seed=3,
        epochs=20,
        batch_size=16,
        task="regression",
        n_train=128,
        n_val=64,
        features=6,
        noise=0.3,
        hidden=(8,),
        optimizer="sgd",
        learning_rate=0.005,
        early_stopping=dict(patience=5, restore_best_weights=True),
        check=check_improving,
    ),
    Run(
        "sparse_validation",
        seed=4,
        epochs=20,
        validation_freq=2,
        batch_size=16,
        task="classification",
        n_train=96,
        n_val=48,
        features=6,
        noise=0.1,
        hidden=(8,),
        optimizer="sgd",
        learning_rate=0.05,
        more_hparams=dict(validation_freq=2),
        check=check_sparse,
    ),
    Run(
        "unpruned",
        seed=5,
        epochs=12,
        keep_best=1000,  # every epoch's checkpoint stays: `runlens report` shows what a prune frees
        task="classification",
        n_train=40,
        n_val=48,
        features=8,
        noise=0.2,
        hidden=(8,),
        optimizer="adam",
        learning_rate=0.02,
        more_hparams=dict(keep_best="all"),
        check=check_unpruned,
    ),
]


def callbacks(run: Run, folder: Path) -> list[keras.callbacks.Callback]:
    """runlens' bundle: TensorBoard first (it logs the rate used in each epoch), Keras' own
    ReduceLROnPlateau / EarlyStopping, the best 3 (or ``keep_best``) + last checkpoints,
    history.csv, runlens.json."""
    return runlens.keras.callbacks(
        folder,
        monitor="val_loss",
        reduce_lr=run.reduce_lr,
        early_stopping=run.early_stopping,
        keep_best=run.keep_best,
        keep_last=1,
        hparams=run.hparams(),
    )


def generate(run: Run, folder: Path) -> dict[str, list[float]]:
    """Fit ``run`` into ``folder`` and return Keras' History.history after checking it."""
    keras.utils.set_random_seed(run.seed)
    train, validation = run.data(np.random.default_rng(run.seed))
    model = run.model()
    history = model.fit(
        *train,
        validation_data=validation,
        validation_freq=run.validation_freq,
        epochs=run.epochs,
        batch_size=run.batch_size,
        verbose=0,
        callbacks=callbacks(run, folder),
    ).history
    run.check(history)
    if run.keep_best >= run.epochs:
        kept = list((folder / "checkpoints").glob("*.keras"))
        assert len(kept) == run.epochs, f"{run.name}: {len(kept)} checkpoints kept of {run.epochs}"
    return history


def main(names: list[str]) -> None:
    tf.config.experimental.enable_op_determinism()
    unknown = set(names) - {run.name for run in RUNS}
    if unknown:
        raise SystemExit(f"no such sample run: {', '.join(sorted(unknown))}")
    runs = [run for run in RUNS if run.name in names] if names else RUNS
    keras_runs = {run.name for run in RUNS}  # lightning/ and transformers/: generate_frameworks.py's
    for old in HERE.iterdir():
        if old.is_dir() and old.name in keras_runs and (not names or old.name in names):
            shutil.rmtree(old)
    for run in runs:
        history = generate(run, HERE / run.name)
        (HERE / run.name / "checkpoints" / LOCK_NAME).unlink(missing_ok=True)  # retention's lock
        val = history["val_loss"]
        print(
            f"{run.name:18} epochs={run.epochs:2} best val_loss={min(val):.4f} "
            f"(validation #{int(np.argmin(val)) + 1} of {len(val)}) last={val[-1]:.4f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
