"""Helpers for the policy tests: the real Keras callbacks driven epoch by epoch, and value strategies.

The parity tests hand the same per-epoch logs to a real Keras callback (attached with ``set_model``
to a tiny compiled model, as ``fit`` would) and to runlens' replay, then compare every decision.
Logs hold Python floats, as Keras' CallbackList hands them to callbacks (``pythonify_logs``).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd
from hypothesis import example
from hypothesis import strategies as st

# --- value strategies: ties and near-ties in float32 are the point -------------------------------

_F32 = np.float32


def _neighbours(x: float) -> list[float]:
    x32 = _F32(x)
    up = np.nextafter(x32, _F32(np.inf))
    down = np.nextafter(x32, _F32(-np.inf))
    return [float(x32), float(up), float(down), float(np.nextafter(up, _F32(np.inf)))]


_BASES = [0.0, 0.5, 1.0, 0.25, 0.75, 0.1, 0.3, 0.7, 2.0, 1e-3, 100.0, -1.0, -0.5]
VALUE_POOL = sorted(
    {v for b in _BASES for v in _neighbours(b)}
    | {
        math.inf,
        -math.inf,
        1e-45,  # float32 subnormals: TensorFlow compares them as zero
        1e-40,
        -3e-41,
        0.1,  # float64 values that are not float32: Keras rounds value - min_delta to float32
        0.30000000000000004,
        0.7000000000000001,
        1.0000000001,
    }
) + [math.nan]

# Alphabets of values one ulp (or one rounding) apart, where float32 vs float64 decisions differ.
CLUSTERS = [_neighbours(b) for b in _BASES] + [
    [0.0, -0.0, 1e-45, -1e-45, 1e-40, float(np.finfo(np.float32).tiny)],
    [math.inf, -math.inf, math.nan, 1.0, float(np.finfo(np.float32).max)],
    [0.1, float(_F32(0.1)), 0.30000000000000004, float(_F32(0.3)), 0.2, float(_F32(0.2))],
]

DELTA_POOL = [
    0,
    0.0,
    -0.0,
    1e-4,
    -1e-4,
    0.1,
    -0.1,
    0.25,
    -0.25,
    0.5,
    -0.5,
    1.0,
    -1.0,
    0.2,
    0.3,
    2.0**-24,
    2.0**-23,
    -(2.0**-24),
    1e-8,
    1e-45,
]


@st.composite
def values_strategy(draw, max_size: int = 24) -> list:
    """Per-epoch values (None = not logged) over a small alphabet, so ties and near-ties abound."""
    alphabet = draw(
        st.one_of(
            st.sampled_from(CLUSTERS),
            st.lists(
                st.one_of(st.sampled_from(VALUE_POOL), st.floats(-1e6, 1e6, width=32)), min_size=1, max_size=4
            ),
        )
    )
    return draw(
        st.lists(
            st.one_of(st.none(), st.sampled_from(alphabet), st.sampled_from(alphabet)), max_size=max_size
        )
    )


delta_strategy = st.one_of(st.sampled_from(DELTA_POOL), st.floats(-2.0, 2.0))
baseline_strategy = st.one_of(
    st.none(), st.sampled_from([v for v in VALUE_POOL if not math.isnan(v)]), st.floats(-3.0, 3.0)
)

# Monitors Keras 3 resolves in auto mode on the fixture model (compiled with accuracy and mse).
KERAS3_AUTO_MONITORS = ["val_loss", "loss", "val_accuracy", "accuracy", "mse", "val_mse"]
KERAS2_AUTO_MONITORS = ["val_loss", "val_acc", "val_accuracy", "val_auc", "auc_1", "my_acc_rate", "fmeasure"]


def logs_for(monitor: str, value: float | None) -> dict[str, float]:
    return {} if value is None else {monitor: float(value)}


# --- tiny real models ----------------------------------------------------------------------------

_X = np.linspace(-1, 1, 16, dtype="float32").reshape(8, 2)
_Y = (np.arange(8) % 2).astype("float32").reshape(8, 1)


def keras3_model():
    """A compiled, trained-for-one-epoch Keras 3 model (its metrics built, as after a real epoch)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", metrics=["accuracy", "mse"])
    model.fit(_X, _Y, epochs=1, batch_size=8, verbose=0)
    return model


def keras2_model():
    """The same with tf-keras 2.x (the reference for semantics="keras2")."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.Input((2,)), tf_keras.layers.Dense(1)])
    model.compile(optimizer=tf_keras.optimizers.SGD(0.01), loss="mse", metrics=["accuracy"])
    model.fit(_X, _Y, epochs=1, batch_size=8, verbose=0)
    return model


def _mark(model, epoch: int) -> None:
    """Give every weight the value ``epoch``: whoever holds weights later says from which epoch."""
    model.set_weights([np.full(w.shape, epoch, dtype=w.dtype) for w in model.get_weights()])


@dataclass
class KerasStop:
    stopped_epoch: int | None
    epochs_trained: int
    best: Any
    best_epoch: int
    wait: tuple[int, ...]
    held_epoch: int | None


def drive_early_stopping(callback, model, monitor: str, values: list) -> KerasStop:
    """Run ``callback`` (a real Keras EarlyStopping) as fit would over ``values``."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    waits, trained = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "conditioned on metric ... which is not available"
        for epoch, value in enumerate(values):
            _mark(model, epoch)
            callback.on_epoch_end(epoch, logs_for(monitor, value))
            waits.append(int(callback.wait))
            trained = epoch + 1
            if model.stop_training:
                break
    callback.on_train_end()
    held = round(float(model.get_weights()[0].flat[0])) if values else None
    return KerasStop(
        stopped_epoch=int(callback.stopped_epoch) if model.stop_training else None,
        epochs_trained=trained,
        best=callback.best,
        best_epoch=int(callback.best_epoch),
        wait=tuple(waits),
        held_epoch=held,
    )


@dataclass
class KerasPlateau:
    learning_rates: tuple[float, ...]
    final_lr: float
    wait: tuple[int, ...]


def drive_plateau(
    callback, model, monitor: str, values: list, *, get_lr, set_lr, initial_lr: float
) -> KerasPlateau:
    """Run ``callback`` (a real Keras ReduceLROnPlateau) as fit would, reading the rate each epoch."""
    set_lr(model, initial_lr)
    callback.set_model(model)
    callback.on_train_begin()
    rates, waits = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch, value in enumerate(values):
            rates.append(get_lr(model))
            callback.on_epoch_end(epoch, logs_for(monitor, value))
            waits.append(int(callback.wait))
    return KerasPlateau(tuple(rates), get_lr(model), tuple(waits))


def same_float(a: Any, b: Any) -> bool:
    """Equal as floats, NaN equal to NaN."""
    a, b = float(a), float(b)
    return a == b or (math.isnan(a) and math.isnan(b))


def epoch_frame(runs: dict[str, dict[str, list]], *, wall_step: float = 10.0) -> pd.DataFrame:
    """An epoch frame as runlens.read_epochs returns it; None in a metric list = not logged.

    ``runs`` maps run name -> {column: per-epoch values}; every column of a run has one entry per
    epoch; a ``"wall_time"`` entry overrides the default wall times (epoch * wall_step).
    """
    parts = []
    for run, columns in runs.items():
        n = len(next(iter(columns.values())))
        part = {"run": [run] * n, "epoch": np.arange(n, dtype=np.int64)}
        part["wall_time"] = np.asarray(
            columns.get("wall_time", np.arange(1, n + 1) * wall_step), dtype=np.float64
        )
        for name, values in columns.items():
            if name == "wall_time":
                continue
            mask = np.array([v is None for v in values], dtype=bool)
            floats = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            part[name] = pd.arrays.FloatingArray(floats, mask)
        parts.append(pd.DataFrame(part))
    frame = pd.concat(parts, ignore_index=True)
    return frame.sort_values(["run", "epoch"], ignore_index=True)


class CaseTimer:
    """Counts parity cases and the time spent in them (Keras + runlens, not case generation)."""

    def __init__(self, name: str):
        self.name, self.count, self.seconds = name, 0, 0.0

    def run(self, check, *args) -> None:
        start = time.perf_counter()
        check(*args)
        self.seconds += time.perf_counter() - start
        self.count += 1

    def report(self) -> None:
        rate = self.count / self.seconds if self.seconds else 0.0
        print(f"\n{self.name}: {self.count} cases, {self.seconds:.1f}s in the cases ({rate:.0f}/s)")


def with_examples(cases):
    """Decorator: every one of ``cases`` (a list of ``case`` values) always runs, before the
    generated ones."""

    def decorate(test):
        for case in cases:
            test = example(case=case)(test)
        return test

    return decorate
