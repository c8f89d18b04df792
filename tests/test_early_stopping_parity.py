"""runlens.EarlyStopping decides exactly as the real Keras callbacks, over thousands of cases.

Each hypothesis case drives a real ``keras.callbacks.EarlyStopping`` (semantics="keras3") or
``tf_keras.callbacks.EarlyStopping`` (semantics="keras2") through ``set_model``/``on_train_begin``/
``on_epoch_end``/``on_train_end`` on a tiny compiled model, stopping when it sets
``model.stop_training`` as fit does, and compares: stop epoch, epochs trained, Keras' ``wait`` after
every epoch, ``best``/``best_epoch``, and which epoch's weights the model holds at the end (every
epoch stamps its number into the weights before ``on_epoch_end``).
"""

from __future__ import annotations

import math

import pytest
from _policy_helpers import (
    KERAS2_AUTO_MONITORS,
    KERAS3_AUTO_MONITORS,
    CaseTimer,
    baseline_strategy,
    delta_strategy,
    drive_early_stopping,
    keras2_model,
    keras3_model,
    same_float,
    values_strategy,
    with_examples,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens

KERAS3_CASES = 1500
KERAS2_CASES = 1500

F32_TENTH = 0.10000000149011612  # float32(0.1): a float64 0.1 logged after it is a tie in float32
_BASE = dict(
    monitor="val_loss",
    min_delta=0,
    patience=0,
    mode="min",
    baseline=None,
    restore_best_weights=True,
    start_from_epoch=0,
)
EDGE_CASES = [
    (dict(_BASE, mode="max"), [0.0, 1e-45]),  # a float32 subnormal compares as zero in TensorFlow
    (_BASE, [F32_TENTH, 0.1, 0.2]),
    (dict(_BASE, patience=1), [math.nan, 1.0, 0.5]),  # keras3: a first NaN is the best for good
    (dict(_BASE, min_delta=0.25), [1.0, 0.75, 0.7]),  # 0.75 + 0.25 ties 1.0: no improvement
    (dict(_BASE, min_delta=-0.25, mode="max"), [1.0, 1.25]),  # the sign of min_delta is dropped
    (dict(_BASE, baseline=0.5, patience=2), [0.9, 0.8, 0.7, 0.6]),  # improving but never below baseline
    (dict(_BASE, start_from_epoch=2, patience=1), [0.1, None, 0.5, 0.6, None, 0.7]),
    (dict(_BASE, restore_best_weights=True, patience=5), [0.5, 0.4, 0.45]),  # restores without stopping
]


@st.composite
def cases(draw, auto_monitors):
    mode = draw(st.sampled_from(["auto", "min", "max"]))
    monitor = (
        draw(st.sampled_from(auto_monitors))
        if mode == "auto"
        else draw(st.sampled_from(["val_loss", "score"]))
    )
    params = dict(
        monitor=monitor,
        min_delta=draw(delta_strategy),
        patience=draw(st.sampled_from([0, 0, 1, 1, 2, 3, 5])),
        mode=mode,
        baseline=draw(baseline_strategy),
        restore_best_weights=draw(st.booleans()),
        start_from_epoch=draw(st.sampled_from([0, 0, 0, 1, 2, 4])),
    )
    return params, draw(values_strategy())


def check_parity(keras_callback_class, model, semantics, params, values):
    ours = runlens.EarlyStopping(**params, semantics=semantics).replay(values)
    theirs = drive_early_stopping(keras_callback_class(**params), model, params["monitor"], values)
    context = (params, values, ours, theirs)
    assert ours.stopped_epoch == theirs.stopped_epoch, context
    assert ours.epochs_trained == theirs.epochs_trained, context
    assert ours.wait == theirs.wait, context
    assert ours.restored_epoch == theirs.held_epoch, context
    if ours.best_value is None:
        unset = None if semantics == "keras3" else (math.inf, -math.inf)
        assert theirs.best is None if unset is None else theirs.best in unset, context
    else:
        assert same_float(ours.best_value, theirs.best), context
        assert ours.best_epoch == theirs.best_epoch, context


def reference(semantics: str, library, make_model):
    """A module fixture's body: the library's real EarlyStopping class, a tiny model for it and a
    timer of the cases, which reports when the module's tests are done."""
    timer = CaseTimer(f"EarlyStopping {semantics} parity")
    yield library.callbacks.EarlyStopping, make_model(), timer
    timer.report()


@pytest.fixture(scope="module")
def keras3():
    import keras

    yield from reference("keras3", keras, keras3_model)


@pytest.fixture(scope="module")
def keras2():
    import tf_keras

    yield from reference("keras2", tf_keras, keras2_model)


def parity_cases(cases_count: int, auto_monitors: list[str]):
    """Decorator: ``cases_count`` generated cases (auto mode picks from ``auto_monitors``), after
    every one of EDGE_CASES."""

    def decorate(test):
        test = with_examples(EDGE_CASES)(test)
        return settings(max_examples=cases_count, deadline=None, database=None)(
            given(case=cases(auto_monitors))(test)
        )

    return decorate


@parity_cases(KERAS3_CASES, KERAS3_AUTO_MONITORS)
def test_keras3_parity(keras3, case):
    callback_class, model, timer = keras3
    timer.run(check_parity, callback_class, model, "keras3", *case)


@parity_cases(KERAS2_CASES, KERAS2_AUTO_MONITORS)
def test_keras2_parity(keras2, case):
    callback_class, model, timer = keras2
    timer.run(check_parity, callback_class, model, "keras2", *case)
