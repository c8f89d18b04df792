"""Lightning's EarlyStopping and the HF Trainer's EarlyStoppingCallback over many runs in one pass
(``replay_runs``, what ``decide_runs`` and so the sweep and the report use) equal their per-run
reference loops (``replay``, held to the real Lightning callback by
tests/test_lightning_early_stopping_parity.py and to real Trainer fits by
tests/test_frameworks_e2e.py) over generated cases: ragged runs, checks without the monitor or
without a row, NaN and infinities, float32 ties and near-ties, both directions, every threshold."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _policy_helpers import DELTA_POOL, VALUE_POOL, epoch_frame, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
import runlens.lightning
import runlens.transformers
from runlens.policies.runs import decide, decide_runs, run_series

THRESHOLDS = [v for v in VALUE_POOL if not math.isnan(v)]

lightning_policies = st.builds(
    runlens.lightning.EarlyStopping,
    st.just("val_loss"),
    min_delta=st.one_of(st.sampled_from(DELTA_POOL), st.floats(-2.0, 2.0)),
    patience=st.sampled_from([0, 1, 2, 3, 5, 30]),
    mode=st.sampled_from(["min", "max"]),
    check_finite=st.booleans(),
    stopping_threshold=st.one_of(st.none(), st.sampled_from(THRESHOLDS), st.floats(-3.0, 3.0)),
    divergence_threshold=st.one_of(st.none(), st.sampled_from(THRESHOLDS), st.floats(-3.0, 3.0)),
)

transformers_policies = st.builds(
    runlens.transformers.EarlyStoppingCallback,
    st.sampled_from([1, 2, 3, 5, 30]),
    st.one_of(st.sampled_from([0.0, 1e-4, 0.1, 0.5]), st.floats(0.0, 2.0)),
    metric_for_best_model=st.just("loss"),
    greater_is_better=st.booleans(),
)
policies = st.one_of(lightning_policies, transformers_policies)

ragged_runs = st.lists(
    st.tuples(values_strategy(max_size=30).filter(bool), st.lists(st.booleans(), min_size=30, max_size=30)),
    min_size=1,
    max_size=8,
)


def _frame(runs: list[tuple[list, list[bool]]], monitor: str) -> pd.DataFrame:
    """The runs in an epoch frame, the values under ``monitor``."""
    return epoch_frame({f"r{i:02d}": {monitor: values} for i, (values, _) in enumerate(runs)})


def _series(runs: list[tuple[list, list[bool]]], monitor: str):
    """The runs' series; epochs marked dropped have no row (each run keeps its first), so a run's
    checks are its rows, some without the monitor."""
    keep = np.concatenate([[True, *(not d for d in drops[1 : len(v)])] for v, drops in runs])
    return run_series(_frame(runs, monitor)[keep].reset_index(drop=True), monitor)


@settings(max_examples=500, deadline=None, database=None)
@given(runs=ragged_runs, policy=policies)
def test_every_run_in_one_pass_equals_the_replay_run_by_run(runs, policy):
    series = _series(runs, policy.monitor)
    batched = decide_runs(policy, series)
    for i, s in enumerate(series):
        reference = decide(policy, s)
        got = tuple(int(getattr(batched, k)[i, 0]) for k in ("stopped", "restored", "best", "trained"))
        assert got == (reference.stopped, reference.restored, reference.best, reference.trained), s.values


def _run_by_run(policy):
    """The same policy without its one-pass replay_runs: decided run by run."""
    return type("RunByRun", (type(policy),), {"replay_runs": None})(**policy.settings())


@settings(max_examples=60, deadline=None, database=None)
@given(runs=ragged_runs, policy=policies)
def test_replay_and_sweep_tables_equal_the_run_by_run_tables(runs, policy):
    """runlens.replay and runlens.sweep (what the report shows) give the same tables, value for
    value, with the one pass as with the replay run by run."""
    frame = _frame(runs, policy.monitor)
    plain = _run_by_run(policy)
    assert plain.settings() == policy.settings()
    pd.testing.assert_frame_equal(runlens.replay(frame, policy), runlens.replay(frame, plain))
    grid = {name: [1, 2, 5] for name in policy.sweep_grid}  # its patience
    fast_sweep, plain_sweep = runlens.sweep(frame, policy, **grid), runlens.sweep(frame, plain, **grid)
    pd.testing.assert_frame_equal(fast_sweep.table, plain_sweep.table)
    assert fast_sweep.recommended == plain_sweep.recommended


def test_a_stop_at_the_first_check_and_runs_that_never_stop():
    """One explicit case of each outcome: not finite at the first check, a threshold, patience,
    never (the last check's weights), and a run whose monitor is never logged."""
    runs = {
        "nan_first": [float("nan"), 1.0, 0.5],
        "threshold": [0.9, 0.05, 0.01],
        "patience": [1.0, 1.0, 1.0, 1.0],
        "improving": [3.0, 2.0, 1.0],
        "silent": [None, None],
    }
    series = run_series(epoch_frame({name: {"val_loss": v} for name, v in runs.items()}), "val_loss")
    policy = runlens.lightning.EarlyStopping("val_loss", patience=2, stopping_threshold=0.1)
    found = decide_runs(policy, series)
    got = {
        s.run: (int(found.stopped[i, 0]), int(found.restored[i, 0]), int(found.best[i, 0]))
        for i, s in enumerate(series)
    }
    assert got == {  # (stopped, restored: the last trained, best); -1: none
        "nan_first": (0, 0, -1),
        "threshold": (1, 1, 0),
        "patience": (2, 2, 0),
        "improving": (-1, 2, 2),
        "silent": (-1, 1, -1),
    }


@pytest.mark.parametrize("threshold", [0.5, 0.25, 1.0])
@pytest.mark.parametrize("greater", [False, True])
def test_an_improvement_by_exactly_the_threshold_does_not_count(threshold, greater):
    """HF's check_metric_value wants the change strictly over the threshold: at exactly it, the
    patience counter still grows (one pass and replay agree there)."""
    steps = [2.0, 1.5, 1.25, 1.0, 0.5, 0.0]
    values = [-v for v in steps] if greater else steps
    policy = runlens.transformers.EarlyStoppingCallback(1, threshold, greater_is_better=greater)
    series = run_series(epoch_frame({"a": {policy.monitor: values}}), policy.monitor)
    found, reference = decide_runs(policy, series), decide(policy, series[0])
    assert int(found.stopped[0, 0]) == reference.stopped != -1


def test_several_settings_at_once_are_refused():
    series = run_series(epoch_frame({"a": {"val_loss": [3.0, 2.0, 4.0]}}), "val_loss")
    with pytest.raises(ValueError, match="several settings"):
        decide_runs(runlens.lightning.EarlyStopping("val_loss"), series, [1, 2])
