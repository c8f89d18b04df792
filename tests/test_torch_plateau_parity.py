"""runlens.torch.ReduceLROnPlateau reproduces torch.optim.lr_scheduler.ReduceLROnPlateau to the bit.

Each hypothesis case builds a real SGD optimizer (one parameter group) at the case's starting rate
and a real ``ReduceLROnPlateau`` with the case's arguments, calls ``step(value)`` for every logged
value (a None makes no step), reads ``param_groups[0]["lr"]`` before every step and after the last,
and compares the rates, ``num_bad_epochs`` and ``best`` with the replay. Set RUNLENS_PARITY_CASES
to run more cases than CI does.
"""

from __future__ import annotations

import math
import os
import warnings

import pytest
from _policy_helpers import CaseTimer, same_float, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens.torch

torch = pytest.importorskip("torch")

CASES = int(os.environ.get("RUNLENS_PARITY_CASES", 2000))

LR_POOL = [0.1, 0.01, 1e-3, 3e-4, 1.0, 0.5, 2e-5, 1e-7, 1e-9]
FACTOR_POOL = [0.1, 0.5, 0.2, 1 / 3, 0.9, 0.0, 0.999999, -0.5]
THRESHOLD_POOL = [1e-4, 0.0, 0.01, 0.1, 0.5, 1.0, 2.0, -0.1, 1e-12]
EPS_POOL = [1e-8, 0.0, 1e-3, 0.05, 1.0, 1e-12]


@st.composite
def cases(draw):
    initial_lr = draw(st.one_of(st.sampled_from(LR_POOL), st.floats(0.0, 10.0)))
    params = dict(
        mode=draw(st.sampled_from(["min", "max"])),
        factor=draw(st.one_of(st.sampled_from(FACTOR_POOL), st.floats(-1.0, 0.999))),
        patience=draw(st.sampled_from([0, 0, 1, 1, 2, 3, 10])),
        threshold=draw(st.one_of(st.sampled_from(THRESHOLD_POOL), st.floats(-1.0, 3.0))),
        threshold_mode=draw(st.sampled_from(["rel", "abs"])),
        cooldown=draw(st.sampled_from([0, 0, 1, 2, 3])),
        min_lr=draw(
            st.one_of(
                st.sampled_from([0.0, 1e-5, 1e-3, 0.01]),
                st.just(initial_lr * draw(st.sampled_from([0.1, 0.01, 0.5]))),
                st.floats(0.0, 1.0),
            )
        ),
        eps=draw(st.one_of(st.sampled_from(EPS_POOL), st.floats(0.0, 0.1))),
    )
    return params, draw(values_strategy(max_size=30)), initial_lr


def drive(params: dict, values: list, initial_lr: float):
    """The real scheduler over ``values``: (rates before each value, rate after, bad counts, best)."""
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=initial_lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **params)
    rates, bads = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "lr_scheduler.step() before optimizer.step()"
        for value in values:
            rates.append(optimizer.param_groups[0]["lr"])
            if value is not None:
                scheduler.step(value)
            bads.append(scheduler.num_bad_epochs)
    return tuple(rates), optimizer.param_groups[0]["lr"], tuple(bads), scheduler.best


_BASE = dict(
    mode="min", factor=0.1, patience=0, threshold=1e-4, threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8
)
EDGES = [
    (_BASE, [1.0, 1.0, 1.0], 0.1),
    # patience counts strictly: 2 bad values with patience 2 do not reduce, the third does
    (dict(_BASE, factor=0.5, patience=2, threshold=0.0, threshold_mode="abs"), [1.0, 2.0, 2.0, 2.0], 1.0),
    # eps: a cut smaller than eps is not applied, yet cooldown and the bad count restart
    (dict(_BASE, factor=0.9, cooldown=2, eps=0.05), [1.0] * 8, 0.3),
    # rel threshold with a negative best: best * (1 - threshold) moves the bar the other way
    (dict(_BASE, threshold=0.1), [-1.0, -1.05, -1.2], 1.0),
    (dict(_BASE, mode="max", threshold=1.0), [math.inf, math.nan, -math.inf, 1.0], 1.0),
    # min_lr clamps, then a cut of 0 is never applied
    (dict(_BASE, min_lr=0.05), [1.0] * 5, 1.0),
]


@pytest.fixture(scope="module")
def timer():
    timer = CaseTimer("torch ReduceLROnPlateau parity")
    yield timer
    timer.report()


def check(params: dict, values: list, initial_lr: float) -> None:
    rates, final, bads, best = drive(params, values, initial_lr)
    ours = runlens.torch.ReduceLROnPlateau(**params).replay(values, initial_lr=initial_lr)
    context = (params, values, initial_lr, ours, rates, final)
    assert ours.learning_rates == rates and ours.final_lr == final, context
    assert ours.num_bad_epochs == bads and same_float(ours.best, best), context
    after = rates[1:] + (final,)
    assert ours.reduced_at == tuple(i for i, (a, b) in enumerate(zip(rates, after)) if a != b), context


@settings(max_examples=CASES, deadline=None, database=None)
@given(case=cases())
def test_replay_matches_torch(timer, case):
    timer.run(check, *case)


@pytest.mark.parametrize("params, values, initial_lr", EDGES)
def test_edge_cases_match_torch(params, values, initial_lr):
    check(params, values, initial_lr)
    assert runlens.torch.ReduceLROnPlateau(**params).replay(values, initial_lr=initial_lr).learning_rates


def test_patience_is_strict_unlike_keras():
    values = [1.0, 1.0, 1.0]
    torch_rates = runlens.torch.ReduceLROnPlateau(patience=1).replay(values, initial_lr=0.1).learning_rates
    keras_rates = (
        runlens.ReduceLROnPlateau(patience=1, min_delta=0.0).replay(values, initial_lr=0.1).learning_rates
    )
    assert torch_rates[:2] == (0.1, 0.1) and torch_rates[2] == 0.1
    assert keras_rates[2] < keras_rates[1]  # Keras cuts after the first bad epoch with patience 1


def test_bad_arguments_are_errors_naming_the_option():
    for arguments, name in [
        (dict(factor=1.0), "factor"),
        (dict(mode="best"), "mode"),
        (dict(threshold_mode="relative"), "threshold_mode"),
        (dict(patience=-1), "patience"),
        (dict(cooldown=1.5), "cooldown"),
        (dict(eps=math.nan), "eps"),
        (dict(min_lr=math.inf), "min_lr"),
    ]:
        with pytest.raises(runlens.RunlensError, match=name):
            runlens.torch.ReduceLROnPlateau(**arguments)
        # torch refuses the ones it checks itself
        if name in ("factor", "mode", "threshold_mode"):
            optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
            with pytest.raises(ValueError):
                torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, **arguments)
    with pytest.raises(runlens.RunlensError, match="initial_lr"):
        runlens.torch.ReduceLROnPlateau().replay([1.0], initial_lr=-1.0)


def test_settings_round_trip():
    policy = runlens.torch.ReduceLROnPlateau(mode="max", patience=2, cooldown=1)
    assert list(policy.settings()) == [
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
    ]
    assert runlens.torch.ReduceLROnPlateau(**policy.settings()).settings() == policy.settings()
    assert repr(policy).startswith("ReduceLROnPlateau(mode='max', factor=0.1, patience=2")
