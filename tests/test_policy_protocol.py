"""A new policy is one class plus its registration line: replay, sweep, the report and its
renderers take it without a change, because they only use the protocol (runlens.policies.base).

The policy here is a made-up framework's ("toy"): stop once ``patience`` evaluations in a row did
not beat the best by more than ``threshold``. It has no fast path, no restore and no Keras name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import pytest
from _policy_helpers import epoch_frame

import runlens
from runlens.policies.base import POLICIES, PolicyBase
from runlens.policies.monitor import as_epoch_values


@dataclass(frozen=True)
class ToyResult:
    stopped_at: int | None
    best_at: int | None


class ToyStopping(PolicyBase):
    framework: ClassVar[str] = "toy"
    kind: ClassVar[str] = "stopping"

    def __init__(self, monitor: str = "val_loss", patience: int = 2, threshold: float = 0.0) -> None:
        self.monitor, self.patience, self.threshold = monitor, patience, threshold

    @property
    def metric(self) -> str:
        return self.monitor

    @property
    def direction(self) -> str:
        return "min"

    def settings(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "patience": self.patience, "threshold": self.threshold}

    def replay(self, values: Any) -> ToyResult:
        floats, present = as_epoch_values(values)
        best, best_at, bad = None, None, 0
        for i, (value, logged) in enumerate(zip(floats.tolist(), present.tolist())):
            if not logged:
                continue
            if best is None or value < best - self.threshold:
                best, best_at, bad = value, i, 0
            else:
                bad += 1
                if bad >= self.patience:
                    return ToyResult(i, best_at)
        return ToyResult(None, best_at)


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setitem(POLICIES, "toy.ToyStopping", f"{__name__}:ToyStopping")


SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
FRAME = epoch_frame(
    {
        "a": {"val_loss": [1.0, 0.8, 0.85, 0.9, 0.7, 0.95]},
        "b": {"val_loss": [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]},
        "c": {"val_loss": [0.5, None, 0.6, 0.6, 0.6, 0.4]},
    }
)


def test_replay_sweep_and_report_take_a_new_policy_unchanged(registered, tmp_path):
    policy = ToyStopping(patience=2)
    table = runlens.replay(FRAME, policy).set_index("run")
    stops = {"a": 3, "b": None, "c": 3}  # c: 0.6 and 0.6 do not beat 0.5 (the missing epoch skipped)
    for run, stop in stops.items():
        assert policy.replay(FRAME[FRAME.run == run]["val_loss"]).stopped_at == stop
        got = table.loc[run, "stopped_epoch"]
        assert (None if pd.isna(got) else int(got)) == stop
        # no restore: the model ends with the last trained epoch's weights
        assert table.loc[run, "restored_epoch"] == (5 if stop is None else stop)
        assert table.loc[run, "epochs_saved"] == (0 if stop is None else 5 - stop)
    swept = runlens.sweep(FRAME, policy, patience=[1, 2, 3], threshold=[0.0, 0.1], tolerance=1.0)
    assert len(swept.table) == 6 and list(swept.table.columns[:3]) == ["monitor", "patience", "threshold"]
    for row in swept.table.itertuples():
        again = runlens.replay(FRAME, ToyStopping(patience=row.patience, threshold=row.threshold))
        assert row.epochs_saved == again["epochs_saved"].sum()
    assert swept.recommended == swept.recommended_policy.keyword_arguments()
    report = runlens.build_report(FRAME, early_stopping=policy, sweep={"patience": [1, 2, 3]})
    assert [r.stopped_epoch for r in report.runs] == list(stops.values())
    assert report.settings.early_stopping == {"class": "toy.ToyStopping", **policy.settings()}
    text = runlens.render_report(report, "text")
    assert "toy.ToyStopping(monitor=val_loss (min))" in text and "== sweep: toy.ToyStopping settings" in text
    assert json.loads(runlens.render_report(report, "json"))["settings"]["early_stopping"]["threshold"] == 0.0
    assert "<!DOCTYPE html>" in runlens.render_report(report, "html")
    assert "ToyStopping" in runlens.render_report(report, "markdown")


def test_the_other_frameworks_policies_go_through_the_same_calls():
    """Lightning's EarlyStopping and torch's ReduceLROnPlateau (registered, pure replays) in
    replay, sweep and the report: each run's numbers are the policy's own replay's."""
    import runlens.lightning
    import runlens.torch

    epochs = runlens.read_epochs(SAMPLE)
    es = runlens.lightning.EarlyStopping("val_loss", patience=2)
    lr = runlens.torch.ReduceLROnPlateau(patience=1, factor=0.5)
    table = runlens.replay(epochs, es, lr_policy=lr).set_index("run")
    for run, rows in epochs.groupby("run", observed=True):
        values = rows.set_index("epoch")["val_loss"]
        own = es.replay(values)
        assert (
            None if pd.isna(table.loc[run, "stopped_epoch"]) else table.loc[run, "stopped_epoch"]
        ) == own.stopped_at
        trained = len(values) if own.stopped_at is None else own.stopped_at + 1
        first = float(rows["learning_rate"].dropna().iloc[0])  # the starting-rate rule
        rates = lr.replay(values.iloc[:trained], initial_lr=first)
        assert table.loc[run, "lr_reduced_at"] == rates.reduced_at
    assert runlens.sweep(epochs, es).table["patience"].tolist() == [0, 1, 2, 3, 5, 8, 10, 15, 20, 30]
    report = runlens.build_report(epochs, early_stopping=es, reduce_lr=lr)
    assert [r.stopped_epoch for r in report.runs] == [
        None if pd.isna(v) else int(v) for v in table["stopped_epoch"]
    ]
    assert report.settings.reduce_lr["class"] == "torch.ReduceLROnPlateau"
    assert "lightning.EarlyStopping(monitor=val_loss (min), patience=2)" in runlens.render_report(report)
