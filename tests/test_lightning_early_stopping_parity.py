"""runlens.lightning.EarlyStopping reproduces Lightning's EarlyStopping to the bit.

Each hypothesis case drives a real ``lightning.pytorch.callbacks.EarlyStopping`` through its real
hooks on a real ``Trainer`` set to fitting: ``on_train_epoch_end`` (one check per epoch, the
default) or ``on_validation_end`` (a Trainer with ``check_val_every_n_epoch=2``, where the check runs
after validation). Before each check ``trainer.callback_metrics`` holds the value as ``self.log``
makes it (a tensor of the default dtype, float32) or lacks the monitor (a missing check,
``strict=False``). After each check the test reads ``wait_count``, ``best_score`` and
``trainer.should_stop``; a case stops once ``should_stop`` is set and the check index has reached
``can_stop_from`` (the sticky stop that ``min_epochs`` delays). Set RUNLENS_PARITY_CASES to run more.
"""

from __future__ import annotations

import math
import os

import lightning as L
import numpy as np
import pytest
import torch
from _policy_helpers import DELTA_POOL, VALUE_POOL, CaseTimer, same_float, values_strategy
from framework_fits import QUIET_TRAINER
from hypothesis import given, settings
from hypothesis import strategies as st
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason
from lightning.pytorch.trainer.states import TrainerFn

import runlens.lightning

CASES = int(os.environ.get("RUNLENS_PARITY_CASES", 2000))

REASON = {
    EarlyStoppingReason.NOT_STOPPED: None,
    EarlyStoppingReason.PATIENCE_EXHAUSTED: "patience",
    EarlyStoppingReason.NON_FINITE_METRIC: "not_finite",
    EarlyStoppingReason.STOPPING_THRESHOLD: "stopping_threshold",
    EarlyStoppingReason.DIVERGENCE_THRESHOLD: "divergence_threshold",
}


def _half_ulp_deltas(base: float) -> list[float]:
    """min_delta values just off half a float32 ulp of ``base``: rounding min_delta to float32
    before subtracting (as torch does) and subtracting in float64 then rounding once disagree there
    (1.0 - (2**-25 + 2**-50) is 1.0 in torch, 1 - 2**-24 the other way)."""
    half = float(np.spacing(np.float32(base))) / 2
    tiny = half * 2.0**-25
    return [sign * (half + t) for sign in (1, -1) for t in (tiny, -tiny, 0.0)]


HALF_ULP_BASES = (1.0, 0.5, 0.75, 2.0, 0.25, 100.0, -1.0)
FLOAT32_DELTAS = [d for b in HALF_ULP_BASES for d in _half_ulp_deltas(b)] + [1e-8, 0.1, 1e-45]
THRESHOLDS = [v for v in VALUE_POOL if not math.isnan(v)] + [1e39, -1e39, 0.1, 0.30000000000000004]


@st.composite
def cases(draw):
    params = dict(
        monitor="val_loss",
        min_delta=draw(
            st.one_of(st.sampled_from(DELTA_POOL), st.sampled_from(FLOAT32_DELTAS), st.floats(-2.0, 2.0))
        ),
        patience=draw(st.sampled_from([0, 1, 1, 2, 3, 3, 5])),
        mode=draw(st.sampled_from(["min", "max"])),
        check_finite=draw(st.booleans()),
        stopping_threshold=draw(
            st.one_of(st.none(), st.none(), st.sampled_from(THRESHOLDS), st.floats(-3, 3))
        ),
        divergence_threshold=draw(
            st.one_of(st.none(), st.none(), st.sampled_from(THRESHOLDS), st.floats(-3, 3))
        ),
    )
    values = draw(values_strategy(max_size=30))
    if draw(st.integers(0, 3)) == 0:  # values one float32 ulp apart and a min_delta half an ulp off
        base = draw(st.sampled_from(HALF_ULP_BASES))
        params["min_delta"] = draw(st.sampled_from(_half_ulp_deltas(base)))
        alphabet = [float(np.float32(base) + k * np.spacing(np.float32(base))) for k in (-1, 0, 1)]
        values = draw(st.lists(st.one_of(st.none(), st.sampled_from(alphabet)), max_size=20))
    logged = [v for v in values if v is not None and math.isfinite(v)]
    for name in ("stopping_threshold", "divergence_threshold"):
        if logged and draw(st.integers(0, 3)) == 0:  # a threshold a float64 hair off a logged value
            params[name] = draw(st.sampled_from(logged)) * (1 + draw(st.sampled_from([0.0, 1e-12, -1e-12])))
    can_stop_from = draw(st.one_of(st.just(0), st.integers(0, 12)))
    hook = draw(st.sampled_from(["on_train_epoch_end", "on_validation_end"]))
    return params, values, can_stop_from, hook


@pytest.fixture(scope="module")
def trainers():
    """Real Trainers set to fitting: one checks at train epoch end, the other after validation."""
    made = {}
    for hook, every in (("on_train_epoch_end", 1), ("on_validation_end", 2)):
        trainer = L.Trainer(
            logger=False, enable_checkpointing=False, check_val_every_n_epoch=every, **QUIET_TRAINER
        )
        trainer.state.fn = TrainerFn.FITTING
        made[hook] = trainer
    timer = CaseTimer("Lightning EarlyStopping parity")
    yield made, L.LightningModule(), timer
    timer.report()


def drive(trainer, module, hook: str, params: dict, values: list, can_stop_from: int) -> dict:
    """The real callback over ``values`` through ``hook``, as the fit loop would call it."""
    callback = EarlyStopping(**params, strict=False)
    callback.setup(trainer, module, "fit")
    assert callback._check_on_train_epoch_end == (hook == "on_train_epoch_end")
    trainer.should_stop = False
    waits, improved, signaled, stopped = [], [], None, None
    for check, value in enumerate(values):
        metrics = trainer.callback_metrics
        metrics.clear()
        metrics["other_metric"] = torch.tensor(0.0)
        if value is not None:
            metrics[params["monitor"]] = torch.tensor(value, dtype=torch.get_default_dtype())
        trainer.fit_loop.epoch_progress.current.completed = check  # trainer.current_epoch
        getattr(callback, hook)(trainer, module)
        waits.append(callback.wait_count)
        # an improvement makes best_score the check's own tensor (a squeezed view of it)
        if value is not None and callback.best_score.data_ptr() == metrics[params["monitor"]].data_ptr():
            improved.append(check)
        if trainer.should_stop and signaled is None:
            signaled = check
        if trainer.should_stop and check >= can_stop_from:
            stopped = check
            break
    return dict(
        stopped=stopped,
        signaled=signaled,
        waits=tuple(waits),
        improved=tuple(improved),
        best=float(callback.best_score),
        reason=REASON[callback.stopping_reason],
        last_signal=callback.stopped_epoch if signaled is not None else None,
    )


def check(trainers, case) -> None:
    made, module, _ = trainers
    params, values, can_stop_from, hook = case
    theirs = drive(made[hook], module, hook, params, values, can_stop_from)
    ours = runlens.lightning.EarlyStopping(**params).replay(values, can_stop_from=can_stop_from)
    context = (params, values, can_stop_from, ours, theirs)
    assert ours.stopped_at == theirs["stopped"] and ours.signaled_at == theirs["signaled"], context
    assert ours.wait == theirs["waits"] and ours.improved_at == theirs["improved"], context
    assert ours.reason == theirs["reason"], context
    assert ours.best_at == (theirs["improved"][-1] if theirs["improved"] else None), context
    if ours.best_at is None:
        assert math.isinf(theirs["best"]), context
    else:
        assert same_float(ours.best_value, theirs["best"]), context


@settings(max_examples=CASES, deadline=None, database=None)
@given(case=cases())
def test_replay_matches_lightning(trainers, case):
    trainers[2].run(check, trainers, case)


EDGES = [
    # float32: 1 - (2**-25 + 2**-50) is 1 - 2**-24 in float64-then-float32, but 1.0 in torch
    (dict(monitor="val_loss", min_delta=-(2.0**-25 + 2.0**-50), patience=1), [1.0, 1.0, 1.0]),
    (dict(monitor="val_loss", min_delta=-0.5, patience=2), [1.0, 1.4, 1.8, 2.2, 2.3]),  # negative delta
    (dict(monitor="val_loss", check_finite=False, patience=2), [1.0, math.nan, math.inf, -math.inf, 0.0]),
    # float32(0.1) > 0.1 in float64, not once the threshold is rounded to float32 as torch does
    (dict(monitor="val_acc", mode="max", stopping_threshold=0.1), [0.0, 0.1, 0.30000000000000004]),
    (dict(monitor="val_acc", mode="max", divergence_threshold=0.2, patience=5), [0.5, 0.3, 0.2, 0.19]),
    (dict(monitor="val_loss", stopping_threshold=1e39), [3e38, 1.0]),  # the threshold overflows to inf
]


@pytest.mark.parametrize("params, values", EDGES)
@pytest.mark.parametrize("can_stop_from", [0, 3])
def test_edge_cases_match_lightning(trainers, params, values, can_stop_from):
    check(trainers, (params, values, can_stop_from, "on_train_epoch_end"))


def test_a_delayed_stop_keeps_checking():
    """Under min_epochs the callback goes on: a later improvement resets wait, the stop stays."""
    result = runlens.lightning.EarlyStopping("val_loss", patience=1).replay(
        [1.0, 1.5, 0.5, 0.6, 0.7], can_stop_from=3
    )
    assert result.signaled_at == 1 and result.stopped_at == 3
    assert result.best_at == 2 and result.wait == (0, 1, 0, 1)


def test_can_stop_from_counts_checks_before_min_epochs():
    assert runlens.lightning.can_stop_from([0, 1, 2, 3], None) == 0
    assert runlens.lightning.can_stop_from([0, 1, 2, 3], 1) == 0
    assert runlens.lightning.can_stop_from([0, 1, 2, 3], 4) == 3
    assert runlens.lightning.can_stop_from([1, 3, 5], 4) == 1
    with pytest.raises(runlens.RunlensError, match="min_epochs"):
        runlens.lightning.can_stop_from([0, 1], -1)


def test_bad_arguments_are_errors_naming_the_option():
    for arguments, name in [
        (dict(monitor=""), "monitor"),
        (dict(monitor="val_loss", mode="auto"), "mode"),
        (dict(monitor="val_loss", patience=-1), "patience"),
        (dict(monitor="val_loss", min_delta=math.nan), "min_delta"),
        (dict(monitor="val_loss", stopping_threshold=math.nan), "stopping_threshold"),
        (dict(monitor="val_loss", divergence_threshold="1"), "divergence_threshold"),
        (dict(monitor="val_loss", check_finite=1), "check_finite"),
    ]:
        with pytest.raises(runlens.RunlensError, match=name):
            runlens.lightning.EarlyStopping(**arguments)
    with pytest.raises(runlens.RunlensError, match="can_stop_from"):
        runlens.lightning.EarlyStopping("val_loss").replay([1.0], can_stop_from=-1)


def test_settings_are_lightnings_arguments_in_order():
    policy = runlens.lightning.EarlyStopping("val_loss", patience=5)
    assert list(policy.settings()) == [
        "monitor",
        "min_delta",
        "patience",
        "mode",
        "check_finite",
        "stopping_threshold",
        "divergence_threshold",
    ]
    real = EarlyStopping(**policy.settings())
    assert (real.patience, real.mode, real.check_finite) == (5, "min", True)
    assert repr(policy).startswith("EarlyStopping(monitor='val_loss', min_delta=0.0, patience=5")
