"""Real Keras fits with ``runlens.keras.callbacks`` for the bundle tests, and what they observed.

:func:`bundle_fit` trains a tiny MLP on a small noisy classification problem (40 training, 60
validation samples: it overfits after a few epochs) with the bundle, then an :class:`Observer`
placed after the bundle (it sees every epoch after all of runlens' callbacks acted), then any
``extra`` callbacks. Keras and TensorFlow are imported inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from writers import SimulatedCrash, crash_at_end_of  # noqa: F401 (used by the bundle tests)

# The bundle of the resume tests: both policies, EarlyStopping restoring its best epoch (whose
# checkpoint a resume needs) and a small retention.
RESUME_BUNDLE: dict[str, Any] = dict(
    early_stopping={"patience": 3, "restore_best_weights": True},
    reduce_lr={"patience": 2, "factor": 0.5},
    keep_best=2,
    keep_last=1,
)


def overfitting_data(seed: int = 1):
    """Labels from x0 > x1 with 20% flipped; 10 features: a 2x16 MLP overfits 40 samples."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(100, 10)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("float32")
    flip = rng.random(100) < 0.2
    y[flip] = 1 - y[flip]
    return (x[:40], y[:40]), (x[40:], y[40:])


def tiny_model(learning_rate: float = 0.01, width: int = 16):
    """A 10 -> width -> width -> 1 MLP with Adam (width 16: 465 parameters)."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


def observer():
    """A callback recording, per epoch: the optimizer's rate when the epoch begins (the rate used
    during it), the logs at its end, and the checkpoint files on disk after runlens acted."""
    import keras

    class Observer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rate_used: dict[int, float] = {}
            self.logs: dict[int, dict[str, float]] = {}
            self.files: dict[int, set[str]] = {}
            self.run_dir: Path | None = None

        def on_epoch_begin(self, epoch, logs=None):
            self.rate_used[epoch] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

        def on_epoch_end(self, epoch, logs=None):
            self.logs[epoch] = {k: float(v) for k, v in (logs or {}).items()}
            folder = self.run_dir / "checkpoints"
            self.files[epoch] = {p.name for p in folder.iterdir() if not p.name.startswith(".")}

    return Observer()


@dataclass
class BundleFit:
    """A finished (or crashed) fit: Keras' History (None after a crash), the model, the bundle's
    callbacks, and what the observer saw."""

    run_dir: Path
    history: dict[str, list[float]] | None
    epochs: list[int]
    model: Any = field(repr=False)
    callbacks: list = field(repr=False)
    observed: Any = field(repr=False)

    def callback(self, name: str):
        return next(c for c in self.callbacks if type(c).__name__ == name)


def bundle_fit(
    run_dir: Path,
    *,
    epochs: int,
    seed: int = 1,
    validation_freq: int = 1,
    extra: Sequence = (),
    learning_rate: float = 0.01,
    model=None,
    shuffle: bool = True,
    **bundle: Any,
) -> BundleFit:
    """Fit :func:`tiny_model` on :func:`overfitting_data` with ``runlens.keras.callbacks(run_dir,
    **bundle)`` + an observer + ``extra``; a :class:`SimulatedCrash` from ``extra`` is caught."""
    import keras

    import runlens.keras

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    keras.utils.set_random_seed(seed)
    train, validation = overfitting_data()
    model = model or tiny_model(learning_rate)
    callbacks = runlens.keras.callbacks(run_dir, **bundle)
    seen = observer()
    seen.run_dir = Path(run_dir)
    history = None
    try:
        result = model.fit(
            *train,
            validation_data=validation,
            validation_freq=validation_freq,
            epochs=epochs,
            batch_size=8,
            shuffle=shuffle,
            verbose=0,
            callbacks=[*callbacks, seen, *extra],
        )
        history = result.history
    except SimulatedCrash:
        pass
    return BundleFit(Path(run_dir), history, sorted(seen.logs), model, callbacks, seen)


def expected_kept(
    values: dict[int, float], last: int, *, keep_best: int, keep_last: int, also: Sequence[int] = ()
) -> set[int]:
    """Epochs retention must keep, computed from the values alone: the ``keep_best`` lowest
    (ties: earlier epoch), the last ``keep_last`` epochs up to ``last``, and ``also``."""
    best = sorted(values, key=lambda e: (values[e], e))[:keep_best]
    return {*best, *range(last - keep_last + 1, last + 1), *also}


def checkpoint_name(
    epoch: int, value: float | None, monitor: str = "val_loss", suffix: str = ".keras"
) -> str:
    """The bundle's default name for 0-based ``epoch`` (``value`` None: the epoch had none)."""
    shown = "none" if value is None else f"{value:.6f}"
    return f"epoch_{epoch + 1:03d}-{monitor}_{shown}{suffix}"
