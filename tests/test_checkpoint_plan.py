"""Retention rules and plan_prune on real checkpoints: each safety rule of the plan has a test here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from checkpoint_fits import EPOCHS, OLD, TEMPLATES, copy_fitted, fitted_once
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import runlens
import runlens.checkpoints.retention
from runlens import (
    KeepAny,
    KeepBestK,
    KeepEveryN,
    KeepLastN,
    KeepNewerThan,
    KeepRestoredEpoch,
    Ranking,
    plan_prune,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")
NOW = pd.Timestamp(OLD + 3600, unit="s", tz="UTC")  # an hour after every file's mtime


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    return fitted_once(tmp_path_factory)


@pytest.fixture(scope="module")
def table(fitted, tmp_path_factory):
    """The real table with logs joined (read-only: tests that change files use ``folder``)."""
    folder = copy_fitted(fitted, tmp_path_factory.mktemp("plan") / "runs")
    return runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))


@pytest.fixture
def folder(fitted, tmp_path):
    return copy_fitted(fitted, tmp_path / "runs")


def series(plan, run="exp", kind="keras"):
    return plan[(plan.run == run) & (plan.kind == kind)].set_index("epoch")


def val_loss(fitted):
    return np.array([fitted.logs[e]["val_loss"] for e in range(EPOCHS)])


def test_keep_best_k_ranks_by_the_logged_metric(table, fitted):
    plan = plan_prune(table, rules=[KeepBestK(3, "val_loss")], now=NOW)
    every = series(plan)
    order = np.argsort(val_loss(fitted), kind="stable")
    assert every["rank"].sort_values().index.tolist() == order.tolist()
    assert sorted(every.index[every["keep"]]) == sorted(order[:3].tolist())
    assert every.loc[order[0], "reason"] == "#1 by val_loss (best 3)"
    assert every.loc[order[3], "reason"] == "kept by no rule (#4 by val_loss)"


def test_keep_best_k_max_mode_by_name(table, fitted):
    accuracy = np.array([fitted.logs[e]["val_accuracy"] for e in range(EPOCHS)])
    plan = plan_prune(table, rules=[KeepBestK(1, "val_accuracy")], now=NOW)
    kept = series(plan).index[series(plan)["keep"]].tolist()
    assert kept == [int(np.flatnonzero(accuracy == accuracy.max())[0])]  # ties: the earlier epoch


def test_ranking_prefers_logged_values_over_rounded_names(folder, fitted):
    # w.{epoch:03}-{val_loss:.2f}.weights.h5 rounds two epochs to the same name value.
    rounded = [round(v, 2) for v in val_loss(fitted)]
    fourth = sorted(range(EPOCHS), key=lambda e: (rounded[e], e))[3]
    tie = [e for e in range(EPOCHS) if rounded[e] == rounded[fourth]]
    assert len(tie) == 2, "the fit no longer produces a tie in the names; pick another k"
    truly_fourth = int(np.argsort(val_loss(fitted), kind="stable")[3])
    assert truly_fourth != fourth
    rules = [KeepBestK(4, "val_loss")]
    with_logs = runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))
    for split in ("train", "validation"):
        os.rename(folder.root / "exp" / split, folder.root / f"{split}-moved")
    names_only = runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))
    assert series(plan_prune(names_only, rules=rules, now=NOW), kind="weights").loc[fourth, "keep"]
    logged = series(plan_prune(with_logs, rules=rules, now=NOW), kind="weights")
    assert logged.loc[truly_fourth, "keep"] and not logged.loc[fourth, "keep"]


def test_keep_last_and_every(table):
    plan = plan_prune(table, rules=[KeepBestK(1, "val_loss"), KeepLastN(2), KeepEveryN(3)], now=NOW)
    weights = series(plan, kind="weights")
    best = int(weights["rank"].idxmin())
    assert sorted(weights.index[weights["keep"]]) == sorted({best, EPOCHS - 2, EPOCHS - 1, 2, 5})
    assert "one of the last 2" in weights.loc[EPOCHS - 1, "reason"]
    assert "every 3th epoch" in weights.loc[2, "reason"]


def test_keep_newer_than(table):
    times = table["mtime"].copy()
    times[table.epoch == 6] = NOW - pd.Timedelta(seconds=30)
    plan = plan_prune(
        table.assign(mtime=times),
        min_age=10,
        rules=[KeepBestK(1, "val_loss"), KeepNewerThan(seconds=60)],
        now=NOW,
    )
    assert series(plan).loc[6, "reason"].startswith("newer than 60s")
    since = plan_prune(
        table.assign(mtime=times),
        min_age=10,
        rules=[
            KeepBestK(1, "val_loss"),
            KeepNewerThan(since=str(NOW.tz_convert(None) - pd.Timedelta(minutes=1))),
        ],
        now=NOW,
    )
    assert since["keep"].equals(plan["keep"])


@pytest.mark.parametrize("patience", [1, 2])
def test_keep_restored_epoch_is_what_real_keras_early_stopping_restores(table, fitted, patience):
    import keras

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    callback = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    callback.set_model(model)
    model.stop_training = False  # as fit() sets it
    callback.on_train_begin()
    for epoch in range(EPOCHS):
        callback.on_epoch_end(epoch, dict(fitted.logs[epoch]))
        if model.stop_training:
            break
    callback.on_train_end()

    epochs = runlens.read_epochs(fitted.root)
    rule = KeepRestoredEpoch(runlens.EarlyStopping(patience=patience, restore_best_weights=True), epochs)
    plan = plan_prune(table, rules=[KeepBestK(1, "loss"), rule], now=NOW)
    restored = [e for e, r in series(plan).reason.items() if "EarlyStopping would restore" in r]
    assert restored == [callback.best_epoch]
    assert series(plan).loc[callback.best_epoch, "keep"]


def test_the_ranking_is_an_input_of_its_own_and_its_best_is_never_dropped(table, fitted):
    # No rule ranks here: the ranking comes apart from the rules, and plan_prune keeps its best.
    plan = plan_prune(table, rules=[KeepLastN(1)], ranking=Ranking("val_loss"), now=NOW)
    every = series(plan)
    best = int(np.argmin(val_loss(fitted)))
    assert best != EPOCHS - 1, "the fit's best is its last epoch: KeepLastN would keep it anyway"
    assert every["rank"].sort_values().index.tolist() == np.argsort(val_loss(fitted), kind="stable").tolist()
    assert sorted(every.index[every["keep"]]) == [best, EPOCHS - 1]
    assert every.loc[best, "reason"] == "#1 by val_loss: the best is never dropped"
    assert plan.attrs["monitor"] == "val_loss"
    with_rule = plan_prune(table, rules=[KeepBestK(1, "val_loss"), KeepLastN(1)], now=NOW)
    assert with_rule["keep"].equals(plan["keep"]) and with_rule["rank"].equals(plan["rank"])


def test_ranking_given_wins_over_the_rules_and_each_rule_still_keeps_its_own(table, fitted):
    accuracy = np.array([fitted.logs[e]["val_accuracy"] for e in range(EPOCHS)])
    plan = plan_prune(table, rules=[KeepBestK(1, "val_accuracy")], ranking=Ranking("val_loss"), now=NOW)
    every = series(plan)
    by_loss, by_accuracy = (
        int(np.argmin(val_loss(fitted))),
        int(np.flatnonzero(accuracy == accuracy.max())[0]),
    )
    assert every.loc[by_loss, "rank"] == 1 and every.loc[by_loss, "keep"]
    assert every.loc[by_accuracy, "keep"] and "by val_accuracy (best 1)" in every.loc[by_accuracy, "reason"]
    assert set(every.index[every["keep"]]) == {by_loss, by_accuracy}


def test_keep_any_is_a_rule_and_a_list_of_rules_is_one(table):
    rules = [KeepBestK(2, "val_loss"), KeepLastN(1), KeepEveryN(3)]
    as_list = plan_prune(table, rules=rules, now=NOW)
    assert_frame_equal(plan_prune(table, rules=KeepAny(rules), now=NOW), as_list)
    nested = KeepAny([KeepAny(rules[:1]), KeepAny(rules[1:])])
    assert nested.ranking == Ranking("val_loss") and KeepAny([KeepLastN(1)]).ranking is None
    assert_frame_equal(plan_prune(table, rules=[nested], now=NOW), as_list)
    weights = series(as_list, kind="weights")
    last = weights.loc[EPOCHS - 1, "reason"]
    assert "one of the last 1" in last and ("; " in last) == ("every 3th epoch" in last)


def test_keep_best_k_without_unranked_and_the_known_restored_epoch(table):
    unvalidated = table["epoch"] == 2
    values = table["val_loss"].mask(unvalidated)  # as an epoch that was not validated
    synthetic = table.assign(val_loss=values)
    keeping = series(plan_prune(synthetic, rules=[KeepBestK(1, "val_loss")], now=NOW))
    assert keeping.loc[2, "keep"] and keeping.loc[2, "reason"] == "no val_loss value to rank it by"
    rules = [KeepBestK(1, "val_loss", keep_unranked=False), KeepRestoredEpoch(restored=5)]
    dropping = series(plan_prune(synthetic, rules=rules, now=NOW))
    assert not dropping.loc[2, "keep"] and dropping.loc[2, "reason"] == "kept by no rule (no val_loss value)"
    assert dropping.loc[5, "keep"] and "EarlyStopping restores epoch 6" in dropping.loc[5, "reason"]
    assert (
        repr(KeepBestK(1, "val_loss"))
        == "KeepBestK(k=1, monitor='val_loss', mode='auto', keep_unranked=True)"
    )


def test_bad_rules_are_errors_naming_what_to_pass(table):
    with pytest.raises(runlens.RunlensError, match="ranking=Ranking"):
        plan_prune(table, rules=KeepAny([KeepLastN(1)]), now=NOW)
    with pytest.raises(runlens.RunlensError, match="either early_stopping= and epochs="):
        KeepRestoredEpoch(runlens.EarlyStopping())
    with pytest.raises(runlens.RunlensError, match="either early_stopping= and epochs="):
        KeepRestoredEpoch()
    with pytest.raises(runlens.RunlensError, match="restored must be a whole number"):
        KeepRestoredEpoch(restored=-1)
    with pytest.raises(runlens.RunlensError, match="mode must be one of"):
        Ranking("val_loss", "lowest")
    with pytest.raises(runlens.RunlensError, match="seconds must be a number >= 0"):
        KeepNewerThan(seconds=-5)


def test_min_age_files_are_neither_ranked_nor_dropped(table):
    worst = table.loc[(table.run == "exp") & (table.kind == "keras"), "val_loss"].idxmax()
    times = table["mtime"].copy()
    times[worst] = NOW - pd.Timedelta(seconds=100)
    plan = plan_prune(table.assign(mtime=times), rules=[KeepBestK(1, "val_loss")], min_age=300, now=NOW)
    assert plan.loc[worst, "keep"] and pd.isna(plan.loc[worst, "rank"])
    assert "min-age" in plan.loc[worst, "reason"]
    settled = plan_prune(table.assign(mtime=times), rules=[KeepBestK(1, "val_loss")], min_age=60, now=NOW)
    assert not settled.loc[worst, "keep"] and settled.loc[worst, "rank"] == EPOCHS


def test_default_min_age_protects_files_just_written(table):
    now = table["mtime"].max() + pd.Timedelta(seconds=30)
    plan = plan_prune(table, rules=[KeepBestK(1, "val_loss")], now=now)
    assert plan["keep"].all() and plan["rank"].isna().all()


def invalidated(table, mask):
    return table.assign(
        valid=table["valid"] & ~mask, invalid_reason=table["invalid_reason"].where(~mask, "truncated")
    )


def test_invalid_checkpoints_are_never_ranked_and_kept_unless_delete_invalid(table, fitted):
    best = int(np.argmin(val_loss(fitted)))
    damaged = (table.run == "exp") & (table.kind == "keras") & (table.epoch == best)
    plan = plan_prune(invalidated(table, damaged), rules=[KeepBestK(1, "val_loss")], now=NOW)
    every = series(plan)
    assert every.loc[best, "keep"] and pd.isna(every.loc[best, "rank"])
    assert every.loc[best, "reason"] == "invalid (truncated): kept, never ranked"
    runner_up = int(np.argsort(val_loss(fitted), kind="stable")[1])
    assert every.loc[runner_up, "rank"] == 1 and every.loc[runner_up, "keep"]
    deleting = series(
        plan_prune(
            invalidated(table, damaged), rules=[KeepBestK(1, "val_loss")], delete_invalid=True, now=NOW
        )
    )
    assert not deleting.loc[best, "keep"] and "delete-invalid" in deleting.loc[best, "reason"]


def test_half_written_files_are_kept_even_with_delete_invalid(table):
    damaged = table.epoch == EPOCHS - 1
    times = table["mtime"].where(~damaged, NOW - pd.Timedelta(seconds=5))
    plan = plan_prune(
        invalidated(table, damaged).assign(mtime=times),
        rules=[KeepBestK(1, "val_loss")],
        delete_invalid=True,
        now=NOW,
    )
    assert plan.loc[damaged, "keep"].all()


def test_a_plan_leaving_a_run_without_a_valid_checkpoint_is_refused(table):
    damaged = table.run == "exp/best"
    with pytest.raises(runlens.PruneRefused, match="'exp/best' would be left without a valid") as info:
        plan_prune(
            invalidated(table, damaged), rules=[KeepBestK(1, "val_loss")], delete_invalid=True, now=NOW
        )
    assert info.value.exit_code == 1
    kept = plan_prune(invalidated(table, damaged), rules=[KeepBestK(1, "val_loss")], now=NOW)
    assert kept.loc[damaged, "keep"].all()


def test_bad_usage(table):
    with pytest.raises(runlens.RunlensError, match="no checkpoint has a 'val_auc' value") as info:
        plan_prune(table, rules=[KeepBestK(1, "val_auc")], now=NOW)
    assert "--template" in str(info.value) and "--logdir" in str(info.value) and info.value.exit_code == 2
    with pytest.raises(runlens.RunlensError, match="KeepBestK"):
        plan_prune(table, rules=[KeepLastN(2)], now=NOW)
    with pytest.raises(runlens.RunlensError, match="mode='min'"):
        KeepBestK(2, "my_custom_score")
    with pytest.raises(runlens.RunlensError, match="keep-best k must be"):
        KeepBestK(0, "val_loss")
    with pytest.raises(runlens.RunlensError, match="min_age"):
        plan_prune(table, rules=[KeepBestK(1, "val_loss")], min_age=-1)


def test_planning_touches_nothing(folder):
    def snapshot():
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.root.rglob("*") if p.is_file()}

    before = snapshot()
    table = runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))
    plan = plan_prune(table, rules=[KeepBestK(1, "val_loss")], now=NOW, delete_invalid=True)
    assert (~plan["keep"]).sum() > 0
    assert snapshot() == before
    summary = runlens.plan_summary(plan)
    assert summary["bytes_to_free"] == plan.loc[~plan["keep"], "size_bytes"].sum() > 0
    assert summary["keep"] + summary["drop"] == summary["files"] == len(plan)


def drawn_plan(table, data, *, ranking_apart: bool):
    """A plan of ``table`` with drawn values, validity, ages and rules (None: refused, as it may
    be): the ranking by val_loss comes from a first KeepBestK rule, or ``ranking_apart`` as
    ``ranking=`` with rules that do not rank. Returns (plan, mode, delete_invalid)."""
    n = len(table)
    values = data.draw(
        st.lists(st.one_of(st.floats(0, 10), st.just(np.nan), st.none()), min_size=n, max_size=n)
    )
    valid = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    ages = data.draw(st.lists(st.sampled_from([10, 1000]), min_size=n, max_size=n))
    mode = data.draw(st.sampled_from(["min", "max"]))
    rules = [] if ranking_apart else [KeepBestK(data.draw(st.integers(1, 3)), "val_loss", mode)]
    rules += data.draw(
        st.lists(st.sampled_from([KeepLastN(1), KeepEveryN(4), KeepNewerThan(seconds=5)]), max_size=2)
    )
    ranking = Ranking("val_loss", mode) if ranking_apart else None
    delete_invalid = data.draw(st.booleans())
    mask = np.array([v is None for v in values])
    synthetic = table.assign(
        val_loss=pd.arrays.FloatingArray(np.array([0.0 if v is None else v for v in values]), mask),
        valid=valid,
        invalid_reason=["ok" if v else "damaged" for v in valid],
        mtime=[NOW - pd.Timedelta(seconds=a) for a in ages],
    )
    try:
        plan = plan_prune(
            synthetic, rules=rules, ranking=ranking, min_age=60, delete_invalid=delete_invalid, now=NOW
        )
    except runlens.PruneRefused:
        return None
    except runlens.RunlensError as exc:
        assert "no checkpoint has a 'val_loss' value" in str(exc)
        return None
    return plan, mode, delete_invalid


def assert_safe(plan: pd.DataFrame, mode: str, delete_invalid: bool) -> None:
    """What every plan must hold, whatever its rules: see plan_prune's docstring."""
    fresh = plan["mtime"] > NOW - pd.Timedelta(seconds=60)
    settled = plan["valid"] & ~fresh
    assert plan.loc[~settled, "rank"].isna().all()
    assert plan.loc[fresh, "keep"].all()
    assert (plan.loc[~fresh & ~plan["valid"], "keep"] == (not delete_invalid)).all()
    sign = 1 if mode == "min" else -1
    for _, rows in plan[settled].groupby(["run", "kind"]):
        ranked = rows[rows["val_loss"].notna()]
        if len(ranked):
            floats = sign * ranked["val_loss"].to_numpy(dtype=float, na_value=np.nan)
            best = ranked.index[np.nanargmin(floats)] if not np.isnan(floats).all() else ranked.index[0]
            assert plan.loc[best, "keep"], plan.loc[
                rows.index, ["epoch", "val_loss", "rank", "keep", "reason"]
            ]
    for _, rows in plan.groupby("run"):
        assert (rows["keep"] & rows["valid"]).any() or rows["keep"].all()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_whatever_the_rules_every_series_keeps_its_best_valid_checkpoint(table, data):
    drawn = drawn_plan(table, data, ranking_apart=False)
    if drawn is None:
        return
    plan, mode, delete_invalid = drawn
    assert_safe(plan, mode, delete_invalid)
    settled = plan["valid"] & ~(plan["mtime"] > NOW - pd.Timedelta(seconds=60))
    for _, rows in plan[settled].groupby(["run", "kind"]):
        assert plan.loc[rows.index[rows["val_loss"].isna()], "keep"].all()  # nothing to judge by: kept


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_with_the_ranking_given_apart_every_series_still_keeps_its_best_valid_checkpoint(table, data):
    drawn = drawn_plan(table, data, ranking_apart=True)
    if drawn is not None:
        assert_safe(*drawn)


@dataclass(frozen=True)
class SeriesBySeries:
    """``rule`` asked series by series, as a user's own rule is: plan_prune's reference path."""

    rule: Any

    @property
    def ranking(self) -> Any:
        return runlens.checkpoints.retention.ranking_of(self.rule)

    def keep(self, series: pd.DataFrame, *, now: pd.Timestamp) -> pd.Series:
        return self.rule.keep(series, now=now)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_every_series_at_once_plans_as_series_by_series(table, data):
    """plan_prune applies KeepBestK, KeepLastN and KeepAny of them to every series at once
    (checkpoints.retention_all: a sweep of 2,000 runs is 2,000 series): over drawn runs, epochs
    (missing ones, ties), values (missing, NaN, ties), ages and validity, the plan is the one of
    the same rules asked series by series."""
    n = len(table)
    draw = lambda strategy: data.draw(st.lists(strategy, min_size=n, max_size=n))  # noqa: E731
    runs = draw(st.sampled_from(["a", "b", "c/d"]))
    epochs = draw(st.one_of(st.integers(0, 4), st.none()))
    values = draw(st.one_of(st.sampled_from([0.5, 0.25, 1.0]), st.floats(0, 10), st.just(np.nan), st.none()))
    ages = draw(st.sampled_from([10, 1000, 2000]))
    valid = draw(st.booleans())
    mode = data.draw(st.sampled_from(["min", "max"]))
    k = data.draw(st.integers(1, 3))
    rules = data.draw(
        st.sampled_from(
            [
                [KeepBestK(k, "val_loss", mode)],
                [KeepBestK(k, "val_loss", mode, keep_unranked=False)],
                [KeepBestK(k, "val_loss", mode), KeepLastN(data.draw(st.integers(1, 3)))],
                [KeepLastN(1), KeepBestK(k, "val_loss", mode)],
            ]
        )
    )
    ranking = data.draw(st.sampled_from([None, Ranking("val_loss", "max")]))
    synthetic = table.assign(
        run=pd.array(runs, dtype=table["run"].dtype),
        epoch=pd.array(epochs, dtype="Int64"),
        val_loss=pd.arrays.FloatingArray(
            np.array([0.0 if v is None else v for v in values]), np.array([v is None for v in values])
        ),
        valid=valid,
        invalid_reason=["ok" if v else "damaged" for v in valid],
        mtime=[NOW - pd.Timedelta(seconds=a) for a in ages],
    )
    plans = []
    for asked in (rules, [SeriesBySeries(KeepAny(rules))]):
        try:
            plans.append(plan_prune(synthetic, rules=asked, ranking=ranking, min_age=60, now=NOW))
        except runlens.RunlensError as exc:  # PruneRefused too: then both must refuse alike
            plans.append(str(exc))
    if isinstance(plans[0], str):
        assert plans[0] == plans[1]
    else:
        assert_frame_equal(plans[0], plans[1])
        assert plans[0].attrs == plans[1].attrs
