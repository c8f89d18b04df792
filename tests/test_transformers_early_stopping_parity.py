"""runlens.transformers.EarlyStoppingCallback reproduces HF's callback and the Trainer's best metric.

Each hypothesis case builds real ``TrainingArguments`` (their ``__post_init__`` resolves
``greater_is_better``), puts them on a real ``Trainer`` (a tiny ``nn.Module``, nothing downloaded)
with a fresh ``TrainerState`` and ``TrainerControl``, and runs every evaluation as
``Trainer._maybe_log_save_evaluate`` does: the callback's ``on_evaluate`` (which ``evaluate()`` calls)
with the evaluation's metrics, then the Trainer's own ``_determine_best_metric``. A None value is an
evaluation whose metrics lack the monitored key (one of several eval datasets): the callback skips
it and the test does not call ``_determine_best_metric`` for it (the Trainer would raise there).
The test compares the stop, the callback's counter after each evaluation, ``best_metric`` and
``best_global_step`` with the replay. Set RUNLENS_PARITY_CASES to run more cases.
"""

from __future__ import annotations

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
import transformers
from _policy_helpers import VALUE_POOL, CaseTimer, same_float, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import EarlyStoppingCallback, Trainer, TrainerControl, TrainerState, TrainingArguments

import runlens.transformers

CASES = int(os.environ.get("RUNLENS_PARITY_CASES", 2000))

METRICS = ["loss", "eval_loss", "accuracy", "eval_f1", "my_loss", "bleu", "eval_val_loss", "lossy"]
THRESHOLDS = [0.0, 0.0, 0.01, 0.1, 0.5, 1.0, -0.1, 1e-9, math.inf] + [
    v for v in VALUE_POOL if math.isfinite(v)
]


@st.composite
def cases(draw):
    params = dict(
        early_stopping_patience=draw(st.sampled_from([0, 1, 1, 2, 3, 5])),
        early_stopping_threshold=draw(st.one_of(st.sampled_from(THRESHOLDS), st.floats(-1.0, 2.0))),
        metric_for_best_model=draw(st.sampled_from(METRICS)),
        greater_is_better=draw(st.sampled_from([None, None, True, False])),
    )
    values = draw(values_strategy(max_size=30))
    logged = [v for v in values if v is not None and math.isfinite(v)]
    if len(logged) > 1 and draw(st.booleans()):  # a threshold equal to a gap between two values
        a, b = draw(st.sampled_from(logged)), draw(st.sampled_from(logged))
        params["early_stopping_threshold"] = abs(a - b)
    return params, values


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    transformers.logging.set_verbosity_error()  # "did not find eval_x so early stopping is disabled"
    output = tmp_path_factory.mktemp("hf_parity")
    args = TrainingArguments(output_dir=str(output), report_to=[], use_cpu=True)
    trainer = Trainer(model=torch.nn.Linear(2, 1), args=args)
    timer = CaseTimer("HF EarlyStoppingCallback parity")
    yield trainer, output, timer
    timer.report()


def drive(trainer, output, params: dict, values: list) -> dict:
    """The real callback and the Trainer's best-metric update over one evaluation per value."""
    args = TrainingArguments(
        output_dir=str(output),
        eval_strategy="epoch",
        save_strategy="epoch",  # the Trainer records best_global_step for this strategy
        load_best_model_at_end=True,
        metric_for_best_model=params["metric_for_best_model"],
        greater_is_better=params["greater_is_better"],
        report_to=[],
        use_cpu=True,
    )
    trainer.args, trainer.state, trainer.control = args, TrainerState(), TrainerControl()
    callback = EarlyStoppingCallback(params["early_stopping_patience"], params["early_stopping_threshold"])
    callback.on_train_begin(args, trainer.state, trainer.control)
    key = "eval_" + params["metric_for_best_model"].removeprefix("eval_")
    counters, stopped = [], None
    for evaluation, value in enumerate(values):
        trainer.state.global_step = evaluation + 1
        metrics = {"eval_runtime": 0.01} if value is None else {key: value, "eval_runtime": 0.01}
        trainer.control = (
            callback.on_evaluate(args, trainer.state, trainer.control, metrics=metrics) or trainer.control
        )
        if value is not None:
            trainer._determine_best_metric(metrics=metrics, trial=None)
        counters.append(callback.early_stopping_patience_counter)
        if trainer.control.should_training_stop:
            stopped = evaluation
            break
    step = trainer.state.best_global_step
    return dict(
        stopped=stopped,
        counters=tuple(counters),
        best=trainer.state.best_metric,
        best_at=None if step is None else step - 1,
        greater_is_better=args.greater_is_better,
    )


def check(trainer, output, params: dict, values: list) -> None:
    theirs = drive(trainer, output, params, values)
    policy = runlens.transformers.EarlyStoppingCallback(**params)
    ours = policy.replay(values)
    context = (params, values, ours, theirs)
    assert policy.greater_is_better == theirs["greater_is_better"], context
    assert ours.stopped_at == theirs["stopped"] and ours.counter == theirs["counters"], context
    assert ours.best_at == theirs["best_at"], context
    assert (ours.best_metric is None) == (theirs["best"] is None), context
    if ours.best_metric is not None:
        assert same_float(ours.best_metric, theirs["best"]), context


@settings(max_examples=CASES, deadline=None, database=None)
@given(case=cases())
def test_replay_matches_transformers(trainer, case):
    trainer[2].run(check, trainer[0], trainer[1], *case)


EDGES = [
    # the quirk: each value beats the previous one by less than the threshold; the Trainer's best
    # still follows it, so the callback never sees an improvement and stops at the 4th evaluation
    (dict(early_stopping_patience=3, early_stopping_threshold=0.01), [1.0, 0.995, 0.991, 0.987, 0.983]),
    # a first NaN resets the counter; the Trainer's best stays inf, the next value clears any threshold
    (dict(early_stopping_patience=1, early_stopping_threshold=5.0), [math.nan, 3.0, 2.0]),
    (dict(early_stopping_patience=0), [1.0, 0.5]),  # patience 0 stops at the first evaluation
    (dict(early_stopping_patience=2, metric_for_best_model="accuracy"), [0.5, None, 0.4, 0.45, 0.6]),
]


@pytest.mark.parametrize("params, values", EDGES)
def test_edge_cases_match_transformers(trainer, params, values):
    full = dict(early_stopping_threshold=0.0, metric_for_best_model="loss", greater_is_better=None) | params
    check(trainer[0], trainer[1], full, values)


def test_the_quirk_stops_where_a_threshold_from_the_last_improvement_would_not():
    result = runlens.transformers.EarlyStoppingCallback(3, 0.01).replay([1.0, 0.995, 0.991, 0.987])
    assert result.stopped_at == 3 and result.best_at == 3 and result.counter == (0, 1, 2, 3)


def test_bad_arguments_are_errors_naming_the_option():
    make = runlens.transformers.EarlyStoppingCallback
    for arguments, name in [
        (dict(early_stopping_patience=-1), "early_stopping_patience"),
        (dict(early_stopping_threshold=None), "early_stopping_threshold"),
        (dict(early_stopping_threshold=math.nan), "early_stopping_threshold"),
        (dict(metric_for_best_model=""), "metric_for_best_model"),
        (dict(greater_is_better="yes"), "greater_is_better"),
    ]:
        with pytest.raises(runlens.RunlensError, match=name):
            make(**arguments)


def test_settings_and_monitor():
    policy = runlens.transformers.EarlyStoppingCallback(2, metric_for_best_model="eval_accuracy")
    assert policy.settings() == {
        "early_stopping_patience": 2,
        "early_stopping_threshold": 0.0,
        "metric_for_best_model": "eval_accuracy",
        "greater_is_better": True,
    }
    assert policy.monitor == "eval_accuracy"
    assert runlens.transformers.EarlyStoppingCallback().monitor == "eval_loss"
