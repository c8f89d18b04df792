"""runlens.replay, runlens.sweep, build_report and the CLI on read_evals frames (issue 11).

The logs are written by the real frameworks: tiny Lightning and HF Trainer fits whose monitored
value follows a script (tests/framework_fits.py), a Keras run of sample_logs beside them, and the
Lightning and HF runs sample_logs ships. Each report's decision is held against what the framework
itself did, and against the policy's own replay (the reference the parity tests hold to the real
classes).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from framework_fits import f32, lightning_fit, trainer_fit
from hypothesis import given, settings
from hypothesis import strategies as st

import runlens
import runlens.lightning
import runlens.torch
import runlens.transformers
from runlens.cli import main

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"
# A Lightning script: val_loss best at check 1, three checks without improvement -> stops at check 4.
LIGHTNING_SCRIPT = f32([1.0, 0.8, 0.85, 0.9, 0.95, 0.97, 0.99, 0.5, 0.4, 0.3])
# An HF script (eval "score", lower is better): patience 1 stops at the 3rd evaluation.
HF_SCRIPT = f32([1.0, 0.9, 0.95, 0.5, 0.4, 0.3])


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    """Keras, Lightning (a check every second epoch) and HF Trainer runs in one logdir."""
    root = tmp_path_factory.mktemp("frameworks_report")
    shutil.copytree(SAMPLE / "overfits", root / "overfits")
    light = lightning_fit(
        root / "lightning", LIGHTNING_SCRIPT, early_stopping=dict(patience=3), check_val_every_n_epoch=2
    )
    hf = trainer_fit(root / "hf", HF_SCRIPT, patience=1)
    return root, light, hf


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_replay_on_an_evals_frame_names_each_evaluation_and_its_step_and_epoch(logdir):
    root, light, _ = logdir
    evals = runlens.read_evals(root / "lightning")
    policy = runlens.lightning.EarlyStopping("val_loss", patience=3)
    row = runlens.replay(evals, policy).iloc[0]
    result = policy.replay(evals["val_loss"])  # the reference: the policy's own replay
    assert row.framework == "lightning"
    assert row.stopped_eval == result.stopped_at == len(evals) - 1 == 4  # where Lightning stopped
    assert row.stopped_epoch == light.stopped_epoch == 9  # check_val_every_n_epoch=2: epochs 1, 3, ...
    assert row.stopped_step == evals["step"].iloc[4]
    assert row.best_eval == result.best_at == 1 and row.best_epoch == 3
    assert row.evals_logged == 5 and row.evals_trained == 5 and row.evals_saved == 0
    assert "epochs_logged" not in row.index and "stopped_epoch" in row.index
    # the same policy with less patience stops earlier: the table counts the checks it saves
    early = runlens.replay(evals, policy.replace(patience=1)).iloc[0]
    assert (early.stopped_eval, early.stopped_epoch, early.evals_saved) == (2, 5, 2)


def test_replay_of_a_keras_evals_frame_decides_as_on_the_epoch_frame():
    policy = runlens.EarlyStopping(patience=2, restore_best_weights=True)
    by_epoch = runlens.replay(runlens.read_epochs(SAMPLE / "overfits"), policy)
    by_eval = runlens.replay(runlens.read_evals(SAMPLE / "overfits"), policy)
    assert by_eval["stopped_eval"].tolist() == by_epoch["stopped_epoch"].tolist()
    assert by_eval["stopped_epoch"].tolist() == by_epoch["stopped_epoch"].tolist()  # eval == epoch
    assert by_eval["restored_eval"].tolist() == by_epoch["restored_epoch"].tolist()
    assert by_eval["evals_saved"].tolist() == by_epoch["epochs_saved"].tolist()
    assert by_eval["regret"].tolist() == by_epoch["regret"].tolist()


def test_replay_with_torch_plateau_on_lightnings_logged_rate():
    evals = runlens.read_evals(SAMPLE / "lightning")
    # generate_frameworks.py: ReduceLROnPlateau(patience=1, factor=0.5) on val_loss, lr-Adam logged
    table = runlens.replay(
        evals,
        runlens.lightning.EarlyStopping("val_loss"),
        lr_policy=runlens.torch.ReduceLROnPlateau(patience=1, factor=0.5),
    )
    assert table["lr_diverges_at"].isna().all()  # the replay is the schedule the run logged
    assert table["lr_reduced_at"].iloc[0] == (5,)


def test_sweep_on_an_evals_frame_sweeps_the_frameworks_own_setting(logdir):
    root, _, hf = logdir
    evals = runlens.read_evals(root / "hf")
    policy = runlens.transformers.EarlyStoppingCallback(
        metric_for_best_model="score", greater_is_better=False
    )
    result = runlens.sweep(evals, policy, early_stopping_patience=[1, 2, 3], tolerance=1.0)
    assert {"evals_logged", "evals_saved"} <= set(result.table.columns)
    assert "epochs_saved" not in result.table.columns
    first = result.table.iloc[0]
    assert first.early_stopping_patience == 1 and first.evals_saved == 0  # the run stopped right there
    assert int(evals["step"].iloc[-1]) == hf.global_step
    with pytest.raises(runlens.RunlensError, match="its framework's policy"):
        runlens.sweep(evals)


_values = st.lists(
    st.one_of(st.none(), st.floats(0, 2, width=32), st.sampled_from([float("nan"), float("inf")])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    runs=st.lists(_values, min_size=1, max_size=3),
    patience=st.lists(st.integers(0, 6), min_size=1, max_size=4),
)
def test_sweep_and_replay_of_an_evals_frame_agree_with_each_policys_own_replay(runs, patience):
    rows = []
    for r, values in enumerate(runs):
        for i in range(len(values)):
            rows.append(
                {"run": f"r{r}", "eval": i, "step": 10 * i + 9, "epoch": i / 2, "wall_time": float(i)}
            )
    frame = pd.DataFrame(rows)
    frame.insert(1, "framework", "generic")
    values = [v for r in runs for v in r]
    missing = np.array([v is None for v in values])
    frame["eval_m"] = pd.arrays.FloatingArray(np.array([0.0 if v is None else v for v in values]), missing)
    for policy in (
        runlens.lightning.EarlyStopping("eval_m"),
        runlens.transformers.EarlyStoppingCallback(metric_for_best_model="eval_m", greater_is_better=False),
    ):
        key = "patience" if policy.framework == "lightning" else "early_stopping_patience"
        table = runlens.sweep(frame, policy, **{key: patience}).table
        for p in dict.fromkeys(patience):
            one = policy.replace(**{key: p})
            replayed = runlens.replay(frame, one)
            expected = [
                one.replay(frame.loc[frame.run == f"r{r}", "eval_m"].array).stopped_at
                for r in range(len(runs))
            ]
            assert [None if v is pd.NA else v for v in replayed["stopped_eval"]] == expected
            row = table[table[key] == p].iloc[0]
            assert row.evals_saved == replayed["evals_saved"].sum()
            assert row.runs_stopped == sum(e is not None for e in expected)


def test_report_replays_each_run_with_its_frameworks_policy_and_defaults(logdir, tmp_path):
    root, light, _ = logdir
    report = runlens.build_report(root, checkpoint_min_age=0)
    assert report.settings.framework == "keras" and [r.run for r in report.runs] == ["overfits"]
    parts = {p.settings.framework: p for p in report.parts}
    assert set(parts) == {"lightning", "transformers"}
    lightning = parts["lightning"]
    assert lightning.settings.early_stopping == {
        "class": "lightning.EarlyStopping",
        **runlens.lightning.EarlyStopping("val_loss").settings(),
    }
    record = lightning.runs[0]
    assert record.stopped_epoch == 4 and record.epochs[4] == light.stopped_epoch  # check 5, epoch 9
    assert record.steps[4] == light.checks[4][1] - 1  # logged at the step before global_step advanced
    hf_part = parts["transformers"]
    assert hf_part.settings.early_stopping["early_stopping_patience"] == 1
    assert hf_part.settings.monitor == "eval_loss"
    assert hf_part.sweep.rows[0]["early_stopping_patience"] == 0
    # the Keras report is the one a Keras-only logdir gives
    shutil.copytree(SAMPLE / "overfits", tmp_path / "overfits")
    alone = runlens.build_report(tmp_path, checkpoint_min_age=0).to_dict()
    mixed = report.to_dict()
    assert mixed["runs"] == alone["runs"] and mixed["sweep"] == alone["sweep"]
    assert mixed["parts"][0]["framework"] == "lightning"


def test_report_overrides_map_onto_each_frameworks_arguments(logdir):
    root, _, hf = logdir
    report = runlens.build_report(
        root / "hf",
        policies={"transformers": {"metric_for_best_model": "score", "greater_is_better": False}},
    )
    record = report.runs[0]
    assert record.stopped_epoch == 2 and record.steps[2] == hf.global_step  # where the Trainer stopped
    assert record.best_epoch == 1 and record.steps[1] == hf.best_global_step
    result = invoke("report", root / "hf", "--monitor", "score", "--mode", "min", "--patience", "2")
    assert result.exit_code == 0, result.output
    assert (
        "transformers.EarlyStoppingCallback(early_stopping_patience=2, metric_for_best_model=score"
        in " ".join(result.output.split())
    )


def test_report_text_names_checks_and_evaluations_as_each_framework_does(logdir):
    root, light, hf = logdir
    result = invoke("report", root, "--min-age", "0")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"stops after validation check 5, epoch {light.stopped_epoch} (patience 3;" in text
    assert "validation checks saved" in text and "Epochs are 1-based" in text
    first = hf.evaluations[0]
    assert f"evaluation at step {first}, epoch 1" in text
    assert "other runs 1 lightning run(s), 1 transformers run(s)" in text
    data = json.loads(invoke("report", root, "--format", "json", "--no-checkpoints").output)
    assert [p["settings"]["framework"] for p in data["parts"]] == ["lightning", "transformers"]


def test_report_on_the_shipped_samples_matches_what_the_frameworks_did():
    report = runlens.build_report(SAMPLE / "lightning", policies={"torch": {"patience": 1, "factor": 0.5}})
    record = report.runs[0]
    # generate_frameworks.py checked that Lightning stopped at the last check with patience 3
    assert record.stopped_epoch == record.epochs_logged - 1
    assert record.learning_rate.diverges_at is None and record.learning_rate.replayed_reduced_at == [5]
    hf = runlens.build_report(
        SAMPLE / "transformers", policies={"transformers": {"early_stopping_patience": 2}}
    )
    assert hf.runs[0].stopped_epoch == hf.runs[0].epochs_logged - 1  # the sample used patience 2
    assert hf.runs[0].notes == []  # the replayed settings are the run's own (trainer_state.json)
    default = runlens.build_report(SAMPLE / "transformers").runs[0]
    [note] = default.notes  # patience 1 replayed: the note says what the run itself used
    assert "checkpoint-25/trainer_state.json): early_stopping_patience=2" in note and "--patience 2" in note


@pytest.fixture
def generic_logdir(tmp_path):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "plain")) as writer:  # no framework's layout
        for step in range(0, 50, 10):
            writer.add_scalar("train/loss", 1.0 / (step + 1), step)
            writer.add_scalar("val/loss", [1.0, 0.8, 0.9, 0.95, 0.97][step // 10], step)
    return tmp_path


def test_a_generic_logdir_is_an_error_saying_what_to_pass_never_an_empty_result(generic_logdir):
    for args in (("report",), ("export", "--evals", "-o", "-"), ("export", "--epochs", "-o", "-")):
        result = invoke(*args[:1], generic_logdir, *args[1:])
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
        assert "train/loss" in result.output  # what was found
        if args[-1] != "-" or "--evals" in args:
            assert "--monitor val/loss" in result.output  # what to pass
    with pytest.raises(runlens.RunlensError, match="no per-epoch scalars"):
        runlens.read_epochs(generic_logdir)


def test_a_generic_logdir_with_a_monitor_is_reported_and_exported(generic_logdir):
    result = invoke("report", generic_logdir, "--monitor", "val/loss", "--patience", "2")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "stops after evaluation 4 (step 30) (patience 2; best so far: evaluation 2 (step 10))" in text
    exported = invoke("export", generic_logdir, "--evals", "--monitor", "val/loss", "-o", "-")
    assert exported.exit_code == 0
    lines = exported.output.strip().splitlines()
    assert lines[0].startswith("run,framework,eval,step,epoch,wall_time") and len(lines) == 6


def test_export_evals_writes_the_read_evals_frame(tmp_path):
    out = tmp_path / "evals.json"
    result = invoke("export", SAMPLE / "lightning", "--evals", "-o", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    frame = runlens.read_evals(SAMPLE / "lightning")
    assert len(rows) == len(frame) and rows[0]["framework"] == "lightning"
    assert [r["val_loss"] for r in rows] == frame["val_loss"].tolist()
    bad = invoke("export", SAMPLE / "lightning", "--monitor", "val_loss", "-o", "-")
    assert bad.exit_code == 2 and "add --evals" in bad.output


DOCS = Path(__file__).resolve().parent.parent / "docs" / "frameworks.md"
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", DOCS.read_text(encoding="utf-8"), re.S | re.M)


def test_docs_frameworks_has_a_section_per_framework_and_its_limitations():
    headings = re.findall(r"^## (.+)$", DOCS.read_text(encoding="utf-8"), re.M)
    assert {"Lightning", "HF Trainer", "torch", "Generic logs"} <= set(headings)
    assert headings[-1] == "Limitations" and len(PYTHON_BLOCKS) >= 4


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))])
def test_docs_frameworks_python_examples_run_on_the_shipped_logs(block, monkeypatch):
    monkeypatch.chdir(DOCS.parent.parent)  # the examples name sample_logs/ from the repository root
    exec(compile(block, str(DOCS), "exec"), {})


def test_a_policy_object_is_used_for_its_own_frameworks_runs_and_never_silently_dropped():
    mine = runlens.lightning.EarlyStopping("val_loss", patience=1)
    report = runlens.build_report(SAMPLE / "lightning", early_stopping=mine)
    assert report.settings.early_stopping["patience"] == 1 and report.runs[0].stopped_epoch == 4
    with pytest.raises(runlens.RunlensError, match="no run here is replayed with one"):
        runlens.build_report(SAMPLE / "lightning", early_stopping=runlens.EarlyStopping())


def test_the_html_report_lays_out_every_frameworks_part(logdir):
    report = runlens.build_report(logdir[0], checkpoints=False)
    page = runlens.render_report(report, "html")
    assert len(report.parts) == 2
    assert page.count("<h1>") == 3 and page.count("<html") == 1
    assert "(lightning runs)</h1>" in page and "(transformers runs)</h1>" in page
    ids = re.findall(r'id="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # each part's run sections have anchors of their own


def test_build_report_leaves_the_callers_frame_and_its_attrs_as_they_were():
    evals = runlens.read_evals(SAMPLE / "lightning")
    before = (evals.copy(), dict(evals.attrs))
    runlens.build_report(evals, checkpoints=False)
    pd.testing.assert_frame_equal(evals, before[0])
    assert evals.attrs == before[1] and "frameworks" in evals.attrs


def test_every_format_counts_runs_worth_a_look_in_each_frameworks_unit():
    report = runlens.build_report(SAMPLE / "transformers", checkpoints=False)
    saved = next(s for s in report.overview.worth_a_look if s.reason == "saved")
    unit = "evaluation saved" if saved.value == 1 else "evaluations saved"
    for fmt in ("text", "markdown", "html"):
        page = runlens.render_report(report, fmt)
        assert f"({saved.value} {unit})" in page and "epochs saved)" not in page, fmt


def test_a_trainer_state_json_nested_too_deep_is_passed_over_not_a_crash(tmp_path):
    """json.loads raises RecursionError (not ValueError) on JSON nested 100,000 deep: the report
    reads the latest checkpoint's trainer_state.json for the Trainer's own settings and passes over
    one it cannot read, as it does a damaged one: no note about the run's own settings (the intact
    sample gets one, see above), the report written."""
    logdir = tmp_path / "transformers"
    shutil.copytree(SAMPLE / "transformers", logdir)
    (logdir / "checkpoint-25" / "trainer_state.json").write_text("[" * 100_000)
    report = runlens.build_report(logdir)
    assert report.runs[0].notes == []
    assert "checkpoints" in runlens.render_report(report)


def test_a_fifo_planted_as_trainer_state_json_is_not_waited_on(tmp_path):
    """The report reads the latest checkpoint's trainer_state.json for the Trainer's own
    EarlyStoppingCallback settings: a FIFO there (reading one blocks until something writes to
    it) is passed over, the report ends (in a process with a timeout: a regression hangs no run)."""
    import os
    import subprocess
    import sys

    logdir = tmp_path / "transformers"
    shutil.copytree(SAMPLE / "transformers", logdir)
    state = logdir / "checkpoint-25" / "trainer_state.json"
    state.unlink()
    os.mkfifo(state)
    done = subprocess.run(
        [sys.executable, "-m", "runlens", "report", str(logdir)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "checkpoint-25" in done.stdout  # named: the folder is no whole checkpoint without it
