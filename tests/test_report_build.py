"""runlens.build_report: every number is the policy layer's, computed here independently.

The per-run decisions are checked against ``runlens.replay`` (whose decisions the parity tests tie
to the real Keras callbacks), the sweep against ``runlens.sweep``, the checkpoint plans against
``runlens.plan_prune`` on real ModelCheckpoint output, the learning-rate replay against the rates a
real ``keras.callbacks.ReduceLROnPlateau`` set during a fit.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _policy_helpers import epoch_frame, values_strategy
from checkpoint_fits import copy_fitted
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
from runlens.errors import RunlensError
from runlens.report.render.json_format import render_json

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")
SAMPLE = os.path.join(os.path.dirname(__file__), "..", "sample_logs")


def _na(value, *, nan_is_na=False):
    """A table cell as the report holds it: NA is None; NaN too in float64 columns (``nan_is_na``)."""
    if value is pd.NA or (nan_is_na and isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _encoded(value):
    """How the JSON report writes a logged value: null = not logged, strings for NaN and infinities."""
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    return {math.inf: "Infinity", -math.inf: "-Infinity"}.get(value, float(value))


def policy_of(described):
    """The policy a report's settings describe ({"class": "keras.EarlyStopping", **settings()})."""
    from runlens.policies.base import policy_class

    return policy_class(described["class"])(**{k: v for k, v in described.items() if k != "class"})


# A run record's fields that are replay table columns: epochs and counts, then values.
_COUNT_KEYS = (
    "epochs_logged",
    "epochs_trained",
    "stopped_epoch",
    "best_epoch",
    "restored_epoch",
    "run_best_epoch",
    "epochs_saved",
)
_VALUE_KEYS = ("best_value", "restored_value", "run_best_value", "regret", "time_saved_s", "fraction_saved")


def assert_runs_match_replay(report, frame, *, lr=True, **options):
    """Every run record equals runlens.replay's row (and its lr_* columns) for the same settings."""
    s = report.settings
    policy = policy_of(s.early_stopping)
    lr_policy = policy_of(s.reduce_lr) if lr else None
    timing = s.lr_replay["lr_timing"]
    table = runlens.replay(frame, policy, lr_policy=lr_policy, logged_lr_timing=timing, **options)
    assert [r.run for r in report.runs] == table["run"].tolist()
    for record, row in zip(report.runs, table.to_dict("records")):
        for key in _COUNT_KEYS:
            assert getattr(record, key) == _na(row[key]), (record.run, key)
        for key in _VALUE_KEYS:
            expected = _na(row[key], nan_is_na=key == "time_saved_s")
            got = getattr(record, key)
            assert (got is None) == (expected is None), (record.run, key)
            if expected is not None:
                assert got == pytest.approx(expected, nan_ok=True), (record.run, key)
        if lr:
            assert record.learning_rate.replayed_reduced_at == list(row["lr_reduced_at"])
            assert record.learning_rate.replayed_final == pytest.approx(row["lr_final"])
            assert record.learning_rate.diverges_at == _na(row["lr_diverges_at"])
    return table


def assert_sweep_matches(report, frame):
    s = report.settings
    grid = {k: v for k, v in s.sweep.items() if k != "tolerance"}
    result = runlens.sweep(frame, policy_of(s.early_stopping), tolerance=s.sweep["tolerance"], **grid)
    assert report.sweep.recommended == result.recommended
    assert len(report.sweep.rows) == len(result.table)
    for got, row in zip(report.sweep.rows, result.table.to_dict("records")):
        for key, value in row.items():
            if _na(value, nan_is_na=True) is None:
                assert got[key] is None, key
            else:
                assert got[key] == pytest.approx(value), key
        es = s.early_stopping
        assert got["current"] == (got["patience"] == es["patience"] and got["min_delta"] == es["min_delta"])
    return result


def test_sample_logs_report_is_replay_sweep_and_totals(tmp_path):
    # reduce_lr given: every run gets the LR replay runlens.replay(lr_policy=...) gives
    report = runlens.build_report(SAMPLE, checkpoint_min_age=0, reduce_lr=runlens.ReduceLROnPlateau())
    frame = runlens.read_epochs(SAMPLE)
    assert report.settings.monitor == "val_loss" and report.settings.early_stopping["patience"] == 5
    assert report.settings.early_stopping["restore_best_weights"]
    table = assert_runs_match_replay(report, frame)
    result = assert_sweep_matches(report, frame)
    assert report.settings.early_stopping["patience"] in report.settings.sweep["patience"]
    t = report.totals
    assert t.runs == len(table) and t.epochs_logged == len(frame)
    assert t.epochs_saved == table["epochs_saved"].sum()
    assert t.time_saved_s == pytest.approx(table["time_saved_s"].sum())
    assert t.runs_stopped == table["stopped_epoch"].notna().sum()
    best = result.table[result.table["recommended"]]
    if len(best):
        assert t.recommended_epochs_saved == best["epochs_saved"].iloc[0]
    walls = frame.groupby("run", observed=True)["wall_time"].agg(
        lambda w: (w.max() - w.min()).total_seconds()
    )
    assert [r.wall_time_s for r in report.runs] == pytest.approx(walls.tolist())
    for record in report.runs:  # curves hold every logged epoch, None where nothing was logged
        rows = frame[frame["run"] == record.run].set_index("epoch")["val_loss"]
        assert [
            record.curves["val_loss"][e] for e in rows.index if pd.notna(rows[e])
        ] == rows.dropna().tolist()
        assert all(record.curves["val_loss"][e] is None for e in rows.index if pd.isna(rows[e]))


def test_sample_logs_checkpoint_plans_equal_plan_prune():
    report = runlens.build_report(SAMPLE, checkpoint_min_age=0, keep_best=2, keep_last=2)
    table = runlens.read_checkpoints(SAMPLE)
    rules = [runlens.KeepBestK(2, "val_loss"), runlens.KeepLastN(2)]
    for record in report.runs:
        rows = table[table["run"] == record.run]
        plan = runlens.plan_prune(rows, rules=rules, min_age=0)
        summary = runlens.plan_summary(plan)
        c = record.checkpoints
        assert c.folder == f"{record.run}/checkpoints"
        assert (c.files, c.keep, c.drop, c.bytes_total, c.bytes_to_free) == (
            summary["files"],
            summary["keep"],
            summary["drop"],
            summary["bytes_total"],
            summary["bytes_to_free"],
        )
        assert c.kept_epochs == plan.loc[plan["keep"], "epoch"].tolist()
        restored = plan[plan["epoch"] == record.restored_epoch]
        assert c.restored == ("kept" if restored["keep"].any() else "dropped")
    assert report.totals.checkpoint_bytes_to_free == sum(r.checkpoints.bytes_to_free for r in report.runs)


def test_checkpoints_of_real_model_checkpoint_output(fitted, tmp_path):
    folder = copy_fitted(fitted, tmp_path / "runs")
    report = runlens.build_report(folder.root, checkpoint_min_age=0, keep_best=1, keep_last=1)
    [record] = report.runs
    assert record.run == "exp"
    rows = runlens.read_checkpoints(
        folder.root / "exp" / "checkpoints", epochs=runlens.read_epochs(folder.root)
    )
    plan = runlens.plan_prune(rows, rules=[runlens.KeepBestK(1, "val_loss"), runlens.KeepLastN(1)], min_age=0)
    c = record.checkpoints
    assert (c.files, c.keep, c.bytes_to_free) == (
        len(plan),
        plan["keep"].sum(),
        runlens.plan_summary(plan)["bytes_to_free"],
    )
    assert c.files == len(folder.files("every")) + len(folder.files("weights"))
    # exp/best holds save_best_only checkpoints but no logs: named in a warning, not a run
    assert any("exp/best" in w for w in report.warnings)


def test_checkpoint_problems_become_notes_not_failures(fitted, tmp_path):
    folder = copy_fitted(fitted, tmp_path / "runs")
    ckpt = folder.root / "exp" / "checkpoints"
    for i, path in enumerate(sorted(ckpt.iterdir())):  # valid files without an epoch: nothing to rank by
        path.rename(ckpt / f"model_{chr(97 + i)}{'.weights.h5' if path.name.endswith('.h5') else '.keras'}")
    report = runlens.build_report(folder.root, checkpoint_min_age=0)
    c = report.run("exp").checkpoints
    assert c.files == len(list(ckpt.iterdir())) and c.keep is None
    assert "val_loss" in c.note and "rank" in c.note
    text = runlens.render_report(report, "text")
    assert "no plan:" in text


def test_checkpoints_in_the_run_folder_itself_and_invalid_and_fresh_ones(fitted, tmp_path):
    folder = copy_fitted(fitted, tmp_path / "runs")
    run = folder.root / "exp"
    shutil.rmtree(run / "checkpoints")
    files = folder.files("best")
    for path in files:
        shutil.move(path, run / path.name)  # epoch_NN names: ModelCheckpoint beside the logs
    (run / "best_99_cut.keras").write_bytes((run / files[0].name).read_bytes()[:100])  # a save cut short
    report = runlens.build_report(folder.root)  # default min-age: the cut file is also fresh
    c = report.run("exp").checkpoints
    assert c.folder == "exp"
    assert (c.files, c.valid, c.invalid) == (len(files) + 1, len(files), 1)
    assert c.fresh == 1 and c.keep + c.drop == c.files
    assert 98 in c.kept_epochs  # the cut file ("{epoch}" 99 = epoch 98) is kept, never ranked


def test_files_that_are_not_checkpoints_are_one_warning_and_no_part_of_the_plan(fitted, tmp_path):
    from checkpoint_fits import write_data_h5

    folder = copy_fitted(fitted, tmp_path / "runs")
    ckpt = folder.root / "exp" / "checkpoints"
    for i in range(1, 8):  # data files named like checkpoints: predictions_001.h5 ...
        write_data_h5(ckpt / f"predictions_{i:03d}.h5", seed=i)
    (ckpt / "cut_099.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # damaged, unproven
    report = runlens.build_report(folder.root, checkpoint_min_age=0)
    c = report.run("exp").checkpoints
    assert c.files == len(folder.files("every")) + len(folder.files("weights"))
    [grouped] = [w for w in report.warnings if "not Keras checkpoints" in w]
    assert grouped.startswith("7 file(s) named like checkpoints") and grouped.endswith("and 2 more")
    assert "exp/checkpoints/predictions_001.h5" in grouped
    assert any("cut_099.weights.h5 skipped: damaged HDF5 file" in w for w in report.warnings)
    assert "not Keras checkpoints" in runlens.render_report(report, "text")


def test_default_monitor_is_loss_without_val_loss_and_errors_name_the_metrics():
    frame = epoch_frame({"a": {"loss": [1.0, 0.5, 0.6, 0.7], "accuracy": [0.5, 0.6, 0.6, 0.6]}})
    report = runlens.build_report(frame, early_stopping={"patience": 1})  # monitor: the default
    assert report.settings.monitor == "loss" and report.source == "epoch frame"
    assert report.run("a").stopped_epoch == 2 and report.run("a").checkpoints is None
    with pytest.raises(RunlensError, match=r"'val_acc' is not a logged metric") as error:
        runlens.build_report(frame, early_stopping={"monitor": "val_acc"})
    assert "accuracy" in str(error.value) and "loss" in str(error.value)
    with pytest.raises(RunlensError, match="no run logged val_loss or loss.*accuracy"):
        runlens.build_report(epoch_frame({"a": {"accuracy": [0.5, 0.6]}}))
    with pytest.raises(RunlensError, match="no per-epoch scalars"):
        runlens.build_report(frame.iloc[:0])


def test_bad_options_are_errors_that_name_the_option():
    frame = epoch_frame({"a": {"val_loss": [1.0, 0.5]}})
    for options, name in [
        ({"early_stopping": {"patience": -1}}, "patience"),
        ({"reduce_lr": {"factor": 1.5}}, "factor"),
        ({"lr_timing": "before"}, "lr_timing"),
        ({"sweep": {"patience": [1, -2]}}, "sweep patience"),
        ({"sweep": {"min_delta": []}}, "sweep grid"),
        ({"keep_best": 0}, "keep-best"),
        ({"checkpoint_min_age": -1}, "checkpoint_min_age"),
        ({"early_stopping": {"mode": "up"}}, "mode"),
        ({"early_stopping": {"patience": 1, "verbose": 1}}, "verbose"),
        ({"early_stopping": runlens.ReduceLROnPlateau()}, "early_stopping must be a runlens.EarlyStopping"),
        ({"initial_lr": -0.1}, "initial_lr"),
    ]:
        with pytest.raises(RunlensError, match=name):
            runlens.build_report(frame, **options)


def test_run_without_a_logged_rate_gets_a_note_or_replays_from_initial_lr():
    frame = epoch_frame({"a": {"val_loss": [1.0, 1.0, 1.0, 1.0]}})
    report = runlens.build_report(frame, reduce_lr={"patience": 1})
    lr = report.run("a").learning_rate
    assert lr.column is None and "no learning rate logged" in lr.note and not lr.replayed_reduced_at
    report = runlens.build_report(
        frame, reduce_lr={"patience": 1}, initial_lr=0.1, early_stopping={"patience": 10}
    )
    lr = report.run("a").learning_rate
    expected = runlens.ReduceLROnPlateau(patience=1).replay([1.0] * 4, initial_lr=0.1)
    assert lr.note is None and lr.replayed_reduced_at == list(expected.reduced_at)
    assert report.run("a").curves["learning_rate_replayed"] == list(expected.learning_rates)


def test_learning_rate_replay_agrees_with_the_real_reduce_lr_on_plateau(keras_plateau_run):
    # The fixture's ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1, min_delta=1.0)
    # ran after TensorBoard, so the log holds the rate used during each epoch.
    options = dict(
        early_stopping={"monitor": "val_accuracy", "patience": 30},
        reduce_lr={"factor": 0.5, "patience": 1, "min_delta": 1.0},  # on the report's monitor
    )
    report = runlens.build_report(keras_plateau_run.path, **options)
    frame = runlens.read_epochs(keras_plateau_run.path)
    assert_runs_match_replay(report, frame)
    [record] = report.runs
    lr = record.learning_rate
    used = [keras_plateau_run.logs[e]["learning_rate"] for e in sorted(keras_plateau_run.logs)]
    changes = [e - 1 for e in range(1, len(used)) if used[e] != used[e - 1]]
    assert changes and lr.logged_changes_at == changes
    assert lr.diverges_at is None
    assert [e for e in lr.replayed_reduced_at if e < record.last_epoch] == changes
    assert record.curves["learning_rate_replayed"] == pytest.approx(used[: lr.epochs_replayed])
    # Read as "after" (the rate already reduced), the same log departs from the replay.
    after = runlens.build_report(keras_plateau_run.path, lr_timing="after", **options)
    assert_runs_match_replay(after, frame)
    assert after.runs[0].learning_rate.diverges_at is not None


@settings(max_examples=25, deadline=None)
@given(
    runs=st.lists(values_strategy(max_size=15).filter(bool), min_size=1, max_size=3),
    patience=st.integers(0, 4),
    restore=st.booleans(),
    semantics=st.sampled_from(["keras3", "keras2"]),
)
def test_any_frame_reports_what_replay_says_and_encodes_nan(runs, patience, restore, semantics):
    frame = epoch_frame({f"r{i}": {"val_loss": v} for i, v in enumerate(runs)})
    report = runlens.build_report(
        frame,
        early_stopping=runlens.EarlyStopping(
            patience=patience, restore_best_weights=restore, semantics=semantics
        ),
        sweep={"patience": [0, 2]},
    )
    assert_runs_match_replay(report, frame, lr=False)
    assert_sweep_matches(report, frame)
    assert report.totals.epochs_saved == sum(r.epochs_saved for r in report.runs)
    document = json.loads(render_json(report))  # strict JSON: NaN/inf became strings
    for record, values in zip(document["runs"], runs):
        assert record["curves"]["val_loss"] == [_encoded(v) for v in values]
    for fmt in ("text", "markdown"):
        assert runlens.render_report(report, fmt)


def test_sparse_validation_counts_the_epochs_with_a_monitored_value(keras_sparse_validation_run):
    report = runlens.build_report(keras_sparse_validation_run.path)
    [record] = report.runs
    frame = runlens.read_epochs(keras_sparse_validation_run.path)
    assert record.monitor_logged == frame["val_loss"].notna().sum() < record.epochs_logged
    assert sum(v is None for v in record.curves["val_loss"]) == record.epochs_logged - record.monitor_logged
    assert np.isfinite(record.run_best_value)


def _keys(value, path=()):
    """Every key of a to_dict() tree, except the metric names under ``curves``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            if key != "curves":
                yield from _keys(item, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item, path)


def test_the_docs_document_every_json_key():
    root = Path(__file__).parent.parent
    page = (root / "docs" / "report.md").read_text(encoding="utf-8")
    section = page.split("\n## JSON\n", 1)[1].split("\n## ", 1)[0]
    # The keys issue 13 added (the overview, each run's damaged files) are in its docs page.
    at_scale = (root / "docs" / "report-at-scale.md").read_text(encoding="utf-8")
    section += at_scale.split("\n## JSON\n", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)(?:\[\])?`", section))
    report = runlens.build_report(SAMPLE, checkpoint_min_age=0)
    missing = sorted(set(_keys(report.to_dict())) - documented)
    assert not missing, f"docs/report.md's JSON section does not document JSON keys {missing}"


@pytest.mark.parametrize("framework", ["keras", "lightning", "transformers"])
def test_each_record_holds_its_runs_replay_row_cell_for_cell(framework):
    # the records take replay_rows' lists as they are; the reference is runlens.replay's table, an
    # evaluation frame's under the epoch names the records use (events by evaluation)
    import runlens.lightning
    import runlens.transformers
    from runlens.report.build.runs import python, run_reports

    frame = runlens.read_evals(SAMPLE, framework="auto")
    frame = frame[frame["framework"] == framework].reset_index(drop=True)
    frame["run"] = frame["run"].cat.remove_unused_categories()
    policy = {
        "keras": runlens.EarlyStopping(patience=2, baseline=0.4),
        "lightning": runlens.lightning.EarlyStopping("val_loss"),
        "transformers": runlens.transformers.EarlyStoppingCallback(early_stopping_patience=1),
    }[framework]
    table = runlens.replay(frame, policy)
    events = ("stopped", "best", "restored", "run_best")
    table = table.rename(columns={**{f"evals_{k}": f"epochs_{k}" for k in ("logged", "trained", "saved")}})
    if "stopped_eval" in table.columns:
        table = table.drop(columns=[f"{e}_epoch" for e in events]).rename(
            columns={f"{e}_eval": f"{e}_epoch" for e in events}
        )
    records = run_reports(frame, policy, lr_policy=lambda run: (None, None), initial_lr=None, timing="used")
    assert [r.run for r in records] == table["run"].tolist() and len(records) >= 1
    for record, row in zip(records, table.to_dict("records")):
        for key in (*_COUNT_KEYS, *_VALUE_KEYS):
            expected = python(row[key], nan_is_none=key == "time_saved_s")
            mine = getattr(record, key)
            same = mine == expected or (
                isinstance(expected, float) and math.isnan(expected) and math.isnan(mine)
            )
            assert same and type(mine) is type(expected), (record.run, key, mine, expected)


rates = st.lists(
    st.one_of(st.none(), st.sampled_from([0.1, 0.05, 0.025, float("nan")]), st.floats(1e-6, 1.0)), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(st.lists(rates, min_size=1, max_size=6), st.sampled_from(["used", "after"]))
def test_logged_rates_of_all_runs_at_once_equal_each_runs_own(per_run, timing):
    # the report summarises every run's logged rate in one pass; the reference is run by run
    from runlens.policies.learning_rate import logged_changes_at
    from runlens.policies.runs import RunSeries
    from runlens.report.build.learning_rate import logged_rates

    found = []
    for i, values in enumerate(per_run):
        present = np.array([v is not None for v in values], dtype=bool)
        numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        found.append(RunSeries(f"r{i}", numbers, present, np.ones(len(values), bool), np.zeros(len(values))))
    summaries = logged_rates(found, "learning_rate", timing)
    for s in found:
        got = summaries[s.run]
        if not s.present.any():
            assert got.column is None and got.logged_first is None and got.logged_changes_at == []
            continue
        logged = s.values[s.present]
        assert got.column == "learning_rate"
        assert got.logged_changes_at == logged_changes_at(s.values, s.present, timing)
        assert np.array_equal([got.logged_first, got.logged_final], [logged[0], logged[-1]], equal_nan=True)


def test_checkpoints_planned_for_all_runs_at_once_summarise_as_each_run_alone(tmp_path):
    """The report plans every Keras run's checkpoints in one plan_prune (a sweep: one plan, not
    one per run); each run's summary is the one a plan of its own gives, on the sample runs (one
    with a checkpoint just written, one with an unreadable one)."""
    import os

    from runlens.checkpoints.retention import KeepBestK, KeepLastN
    from runlens.report.build.checkpoints import checkpoint_summaries

    logdir = tmp_path / "logs"
    for run in ("improving", "overfits", "plateau", "sparse_validation", "unpruned"):
        shutil.copytree(Path(SAMPLE) / run, logdir / run)
    (logdir / "plateau" / "runlens.json").unlink()  # not known to have ended: min-age applies
    os.utime(sorted((logdir / "plateau" / "checkpoints").iterdir())[-1])  # just written
    os.utime(sorted((logdir / "unpruned" / "checkpoints").iterdir())[-1])  # ended: not fresh
    broken = sorted((logdir / "overfits" / "checkpoints").iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:100])
    frame = runlens.read_epochs(logdir)
    report = runlens.build_report(logdir)
    rules = [KeepBestK(3, report.settings.monitor), KeepLastN(1)]
    restored = {r.run: r.restored_epoch for r in report.runs}
    together, _ = checkpoint_summaries(
        logdir, frame, runs=list(restored), rules=rules, min_age=600, restored=restored
    )
    assert len(together) == 5 and any(s.fresh for s in together.values())
    assert any(s.invalid for s in together.values())
    table = runlens.read_checkpoints(logdir)
    for run in restored:
        alone, _ = checkpoint_summaries(
            logdir, frame, runs=[run], rules=rules, min_age=600, restored=restored
        )
        assert alone[run] == together[run]
        # and what plan_prune itself says of the run
        min_age = 600 if run == "plateau" else 0  # the others' runlens.json say they ended
        rows = table[table["run"] == run]
        plan = runlens.plan_prune(rows, rules=rules, min_age=min_age, now=pd.Timestamp.now(tz="UTC"))
        counts = runlens.plan_summary(plan)
        got = together[run]
        assert (got.files, got.invalid, got.keep, got.drop, got.bytes_to_free) == (
            counts["files"],
            counts["invalid"],
            counts["keep"],
            counts["drop"],
            counts["bytes_to_free"],
        )
        assert got.kept_epochs == plan.loc[plan["keep"], "epoch"].astype(int).tolist()
        fresh = plan["mtime"] > pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=min_age)
        assert got.fresh == int(fresh.sum())


def test_a_runs_checkpoints_folder_wins_over_files_beside_its_logs(tmp_path):
    """A run's checkpoints are the files in RUN/checkpoints/ when it has any there, else those in
    the run folder itself: chosen for every run of the report in one pass over the table."""
    logdir = tmp_path / "logs"
    for run in ("improving", "overfits", "plateau"):
        shutil.copytree(Path(SAMPLE) / run, logdir / run)
    kept = sorted((logdir / "improving" / "checkpoints").iterdir())
    shutil.copy(kept[0], logdir / "improving" / kept[0].name)  # a copy beside the logs as well
    folder = logdir / "overfits" / "checkpoints"
    moved = sorted(folder.iterdir())
    for path in moved:  # ModelCheckpoint writing beside the logs
        shutil.move(path, logdir / "overfits" / path.name)
    folder.rmdir()
    report = runlens.build_report(logdir, checkpoint_min_age=0)
    summaries = {r.run: r.checkpoints for r in report.runs}
    assert (summaries["improving"].folder, summaries["improving"].files) == (
        "improving/checkpoints",
        len(kept),
    )
    assert (summaries["overfits"].folder, summaries["overfits"].files) == ("overfits", len(moved))
    plateau = sorted((logdir / "plateau" / "checkpoints").iterdir())
    assert (summaries["plateau"].folder, summaries["plateau"].files) == ("plateau/checkpoints", len(plateau))
