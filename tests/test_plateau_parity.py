"""runlens.ReduceLROnPlateau reproduces the real Keras callbacks' learning rates to the bit.

Each hypothesis case sets the optimizer's rate of a tiny compiled model, drives a real
``keras.callbacks.ReduceLROnPlateau`` (semantics="keras3") or ``tf_keras.callbacks.ReduceLROnPlateau``
(semantics="keras2") epoch by epoch, reads the optimizer's rate before every epoch and after the
last, and compares them and Keras' ``wait`` counter with the replay.
"""

from __future__ import annotations

import numpy as np
import pytest
from _policy_helpers import (
    CaseTimer,
    delta_strategy,
    drive_plateau,
    keras2_model,
    keras3_model,
    values_strategy,
    with_examples,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens

KERAS3_CASES = 1200
KERAS2_CASES = 1200

LR_POOL = [0.1, 0.01, 1e-3, 3e-4, 1.0, 0.5, 0.3, 2e-5, 1e-7]
FACTOR_POOL = [0.1, 0.5, 0.2, 1 / 3, 0.9, 0.0, 0.75, 0.999999, 0.3]

_BASE = dict(monitor="val_loss", factor=0.1, patience=1, mode="min", min_delta=0.0, cooldown=0, min_lr=0.0)
EDGE_CASES = [
    ((dict(_BASE, min_lr=1e-4), [1.0] * 8), 0.1),  # clamps at float32(min_lr), then stops reducing
    ((dict(_BASE, cooldown=2, factor=0.5), [1.0] * 10), 1.0),  # cooldown=c suppresses c - 1 epochs
    ((dict(_BASE, cooldown=3), [1.0, 1.0, 0.5, 0.4, 0.3, 1.0, 1.0]), 0.1),  # improvements in cooldown
    ((dict(_BASE, factor=1 / 3), [1.0] * 6), 0.3),  # float32 product rounding (keras2 rounds twice)
    ((dict(_BASE, min_delta=-0.5), [1.0, 1.2, 1.6]), 0.1),  # keras2 keeps min_delta's sign
    ((dict(_BASE, mode="auto", monitor="val_auc"), [0.5, 0.6, 0.7]), 0.1),  # keras2: "acc" rule only
]


@st.composite
def cases(draw, auto_monitors):
    mode = draw(st.sampled_from(["auto", "min", "max"]))
    monitor = draw(st.sampled_from(auto_monitors)) if mode == "auto" else "val_loss"
    initial_lr = draw(st.one_of(st.sampled_from(LR_POOL), st.floats(1e-6, 10.0)))
    min_lr = draw(
        st.one_of(
            st.sampled_from([0.0, 1e-5, 1e-4, 1e-3, 0.01]),
            st.just(initial_lr * draw(st.sampled_from([0.1, 0.01, 0.5, 0.05]))),
            st.floats(0.0, 1.0),
        )
    )
    params = dict(
        monitor=monitor,
        factor=draw(st.one_of(st.sampled_from(FACTOR_POOL), st.floats(0.0, 0.999))),
        patience=draw(st.sampled_from([0, 1, 1, 2, 3])),
        mode=mode,
        min_delta=draw(delta_strategy),
        cooldown=draw(st.sampled_from([0, 0, 1, 2, 3])),
        min_lr=min_lr,
    )
    return (params, draw(values_strategy(max_size=30))), initial_lr


def check_parity(callback_class, model, semantics, case, get_lr, set_lr):
    (params, values), initial_lr = case
    ours = runlens.ReduceLROnPlateau(**params, semantics=semantics).replay(values, initial_lr=initial_lr)
    theirs = drive_plateau(
        callback_class(**params),
        model,
        params["monitor"],
        values,
        get_lr=get_lr,
        set_lr=set_lr,
        initial_lr=initial_lr,
    )
    context = (params, values, initial_lr, ours, theirs)
    assert ours.learning_rates == theirs.learning_rates, context
    assert ours.final_lr == theirs.final_lr, context
    assert ours.wait == theirs.wait, context
    # reduced_at holds every epoch after which Keras changed the rate, and only epochs where
    # Keras' wait went back to 0 (a "reduction" can round back to the same float32 rate)
    after = theirs.learning_rates[1:] + (theirs.final_lr,)
    changed = {e for e, (a, b) in enumerate(zip(theirs.learning_rates, after)) if a != b}
    assert changed <= set(ours.reduced_at), context
    assert all(theirs.wait[e] == 0 for e in ours.reduced_at), context


@pytest.fixture(scope="module")
def keras3():
    import keras

    def get_lr(model):
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))

    def set_lr(model, lr):
        model.optimizer.learning_rate = lr

    model = keras3_model()
    timer = CaseTimer("ReduceLROnPlateau keras3 parity")
    yield keras.callbacks.ReduceLROnPlateau, model, get_lr, set_lr, timer
    timer.report()


@pytest.fixture(scope="module")
def keras2():
    import tf_keras

    def get_lr(model):
        return float(tf_keras.backend.get_value(model.optimizer.lr))

    def set_lr(model, lr):
        tf_keras.backend.set_value(model.optimizer.lr, lr)

    model = keras2_model()
    timer = CaseTimer("ReduceLROnPlateau keras2 parity")
    yield tf_keras.callbacks.ReduceLROnPlateau, model, get_lr, set_lr, timer
    timer.report()


@settings(max_examples=KERAS3_CASES, deadline=None, database=None)
@given(case=cases(["val_loss", "loss", "val_accuracy", "mse"]))
@with_examples(EDGE_CASES)
def test_keras3_parity(keras3, case):
    callback_class, model, get_lr, set_lr, timer = keras3
    if case[0][0]["monitor"] == "val_auc":
        case = ((dict(case[0][0], monitor="val_accuracy"), case[0][1]), case[1])  # not on this model
    timer.run(check_parity, callback_class, model, "keras3", case, get_lr, set_lr)


@settings(max_examples=KERAS2_CASES, deadline=None, database=None)
@given(case=cases(["val_loss", "val_acc", "val_accuracy", "val_auc", "accuracy_top", "loss"]))
@with_examples(EDGE_CASES)
def test_keras2_parity(keras2, case):
    callback_class, model, get_lr, set_lr, timer = keras2
    timer.run(check_parity, callback_class, model, "keras2", case, get_lr, set_lr)


def test_keras2_and_keras3_round_the_default_reduction_differently():
    """0.1 * 0.1: Keras 3 rounds the float64 product once, tf-keras 2.x multiplies in float32."""
    k3 = runlens.ReduceLROnPlateau(patience=0).replay([1.0, 1.0], initial_lr=0.1)
    k2 = runlens.ReduceLROnPlateau(patience=0, semantics="keras2").replay([1.0, 1.0], initial_lr=0.1)
    assert k3.final_lr == float(np.float32(0.01)) == 0.009999999776482582
    assert k2.final_lr == float(np.float32(0.1) * np.float32(0.1)) == 0.010000000707805157
