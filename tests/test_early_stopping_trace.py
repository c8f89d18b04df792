"""The sweep's fast path (EarlyStopping.trace: one pass answers every patience) equals the plain
reference loop (EarlyStopping.replay, Keras' on_epoch_end) over many generated cases.

The reference loop itself is held to the real Keras callbacks by tests/test_early_stopping_parity.py;
here every patience a trace answers is replayed by the loop and compared, field by field.
"""

from __future__ import annotations

import numpy as np
from _policy_helpers import baseline_strategy, delta_strategy, values_strategy
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens

PATIENCES = [0, 1, 2, 3, 5, 8, 30]


@settings(max_examples=1500, deadline=None, database=None)
@given(
    values=values_strategy(max_size=30),
    min_delta=delta_strategy,
    baseline=baseline_strategy,
    start=st.sampled_from([0, 0, 1, 3]),
    restore=st.booleans(),
    semantics=st.sampled_from(["keras3", "keras2", "keras2-numpy1"]),
    mode=st.sampled_from(["min", "max"]),
)
def test_the_trace_answers_every_patience_as_the_reference_loop(
    values, min_delta, baseline, start, restore, semantics, mode
):
    base = runlens.EarlyStopping(
        min_delta=min_delta,
        baseline=baseline,
        start_from_epoch=start,
        restore_best_weights=restore,
        semantics=semantics,
        mode=mode,
    )
    trace = base.trace(values)
    stopped, restored = trace.decisions(PATIENCES)
    for i, patience in enumerate(PATIENCES):
        reference = base.replace(patience=patience).replay(values)
        # repr: a logged NaN (best_value, restored_value) equals itself
        assert repr(trace.result(patience)) == repr(reference), (patience, values)
        assert stopped[i] == (-1 if reference.stopped_epoch is None else reference.stopped_epoch)
        assert restored[i] == (-1 if reference.restored_epoch is None else reference.restored_epoch)


def test_the_sweep_uses_the_trace_and_a_policy_without_one_gives_the_same_table():
    """A stopping policy without ``trace_runs`` is swept setting by setting: same numbers."""

    class Plain(runlens.EarlyStopping):
        trace = trace_runs = None  # no fast path

    rng = np.random.default_rng(1)
    from _policy_helpers import epoch_frame

    frame = epoch_frame({f"r{i}": {"val_loss": np.round(rng.random(20), 1).tolist()} for i in range(5)})
    grid = {"patience": [0, 1, 2, 4], "min_delta": [0.0, 0.05]}
    fast = runlens.sweep(frame, runlens.EarlyStopping(restore_best_weights=True), **grid)
    plain = runlens.sweep(frame, Plain(restore_best_weights=True), **grid)
    assert fast.table.equals(plain.table)
    assert fast.recommended == plain.recommended
