"""`runlens checkpoints list|prune` through CliRunner and real processes (lock, kill -9, re-run)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from checkpoint_fits import TEMPLATES
from click.testing import CliRunner
from held_prunes import held_mid_prune

import runlens
from runlens.checkpoints.lock import LOCK_NAME
from runlens.checkpoints.names import checkpoint_kind
from runlens.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")
TEMPLATE_ARGS = [a for t in TEMPLATES.values() for a in ("--template", t)]
PRUNE = ["--keep-best", "2", "--monitor", "val_loss", "--min-age", "0", *TEMPLATE_ARGS]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def files(root):
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in Path(root).rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != LOCK_NAME
    }


def test_list_prints_one_based_epochs_metrics_and_notes(folder):
    saved = folder.files("every")[0].read_bytes()
    (folder.root / "exp" / "checkpoints" / "final.keras").write_bytes(saved[: len(saved) // 2])  # cut short
    (folder.root / "exp" / "checkpoints" / "other.keras").write_bytes(b"PK\x03\x04 some other zip")
    os.symlink(folder.files("every")[0], folder.root / "exp" / "checkpoints" / "link_01.keras")
    result = invoke("checkpoints", "list", folder.root, *TEMPLATE_ARGS)
    assert result.exit_code == 0, result.output
    first = folder.name_of("every", 0)
    line = next(line for line in result.output.splitlines() if first in line)
    assert line.split()[:2] == ["exp", "1"]  # epoch 0 printed as Keras prints it: 1
    logged = folder.logs[0]["val_loss"]
    assert f"{logged:.6g}" in line  # the full-precision value from the logs, not the name's
    assert "final.keras" in result.output and "NO: not a readable zip" in result.output
    assert "could not be read from the name" in result.output
    assert "skipped" in result.output and "link_01.keras" in result.output
    assert "other.keras: a zip cut short" in result.output and "never deleted" in result.output
    assert "metrics from: logs, name" in result.output


def test_prune_dry_run_prints_the_plan_and_bytes_and_changes_nothing(folder):
    before = files(folder.root)
    result = invoke("checkpoints", "prune", folder.root, *PRUNE)
    assert result.exit_code == 0, result.output
    plan = runlens.plan_prune(
        runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values())),
        rules=[runlens.KeepBestK(2, "val_loss")],
        min_age=0,
    )
    freed = plan.loc[~plan["keep"], "size_bytes"].sum()
    assert (
        f"would delete {(~plan['keep']).sum()} of {len(plan)} checkpoints, freeing {freed:,} bytes"
        in result.output
    )
    assert "dry run: nothing was changed" in result.output
    assert result.output.count("DELETE") == (~plan["keep"]).sum()
    assert files(folder.root) == before


def test_prune_apply_deletes_and_says_what_it_did(folder, tmp_path):
    result = invoke("checkpoints", "prune", folder.root, *PRUNE, "--keep-last", "1", "--apply")
    assert result.exit_code == 0, result.output
    left = runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))
    for (run, kind), rows in left.groupby(["run", "kind"]):
        assert len(rows) <= 3, (run, kind)  # best 2 + the last one
    deleted = [line.split(" ", 1)[1] for line in result.output.splitlines() if line.startswith("deleted /")]
    assert deleted and not any(os.path.exists(p) for p in deleted)
    assert f"deleted {len(deleted)} checkpoints, freed" in result.output
    moved = invoke("checkpoints", "prune", folder.root, *PRUNE, "--apply", "--trash", tmp_path / "trash")
    assert moved.exit_code == 0 and "moved " in moved.output


def test_prune_says_which_checkpoints_it_cannot_rank(folder):
    result = invoke(
        "checkpoints", "prune", folder.root, "--keep-best", "1", "--monitor", "val_loss", "--min-age", "0"
    )  # no template: best_NN_7.53e-01.keras has an unnamed value
    assert result.exit_code == 0, result.output
    unranked = len(folder.files("best"))
    assert f"{unranked} valid checkpoint(s) have no val_loss value, so they are kept" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--keep-best", "0", "--monitor", "val_loss"], 2, "--keep-best"),
        (["--keep-best", "2"], 2, "--monitor"),
        (["--keep-best", "2", "--monitor", "my_score"], 2, "pass mode='min' or mode='max'"),
        (["--keep-best", "2", "--monitor", "val_auc", "--min-age", "0"], 2, "no checkpoint has a 'val_auc'"),
        (["--keep-best", "2", "--monitor", "val_loss", "--mode", "sideways"], 2, "--mode"),
        (
            ["--keep-best", "2", "--monitor", "val_loss", "--apply", "--trash", "{root}/t", "--min-age", "0"],
            2,
            "--trash",
        ),
    ],
)
def test_prune_bad_usage_exits_2(folder, args, code, message):
    result = invoke("checkpoints", "prune", folder.root, *[a.format(root=folder.root) for a in args])
    assert result.exit_code == code, result.output
    assert message in result.output


def test_prune_refusal_exits_1(folder):
    for path in folder.files("best"):
        with open(path, "r+b") as f:
            f.truncate(100)
    before = files(folder.root)
    result = invoke("checkpoints", "prune", folder.root, *PRUNE, "--delete-invalid", "--apply")
    assert result.exit_code == 1
    assert "Error: refusing: run 'exp/best' would be left without a valid checkpoint" in result.output
    assert files(folder.root) == before


def test_help_documents_exit_codes_and_examples():
    for command in (["checkpoints"], ["checkpoints", "list"], ["checkpoints", "prune"]):
        result = invoke(*command, "--help")
        assert result.exit_code == 0 and "runlens checkpoints" in result.output
    prune_help = invoke("checkpoints", "prune", "--help").output
    assert "0 done" in prune_help and "1 refused" in prune_help and "2 bad usage" in prune_help


def test_a_prune_killed_mid_apply_keeps_every_kept_file_and_a_rerun_finishes(folder, tmp_path):
    root = folder.root
    table = runlens.read_checkpoints(root, template=list(TEMPLATES.values()))
    plan = runlens.plan_prune(table, rules=[runlens.KeepBestK(2, "val_loss")], min_age=0)
    kept, dropped = set(plan.loc[plan["keep"], "path"]), set(plan.loc[~plan["keep"], "path"])
    assert len(dropped) >= 6
    before = files(root)
    with held_mid_prune(["checkpoints", "prune", str(root), *PRUNE, "--apply"], tmp_path) as process:
        # A second prune while the first one works: refused by the lock, exit 1, nothing touched.
        during = files(root)
        second = invoke("checkpoints", "prune", root, *PRUNE, "--apply")
        assert second.exit_code == 1 and "another runlens prune" in second.output
        assert files(root) == during
    assert process.returncode == -signal.SIGKILL

    after_kill = files(root)
    assert {p: before[p] for p in kept} == {p: after_kill[p] for p in kept}  # every kept file intact
    assert len(dropped - set(after_kill)) == 3  # the job was cut short after three deletions

    rerun = subprocess.run(
        [sys.executable, "-m", "runlens", "checkpoints", "prune", str(root), *PRUNE, "--apply"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    final = files(root)
    checkpoints = {p for p in final if checkpoint_kind(os.path.basename(p))}
    assert checkpoints == kept
    assert {p: final[p] for p in kept} == {p: before[p] for p in kept}
    assert len(kept) == 2 * 3  # best 2 of each series: exp keras, exp weights, exp/best keras
