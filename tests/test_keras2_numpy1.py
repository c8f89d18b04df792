"""semantics="keras2-numpy1" reproduces the real tf-keras ReduceLROnPlateau running on NumPy 1.x.

The suite runs NumPy 2, so the real callback cannot run here: ``scripts/record_keras2_numpy1.py``
drove it in a second environment (TensorFlow 2.17.1, tf-keras 2.17.0, NumPy 1.26.4) over generated
cases and recorded, per case, the optimizer's rate before every epoch and after the last, and
Keras' ``wait`` (``tests/data/keras2_numpy1_plateau.json``). Every case is replayed here and
compared bit for bit; the recorded set must hold cases where the NumPy 2 rule ("keras2") gives
other rates, or it would prove nothing about the difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import runlens

RECORDED = Path(__file__).parent / "data" / "keras2_numpy1_plateau.json"


@pytest.fixture(scope="module")
def recorded():
    return json.loads(RECORDED.read_text())


def _replay(case, semantics):
    policy = runlens.ReduceLROnPlateau(**case["params"], semantics=semantics)
    return policy.replay(case["values"], initial_lr=case["initial_lr"])


def _same(result, case):
    return (
        list(result.learning_rates) == case["learning_rates"]
        and result.final_lr == case["final_lr"]
        and list(result.wait) == case["wait"]
    )


def test_the_cases_were_recorded_by_tf_keras_on_numpy_1(recorded):
    versions = recorded["recorded_with"]
    assert versions["numpy"].startswith("1.") and versions["tf_keras"].startswith("2.")
    assert len(recorded["cases"]) >= 500


def test_every_recorded_case_replays_bit_for_bit(recorded):
    for case in recorded["cases"]:
        result = _replay(case, "keras2-numpy1")
        assert _same(result, case), (case, result)


def test_the_recorded_cases_tell_the_two_keras2_rules_apart(recorded):
    """About one reduction in six rounds differently; the NumPy 2 rule misses those cases."""
    differ = [c for c in recorded["cases"] if not _same(_replay(c, "keras2"), c)]
    reductions = sum(len(_replay(c, "keras2-numpy1").reduced_at) for c in recorded["cases"])
    assert len(differ) >= 50 and reductions >= 500
    for case in differ:  # only the rates differ: every decision is tf-keras' in both
        assert list(_replay(case, "keras2").wait) == case["wait"]


def test_the_issue_example():
    """patience 0, factor 0.1, values [1.0, 1.0], initial 0.1 (tf-keras on NumPy 1.26 vs 2)."""
    numpy1 = runlens.ReduceLROnPlateau(patience=0, semantics="keras2-numpy1")
    numpy2 = runlens.ReduceLROnPlateau(patience=0, semantics="keras2")
    assert numpy1.replay([1.0, 1.0], initial_lr=0.1).final_lr == 0.009999999776482582
    assert numpy2.replay([1.0, 1.0], initial_lr=0.1).final_lr == 0.010000000707805157
    assert float(np.float32(float(np.float32(0.1)) * 0.1)) == 0.009999999776482582


def test_early_stopping_takes_keras2_numpy1_and_decides_as_keras2():
    values = [1.0, 0.9, float("nan"), 0.95, 0.9, 0.91]
    for monitor in ("val_loss", "val_auc", "val_acc"):
        a = runlens.EarlyStopping(monitor=monitor, patience=1, semantics="keras2-numpy1").replay(values)
        b = runlens.EarlyStopping(monitor=monitor, patience=1, semantics="keras2").replay(values)
        assert repr(a) == repr(b)  # repr: a logged NaN equals itself
