"""The batched EarlyStopping pass (runlens.policies.traces: every run at once, what the sweep and the
report decide with) equals the per-run reference loop (EarlyStopping.replay, Keras' on_epoch_end)
over many generated cases: ragged runs of different lengths, NaN, epochs without a value or without
a row, float32 ties, every setting and semantics.

The reference loop itself is held to the real Keras callbacks by tests/test_early_stopping_parity.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _policy_helpers import baseline_strategy, delta_strategy, epoch_frame, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
from runlens.policies.lightning.early_stopping import EarlyStopping as LightningEarlyStopping
from runlens.policies.runs import decide, decide_runs, run_series
from runlens.policies.traces import Traces

PATIENCES = [0, 1, 2, 3, 5, 8, 30]

policy_strategy = st.builds(
    lambda monitor, mode, min_delta, baseline, start, restore, semantics: runlens.EarlyStopping(
        monitor=monitor,
        mode=mode,
        min_delta=min_delta,
        baseline=baseline,
        start_from_epoch=start,
        restore_best_weights=restore,
        semantics=semantics,
    ),
    monitor=st.sampled_from(["val_loss", "val_accuracy"]),
    mode=st.sampled_from(["auto", "min", "max"]),
    min_delta=delta_strategy,
    baseline=baseline_strategy,
    start=st.sampled_from([0, 0, 1, 3]),
    restore=st.booleans(),
    semantics=st.sampled_from(["keras3", "keras2", "keras2-numpy1"]),
)


def _or_minus_one(epoch: int | None) -> int:
    return -1 if epoch is None else epoch


@settings(max_examples=600, deadline=None, database=None)
@given(runs=st.lists(values_strategy(max_size=40), min_size=1, max_size=8), policy=policy_strategy)
def test_every_run_in_one_pass_equals_the_reference_loop_run_by_run(runs, policy):
    """Traces.build on padded rows (runs of 0 to 40 epochs in one array): per-epoch state and every
    patience's decisions as the reference loop gives them for each run alone."""
    width = max(len(values) for values in runs)
    values = np.full((len(runs), width), -7.0)  # padding must not matter, whatever it holds
    present = np.zeros((len(runs), width), dtype=bool)
    for i, run in enumerate(runs):
        for epoch, value in enumerate(run):
            present[i, epoch] = value is not None
            values[i, epoch] = np.nan if value is None else value
    traces = Traces.build(policy, values, present, [len(run) for run in runs])
    stopped, restored = traces.decisions(PATIENCES)
    best = traces.best_epochs(stopped)
    for i, run in enumerate(runs):
        never = policy.replace(patience=10**9).replay(run)  # the whole run's wait and improvements
        n = len(run)
        assert traces.wait[i, :n].tolist() == list(never.wait), run
        assert np.flatnonzero(traces.improved[i, :n]).tolist() == list(never.improved_at), run
        for j, patience in enumerate(PATIENCES):
            reference = policy.replace(patience=patience).replay(run)
            got = (stopped[i, j], restored[i, j], best[i, j])
            expected = tuple(
                _or_minus_one(e)
                for e in (reference.stopped_epoch, reference.restored_epoch, reference.best_epoch)
            )
            assert got == expected, (patience, run)


def _frame(runs: list[list], dropped: list[list[bool]]) -> pd.DataFrame:
    """An epoch frame of the runs; epochs marked in ``dropped`` have no row at all (a run keeps at
    least its first row, so it exists)."""
    frame = epoch_frame({f"r{i:02d}": {"val_loss": values} for i, values in enumerate(runs)})
    keep = np.concatenate([[True, *(not d for d in drops[1 : len(v)])] for v, drops in zip(runs, dropped)])
    return frame[keep].reset_index(drop=True)


ragged_runs = st.lists(
    st.tuples(values_strategy(max_size=30).filter(bool), st.lists(st.booleans(), min_size=30, max_size=30)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=300, deadline=None, database=None)
@given(runs=ragged_runs, policy=policy_strategy)
def test_decide_runs_equals_the_policys_replay_of_each_run(runs, policy):
    """What the sweep and the report call: decide_runs over all runs of a frame (missing rows,
    ragged lengths, grouped by length) against decide (the policy's own replay) run by run."""
    policy = policy.replace(monitor="val_loss")
    series = run_series(_frame([r for r, _ in runs], [d for _, d in runs]), "val_loss")
    batched = decide_runs(policy, series, PATIENCES)
    for j, patience in enumerate(PATIENCES):
        for i, s in enumerate(series):
            reference = decide(policy.replace(patience=patience), s)
            got = tuple(int(getattr(batched, k)[i, j]) for k in ("stopped", "restored", "best", "trained"))
            assert got == (reference.stopped, reference.restored, reference.best, reference.trained), patience


class _RunByRun(runlens.EarlyStopping):
    """EarlyStopping without the batched pass: replay and sweep fall back to its replay per run."""

    trace_runs = None


@settings(max_examples=100, deadline=None, database=None)
@given(runs=ragged_runs, policy=policy_strategy, patience=st.sampled_from(PATIENCES))
def test_replay_and_sweep_tables_equal_the_run_by_run_tables(runs, policy, patience):
    """runlens.replay (the report's replay) and runlens.sweep give the same tables, value for value,
    with the batched pass as with the policy's replay run by run."""
    arguments = {**policy.replace(monitor="val_loss").settings(), "patience": patience}
    frame = _frame([r for r, _ in runs], [d for _, d in runs])
    fast, plain = runlens.EarlyStopping(**arguments), _RunByRun(**arguments)
    pd.testing.assert_frame_equal(runlens.replay(frame, fast), runlens.replay(frame, plain))
    grid = {"patience": PATIENCES, "min_delta": [arguments["min_delta"], 0.0]}
    fast_sweep, plain_sweep = runlens.sweep(frame, fast, **grid), runlens.sweep(frame, plain, **grid)
    pd.testing.assert_frame_equal(fast_sweep.table, plain_sweep.table)
    assert fast_sweep.recommended == plain_sweep.recommended


def test_runs_of_very_different_lengths_are_padded_by_groups():
    """A 3-epoch run beside a 5,000-epoch one: each decided as alone (the groups keep padding small)."""
    rng = np.random.default_rng(3)
    runs = [np.round(rng.random(n), 2).tolist() for n in (3, 5000, 4, 700, 1)]
    series = run_series(epoch_frame({f"r{i}": {"val_loss": v} for i, v in enumerate(runs)}), "val_loss")
    policy = runlens.EarlyStopping(patience=4, restore_best_weights=True)
    batched = decide_runs(policy, series, [0, 4, 50])
    for j, patience in enumerate([0, 4, 50]):
        for i, s in enumerate(series):
            reference = decide(policy.replace(patience=patience), s)
            assert batched.stopped[i, j] == reference.stopped
            assert batched.restored[i, j] == reference.restored


class _LightningRunByRun(LightningEarlyStopping):
    """Lightning's EarlyStopping without its one-pass replay_runs."""

    replay_runs = None


def test_a_policy_without_the_batched_pass_is_decided_run_by_run_and_for_its_own_setting_only():
    """A policy with neither trace_runs nor replay_runs: decide_runs replays it per run (its own
    loop), and asking it for several patiences at once is a programming error, not a silent answer."""
    series = run_series(epoch_frame({"a": {"val_loss": [3.0, 2.0, 4.0, 5.0, 6.0]}}), "val_loss")
    policy = _LightningRunByRun("val_loss", patience=2)
    found = decide_runs(policy, series)
    reference = decide(policy, series[0])
    assert (found.stopped.tolist(), found.trained.tolist()) == ([[reference.stopped]], [[reference.trained]])
    assert reference.stopped == 3
    with pytest.raises(ValueError, match="several settings"):
        decide_runs(policy, series, [1, 2])
