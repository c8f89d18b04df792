"""The shared monitor: mode="auto" as Keras resolves it, the improvement test, input checking.

Keras 3 resolves ``mode="auto"`` from the compiled model's metric objects, so the direction table
is checked against real compiled models logging every built-in metric Keras 3 accepts (by string
and by object), through the real ``keras.callbacks.EarlyStopping``. tf-keras 2.x goes by the name
alone, with a different rule in each callback; those rules are checked on the real tf-keras
callbacks over generated names.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from _policy_helpers import delta_strategy, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
from runlens.errors import RunlensError
from runlens.policies.monitor import _KERAS3_MAX, _KERAS3_MIN, as_epoch_values, metric_direction

_BINARY_METRICS = """accuracy acc Accuracy binary_accuracy BinaryAccuracy auc AUC precision Precision
    recall Recall bce BCE binary_crossentropy BinaryCrossentropy mse MSE mae MAE mape MAPE msle MSLE
    mean_squared_error MeanSquaredError root_mean_squared_error RootMeanSquaredError
    mean_absolute_error MeanAbsoluteError mean_absolute_percentage_error MeanAbsolutePercentageError
    mean_squared_logarithmic_error MeanSquaredLogarithmicError hinge Hinge squared_hinge SquaredHinge
    kl_divergence KLDivergence poisson Poisson log_cosh_error LogCoshError cosine_similarity
    CosineSimilarity r2_score R2Score pearson_correlation PearsonCorrelation concordance_correlation
    ConcordanceCorrelation binary_io_u BinaryIoU true_positives false_negatives""".split()
_CATEGORICAL_METRICS = """categorical_accuracy CategoricalAccuracy top_k_categorical_accuracy
    TopKCategoricalAccuracy categorical_crossentropy CategoricalCrossentropy categorical_hinge
    CategoricalHinge f1_score F1Score f_beta_score FBetaScore""".split()
_SPARSE_METRICS = """sparse_categorical_accuracy SparseCategoricalAccuracy
    sparse_top_k_categorical_accuracy SparseTopKCategoricalAccuracy sparse_categorical_crossentropy
    SparseCategoricalCrossentropy""".split()


def _keras3_logged_names():
    """History keys of real fits logging every built-in Keras 3 metric, by string and by object.

    (Plus their ``val_`` names: Keras strips that prefix before looking the metric up.)
    """
    import keras

    M = keras.metrics
    keras.utils.set_random_seed(0)
    x = np.linspace(-1, 1, 24, dtype="float32").reshape(12, 2)
    labels = np.arange(12) % 3
    setups = [
        (
            1,
            "sigmoid",
            (labels % 2).astype("float32").reshape(-1, 1),
            "binary_crossentropy",
            _BINARY_METRICS
            + [
                M.AUC(),
                M.AUC(),
                M.Precision(),
                M.PrecisionAtRecall(0.5),
                M.RecallAtPrecision(0.5),
                M.SensitivityAtSpecificity(0.5),
                M.SpecificityAtSensitivity(0.5),
                M.BinaryIoU(),
                M.LogCoshError(),
                M.IoU(num_classes=2, target_class_ids=[0]),
                M.MeanIoU(num_classes=2),
                M.TruePositives(),
            ],
        ),
        (
            3,
            "softmax",
            np.eye(3, dtype="float32")[labels],
            "categorical_crossentropy",
            _CATEGORICAL_METRICS
            + [
                M.FBetaScore(),
                M.OneHotIoU(num_classes=3, target_class_ids=[0]),
                M.OneHotMeanIoU(num_classes=3),
            ],
        ),
        (3, "softmax", labels.astype("int32"), "sparse_categorical_crossentropy", _SPARSE_METRICS),
    ]
    for units, activation, y, loss, metrics in setups:
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(units, activation=activation)])
        model.compile(optimizer="sgd", loss=loss, metrics=metrics, run_eagerly=True)
        history = model.fit(x, y, epochs=1, batch_size=12, verbose=0)
        yield model, sorted(history.history) + [f"val_{name}" for name in sorted(history.history)]


def _keras3_direction(keras, model, monitor):
    callback = keras.callbacks.EarlyStopping(monitor=monitor)
    callback.set_model(model)
    callback.on_train_begin()
    try:
        callback.on_epoch_end(0, {monitor: 1.0})
    except ValueError:
        return None
    return "min" if callback.monitor_op is keras.ops.less else "max"


def test_auto_mode_matches_keras3_on_every_builtin_metric():
    import keras

    seen = set()
    for model, names in _keras3_logged_names():
        for name in names:
            expected = _keras3_direction(keras, model, name)
            base, _, suffix = name.removeprefix("val_").rpartition("_")
            if expected is None and suffix.isdigit() and base in _KERAS3_MAX | _KERAS3_MIN:
                # Two metrics named alike in one compile(): Keras suffixes the log key but not the
                # object, and cannot resolve it; runlens gives it the metric's own direction.
                assert metric_direction(name) == metric_direction(base), name
            elif expected is None:
                with pytest.raises(RunlensError, match="mode='min' or mode='max'"):
                    metric_direction(name)
            else:
                assert metric_direction(name) == expected, name
                seen.add(name.removeprefix("val_"))
    # every entry of the table was confirmed by a metric Keras logged under that name
    stripped = {n.rsplit("_", 1)[0] if n.rsplit("_", 1)[-1].isdigit() else n for n in seen}
    assert (_KERAS3_MAX | _KERAS3_MIN) - seen - stripped == set()
    assert any(n.startswith("auc_") for n in seen)  # the uniqueness suffix really occurred


_NAME_PARTS = ["val_", "acc", "accuracy", "auc", "loss", "fmeasure", "_1", "my", "_", "top", "precision"]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(_NAME_PARTS), min_size=1, max_size=4))
def test_auto_mode_matches_tf_keras_name_rules(parts):
    import tf_keras

    name = "".join(parts)
    callbacks = tf_keras.callbacks
    es = callbacks.EarlyStopping(monitor=name)
    assert metric_direction(name, semantics="keras2") == ("max" if es.monitor_op is np.greater else "min")
    lr = callbacks.ReduceLROnPlateau(monitor=name)
    assert metric_direction(name, semantics="keras2", callback="ReduceLROnPlateau") == (
        "max" if lr.best == -math.inf else "min"
    )
    ckpt = callbacks.ModelCheckpoint("unused.weights.h5", monitor=name, save_weights_only=True)
    assert metric_direction(name, semantics="keras2", callback="ModelCheckpoint") == (
        "max" if ckpt.monitor_op is np.greater else "min"
    )


def test_explicit_mode_wins_and_unknown_names_need_one():
    assert metric_direction("my_score", mode="max") == "max"
    assert metric_direction("val_loss", mode="max") == "max"
    with pytest.raises(RunlensError, match=r"'val_my_score'.*mode='min' or mode='max'"):
        runlens.EarlyStopping(monitor="val_my_score")
    # keras2 never refuses: anything not accuracy-like is minimised
    assert runlens.EarlyStopping(monitor="val_my_score", semantics="keras2").monitor.direction == "min"


@settings(max_examples=300, deadline=None)
@given(
    values=values_strategy(),
    min_delta=delta_strategy,
    semantics=st.sampled_from(["keras3", "keras2"]),
    mode=st.sampled_from(["min", "max"]),
)
def test_scalar_improves_agrees_with_the_vectorised_replay(values, min_delta, semantics, mode):
    """Monitor.improves (for online callbacks) takes the same decisions as the replay's arrays."""
    policy = runlens.EarlyStopping(min_delta=min_delta, mode=mode, patience=10**6, semantics=semantics)
    trace = policy.trace(values)
    best = None
    for epoch, value in enumerate(values):
        if value is None:
            continue
        improved = policy.monitor.improves(value, best)
        assert improved == trace.improved[epoch]
        if improved:
            best = value


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: runlens.EarlyStopping(mode="maximum"), "mode must be one of"),
        (lambda: runlens.EarlyStopping(patience=-1), "patience must be a whole number"),
        (lambda: runlens.EarlyStopping(patience=1.5), "patience must be a whole number"),
        (lambda: runlens.EarlyStopping(min_delta=math.nan), "min_delta must be a finite number"),
        (lambda: runlens.EarlyStopping(baseline=math.nan), "baseline must be a number"),
        (lambda: runlens.EarlyStopping(restore_best_weights="yes"), "restore_best_weights"),
        (lambda: runlens.EarlyStopping(start_from_epoch=-2), "start_from_epoch"),
        (lambda: runlens.EarlyStopping(semantics="keras1"), "semantics must be one of"),
        (lambda: runlens.EarlyStopping(monitor=""), "monitor must be a metric name"),
        (lambda: runlens.ReduceLROnPlateau(factor=1.0), "factor must be >= 0 and < 1"),
        (lambda: runlens.ReduceLROnPlateau(min_lr=-1e-3), "min_lr must be >= 0"),
        (lambda: runlens.ReduceLROnPlateau(cooldown=-1), "cooldown"),
        (lambda: runlens.ReduceLROnPlateau().replay([1.0], initial_lr=math.inf), "initial_lr"),
        (
            lambda: runlens.ReduceLROnPlateau().replay([1.0], initial_lr=0.1, logged_lr_timing="before"),
            "logged_lr_timing",
        ),
        (lambda: runlens.EarlyStopping().replay("0.5 0.4"), "values must be a sequence"),
        (lambda: runlens.EarlyStopping().replay([0.5, "x"]), "values must hold numbers"),
    ],
)
def test_bad_arguments_name_the_option(call, message):
    with pytest.raises(RunlensError, match=message):
        call()


def test_missing_and_nan_stay_different():
    series = pd.Series(pd.arrays.FloatingArray(np.array([0.5, np.nan, 0.0]), np.array([False, False, True])))
    floats, present = as_epoch_values(series)
    assert present.tolist() == [True, True, False] and math.isnan(floats[1])
    floats, present = as_epoch_values([0.5, None, pd.NA, math.nan])
    assert present.tolist() == [True, False, False, True]
    floats, present = as_epoch_values(np.array([0.5, np.nan]))  # a plain float array: NaN was logged
    assert present.tolist() == [True, True]
    floats, present = as_epoch_values(pd.Series([0.5, np.nan]))  # float64 Series: pandas' missing marker
    assert present.tolist() == [True, False]
    # the replay sees the difference: a logged NaN counts as a non-improving epoch, a gap does not
    es = runlens.EarlyStopping(patience=1)
    assert es.replay([0.5, math.nan, 0.4]).stopped_epoch == 1
    assert es.replay([0.5, None, 0.4]).stopped_epoch is None


def test_monitor_repr_round_trips():
    es = runlens.EarlyStopping(monitor="val_accuracy", min_delta=0.01, patience=3, baseline=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = eval(repr(es), {"EarlyStopping": runlens.EarlyStopping})
    assert repr(again) == repr(es)
    lr = runlens.ReduceLROnPlateau(factor=0.5, cooldown=2)
    assert repr(eval(repr(lr), {"ReduceLROnPlateau": runlens.ReduceLROnPlateau})) == repr(lr)
