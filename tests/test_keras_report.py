"""`runlens report` on runs trained with runlens.keras: hparams, and the live decisions of
runlens.json beside the replay of the same settings -- agreeing on sample_logs, and reported loudly
(WARNING line, report warning, JSON flag, highlighted HTML row) when they do not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import runlens
from runlens.cli import main
from runlens.manifest import write_manifest

SAMPLE = Path(__file__).resolve().parent.parent / "sample_logs"


def _report(path, fmt):
    result = CliRunner().invoke(main, ["report", str(path), "--format", fmt, "--min-age", "0"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_sample_logs_runs_show_hparams_and_live_decisions_that_agree():
    report = runlens.build_report(SAMPLE, checkpoint_min_age=0)
    hparams = runlens.read_hparams(SAMPLE).set_index("run")
    for record in report.runs:
        manifest = runlens.read_manifest(SAMPLE / record.run)
        assert {h["name"]: h["value"] for h in record.hparams} == manifest["hparams"]
        assert [h["name"] for h in record.hparams] == sorted(hparams.loc[record.run].dropna().index)
        assert record.live.agrees and record.live.disagreements == []
        assert (record.live.status, record.live.epochs_recorded) == (
            manifest["status"],
            len(manifest["epochs"]),
        )
    plateau = report.run("plateau").live.reduce_lr
    assert plateau.live == plateau.replayed and plateau.live["reduced_at"] == [14, 21, 25]
    improving = report.run("improving").live.early_stopping
    assert (
        improving.live
        == improving.replayed
        == {"stopped_epoch": None, "best_epoch": 19, "restored_epoch": 19}
    )
    text = " ".join(_report(SAMPLE, "text").split())  # the text report wraps long lines
    assert "WARNING" not in text and text.count("the replay of the same settings agrees") == 2
    assert "live LR" in text and "reduced after epoch(s) 15 (to 0.05), 22 (to 0.025), 26 (to 0.0125)" in text


def _block(text, run):
    return " ".join(text.split(f"== {run}\n", 1)[1].split("\n== ", 1)[0].split())


def test_lr_replay_only_where_asked_or_where_runlens_json_says_the_run_used_it():
    """Issue 14 item 9: runs that never used ReduceLROnPlateau get no LR replay lines; the plateau
    run (its runlens.json holds reduce_lr) is replayed with its own settings, which match its log."""
    report = runlens.build_report(SAMPLE, checkpoint_min_age=0)
    for record in report.runs:
        config = runlens.read_manifest(SAMPLE / record.run)["config"]
        lr = record.learning_rate
        assert (lr.policy is not None) == (config["reduce_lr"] is not None), record.run
    plateau = report.run("plateau").learning_rate
    own = runlens.read_manifest(SAMPLE / "plateau")["config"]["reduce_lr"]
    assert plateau.settings_from == "runlens.json"
    assert {k: plateau.policy[k] for k in ("factor", "patience", "min_delta")} == {
        k: own[k] for k in ("factor", "patience", "min_delta")
    }
    assert plateau.replayed_reduced_at == [14, 21, 25] and plateau.diverges_at is None
    frame = runlens.read_epochs(SAMPLE)
    policy = runlens.ReduceLROnPlateau(**{k: v for k, v in own.items() if k != "verbose"})
    row = runlens.replay(
        frame, runlens.EarlyStopping(patience=5, restore_best_weights=True), lr_policy=policy
    )
    assert row.set_index("run").loc["plateau", "lr_reduced_at"] == (14, 21, 25)  # the one LR path
    text = _report(SAMPLE, "text")
    for record in report.runs:
        block = _block(text, record.run)
        assert "counterfactual" not in block
        assert ("LR replayed" in block) == (record.run == "plateau")
        assert ("LR logged" in block) == (record.run == "plateau")  # only the plateau run's rate changed
    block = _block(text, "plateau")
    assert (
        "the run's own settings (runlens.json)" in block and "the replay of the same settings agrees" in block
    )


def test_an_lr_replay_asked_for_says_whose_settings_it_replays():
    """Asked for (--lr-patience 10), the replay departs from the plateau run's schedule and says so
    as a counterfactual of the report's settings, beside the live comparison of the run's own."""
    result = CliRunner().invoke(main, ["report", str(SAMPLE), "--min-age", "0", "--lr-patience", "10"])
    assert result.exit_code == 0, result.output
    for run in ("improving", "overfits", "sparse_validation", "unpruned"):
        assert "LR replayed" in _block(result.stdout, run)
    block = _block(result.stdout, "plateau")
    assert (
        "the settings the report was given" in block
        and "departs from the logged schedule at epoch 16" in block
    )
    assert "counterfactual" in block and "the replay of the same settings agrees" in block
    data = runlens.build_report(SAMPLE, reduce_lr={"patience": 10}, checkpoints=False).to_dict()
    assert data["settings"]["reduce_lr"]["class"] == "keras.ReduceLROnPlateau"
    assert {r["run"]: r["learning_rate"]["settings_from"] for r in data["runs"]} == dict.fromkeys(
        ["improving", "overfits", "plateau", "sparse_validation", "unpruned"], "report"
    )


@pytest.fixture
def tampered(tmp_path):
    """A copy of sample_logs whose plateau runlens.json claims a reduction one epoch late and
    another val_loss at epoch 3: what a manifest from elsewhere, or a wrong callback order, gives."""
    root = Path(shutil.copytree(SAMPLE, tmp_path / "logs"))
    manifest = runlens.read_manifest(root / "plateau")
    manifest["reduce_lr"]["reductions"][0]["epoch"] += 1
    manifest["epochs"][2]["logs"]["val_loss"] += 0.001
    write_manifest(root / "plateau", manifest)
    return root


def test_a_disagreement_is_a_warning_line_a_report_warning_and_a_json_flag(tampered):
    text = _report(tampered, "text")
    block = text.split("== plateau")[1].split("\n== ")[0]
    warnings = [line for line in block.splitlines() if line.strip().startswith("WARNING")]
    assert len(warnings) == 2
    said = " ".join(block.split())
    assert (
        "ReduceLROnPlateau reduced_at: live after epoch(s) 16, 22, 26, replayed after epoch(s) 15, 22, 26"
        in said
    )
    assert "val_loss differs between runlens.json and the event files at epoch(s) 3" in said
    assert "WARNING: run 'plateau'" in text.split("== warnings")[1]
    data = json.loads(_report(tampered, "json"))
    live = {r["run"]: r["live"] for r in data["runs"]}
    assert live["plateau"]["agrees"] is False and len(live["plateau"]["disagreements"]) == 2
    assert all(live[run]["agrees"] for run in live if run != "plateau")


def test_a_disagreement_is_highlighted_in_html(tampered):
    html = _report(tampered, "html")
    rows = html.split('<tr class="warning">')[1:]
    assert len(rows) == 2 and all(r.startswith("<th>WARNING</th>") for r in rows)
    assert "tr.warning" in html.split("</style>")[0]
