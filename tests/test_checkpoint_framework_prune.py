"""Every safety rule of ``runlens checkpoints prune``, again for Lightning ``.ckpt`` files and HF
Trainer ``checkpoint-N/`` folders written by real fits: dry run, --apply, --trash, the lock, no
symlinks, never leaving DIR, never the last valid one, stale plans, races while a folder is being
removed, and kill -9 in the middle of removing one."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from framework_checkpoint_fits import NOW
from held_prunes import held_mid_prune, prunes_together

import runlens
from runlens.checkpoints.lock import prune_lock
from runlens.cli import main

SHM = Path("/dev/shm")


def state(root: Path) -> dict[str, object]:
    """Every file (sha256), folder and symlink (its text) under root; lock files left out."""
    out: dict[str, object] = {}
    for path in sorted(Path(root).rglob("*")):
        if path.is_symlink():
            out[str(path)] = ("->", os.readlink(path))
        elif path.is_dir():
            out[str(path)] = "dir"
        elif path.name != ".runlens-prune.lock":
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def below(snapshot: dict[str, object], root: str) -> dict[str, object]:
    return {p: v for p, v in snapshot.items() if p == root or p.startswith(root + os.sep)}


@pytest.fixture(params=["lightning", "transformers"])
def case(request, lightning_copy, hf_copy):
    """(root, CLI ranking options, rules) for a folder of real checkpoints of each kind."""
    if request.param == "lightning":
        return lightning_copy, ["--monitor", "val_loss"], [runlens.KeepBestK(1, "val_loss")]
    return (
        hf_copy,
        ["--monitor", "eval_score", "--mode", "min"],
        [runlens.KeepBestK(1, "eval_score", mode="min")],
    )


def plan_of(root, rules):
    return runlens.plan_prune(runlens.read_checkpoints(root), rules=rules, now=NOW)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_dry_run_by_default_then_apply_removes_exactly_the_plan(case):
    root, options, rules = case
    before = state(root)
    dry = invoke("checkpoints", "prune", root, "--keep-best", "1", *options, "--min-age", "0")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing was changed" in dry.output and state(root) == before
    plan = plan_of(root, rules)
    drops = set(plan.loc[~plan["keep"], "path"])
    applied = invoke("checkpoints", "prune", root, "--keep-best", "1", *options, "--min-age", "0", "--apply")
    assert applied.exit_code == 0, applied.output
    after = state(root)
    gone = {p for p in before if p not in after}
    assert {p for p in gone if p in drops} == drops  # every planned checkpoint, whole
    assert all(any(p == d or p.startswith(d + os.sep) for d in drops) for p in gone)  # and nothing else
    assert {p: before[p] for p in after} == after
    assert f"deleted {len(drops)} checkpoints" in applied.output


def test_a_plan_that_would_empty_a_run_is_refused(case):
    root, _, rules = case
    plan = plan_of(root, rules)
    plan["keep"] = False
    before = state(root)
    with pytest.raises(runlens.PruneRefused, match="would be left without a valid checkpoint"):
        runlens.apply_prune(plan, root)
    assert state(root) == before


def test_another_prune_holding_the_lock_refuses_the_whole_plan(case):
    root, _, rules = case
    plan = plan_of(root, rules)
    folder = os.path.dirname(plan.loc[~plan["keep"], "path"].iloc[0])
    before = state(root)
    with prune_lock(folder), pytest.raises(runlens.PruneRefused, match="another runlens prune"):
        runlens.apply_prune(plan, root)
    assert state(root) == before
    assert runlens.apply_prune(plan, root).removed


@pytest.mark.parametrize("where", ["same filesystem", "another filesystem"])
def test_trash_receives_whole_checkpoints(case, tmp_path, where):
    root, _, rules = case
    if where == "same filesystem":
        trash = tmp_path / "trash"
    else:
        if not SHM.is_dir() or SHM.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("no second filesystem (/dev/shm)")
        trash = Path(tempfile.mkdtemp(dir=SHM)) / "trash"
    try:
        plan = plan_of(root, rules)
        before = state(root)
        result = runlens.apply_prune(plan, root, trash=trash)
        assert sorted(result.removed) == sorted(plan.loc[~plan["keep"], "path"]) and not result.failed
        for source, target in zip(result.removed, result.moved_to):
            assert target == str(trash / os.path.relpath(source, root))
            moved = {p.replace(source, target, 1): v for p, v in below(before, source).items()}
            assert below(state(trash), target) == moved  # every file, folder and link, unchanged
            assert not os.path.lexists(source)
        assert not [p for p in trash.rglob("*.partial")]
    finally:
        if where != "same filesystem":
            shutil.rmtree(trash.parent, ignore_errors=True)


def test_planted_names_in_a_shared_trash_are_passed_over_never_written_through(hf_copy, tmp_path):
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    trash = shared / "old"
    trash.mkdir()
    trash.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("someone's data")
    os.symlink(victim, trash / "checkpoint-2")  # where checkpoint-2 would go
    (trash / "checkpoint-4").mkdir()  # taken by an older trashed folder
    (trash / "checkpoint-4" / "old.txt").write_text("trashed before")
    plan = plan_of(hf_copy, [runlens.KeepBestK(1, "eval_score", mode="min")])
    result = runlens.apply_prune(plan, hf_copy, trash=trash)
    moved = dict(zip(map(os.path.basename, result.removed), result.moved_to))
    assert moved["checkpoint-2"] == str(trash / "checkpoint-2 (2)")
    assert moved["checkpoint-4"] == str(trash / "checkpoint-4 (2)")
    assert [p.name for p in victim.iterdir()] == ["precious.txt"] and os.path.islink(trash / "checkpoint-2")
    assert (trash / "checkpoint-4" / "old.txt").read_text() == "trashed before"
    assert (Path(moved["checkpoint-2"]) / "trainer_state.json").is_file()


def test_a_plan_reaching_outside_dir_or_through_a_symlinked_folder_is_refused(hf_copy, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.copytree(hf_copy / "checkpoint-2", outside / "checkpoint-2")
    os.symlink(outside, hf_copy / "linked")
    plan = plan_of(hf_copy, [runlens.KeepBestK(1, "eval_score", mode="min")])
    template = plan.iloc[[0]].assign(keep=False)
    before, kept_outside = state(hf_copy), state(outside)
    for path in (outside / "checkpoint-2", hf_copy / "linked" / "checkpoint-2"):
        crafted = pd.concat([plan, template.assign(path=str(path))], ignore_index=True)
        with pytest.raises(runlens.PruneRefused, match="outside"):
            runlens.apply_prune(crafted, hf_copy)
    assert state(hf_copy) == before and state(outside) == kept_outside


# ------------------------------------------------------------ stale plans and races (folders)


def hf_plan(hf_copy):
    plan = plan_of(hf_copy, [runlens.KeepBestK(1, "eval_score", mode="min")])
    return plan, plan.loc[~plan["keep"], "path"].iloc[0]


@pytest.mark.parametrize(
    "change", ["file added", "file rewritten", "folder replaced", "folder now a symlink"]
)
def test_a_dropped_folder_that_changed_after_the_plan_makes_it_stale(hf_copy, tmp_path, change):
    plan, drop = hf_plan(hf_copy)
    drop = Path(drop)
    if change == "file added":
        (drop / "notes.txt").write_text("written after the plan")
    elif change == "file rewritten":
        data = (drop / "trainer_state.json").read_bytes()
        info = (drop / "trainer_state.json").stat()
        (drop / "trainer_state.json").write_bytes(data)  # same bytes, same size: a new write
        os.utime(drop / "trainer_state.json", ns=(info.st_atime_ns, info.st_mtime_ns))
    elif change == "folder replaced":
        copy = tmp_path / "copy"
        shutil.copytree(drop, copy)
        shutil.rmtree(drop)
        shutil.move(copy, drop)
    else:
        elsewhere = tmp_path / "moved"
        shutil.move(drop, elsewhere)
        os.symlink(elsewhere, drop)
    before = state(hf_copy)
    with pytest.raises(runlens.PruneRefused, match="stale"):
        runlens.apply_prune(plan, hf_copy)
    assert state(hf_copy) == before


def test_a_dropped_lightning_file_replaced_by_one_of_the_same_size_and_mtime_is_refused(lightning_copy):
    plan = plan_of(lightning_copy, [runlens.KeepBestK(1, "val_loss")])
    drop = Path(plan.loc[~plan["keep"], "path"].iloc[0])
    info = drop.stat()
    fresh = drop.with_name("incoming.tmp")
    fresh.write_bytes(b"\0" * info.st_size)
    os.utime(fresh, ns=(info.st_atime_ns, info.st_mtime_ns))
    os.replace(fresh, drop)
    before = state(lightning_copy)
    with pytest.raises(runlens.PruneRefused, match="not the file planned"):
        runlens.apply_prune(plan, lightning_copy)
    assert state(lightning_copy) == before


def test_a_symlink_inside_a_dropped_folder_is_removed_never_followed(hf_copy, tmp_path):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious" * 100)
    victim_dir = tmp_path / "victim_dir"
    victim_dir.mkdir()
    (victim_dir / "inside.txt").write_text("precious too")
    os.symlink(victim, hf_copy / "checkpoint-2" / "link.bin")
    os.symlink(victim_dir, hf_copy / "checkpoint-2" / "link_dir")
    for path in (hf_copy / "checkpoint-2").iterdir():
        os.utime(path, (NOW - 3600, NOW - 3600), follow_symlinks=False)
    plan, _ = hf_plan(hf_copy)
    assert not plan.set_index("path").loc[str(hf_copy / "checkpoint-2"), "keep"]
    runlens.apply_prune(plan, hf_copy)
    assert not (hf_copy / "checkpoint-2").exists()
    assert (
        victim.read_bytes() == b"precious" * 100 and (victim_dir / "inside.txt").read_text() == "precious too"
    )


def test_a_folder_written_to_while_it_is_moved_aside_is_put_back(hf_copy, monkeypatch):
    plan, _drop = hf_plan(hf_copy)
    real = os.rename
    done = []

    def racing(src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        if not done and ".runlens-pruning-" in str(dst):  # a trainer writes into it right then
            done.append(src)
            fd = os.open(os.path.join(dst, "late.txt"), os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dst_dir_fd)
            os.close(fd)

    monkeypatch.setattr(os, "rename", racing)
    result = runlens.apply_prune(plan, hf_copy)
    monkeypatch.undo()
    [name] = done
    path = str(hf_copy / name)
    assert (path, "replaced or written to while being removed: put back, left alone") in result.skipped
    assert (Path(path) / "late.txt").exists() and (Path(path) / "trainer_state.json").exists()
    assert not [p for p in hf_copy.iterdir() if ".runlens-pruning-" in p.name]


def test_a_sub_folder_swapped_for_a_symlink_while_emptying_is_not_followed(hf_copy, tmp_path, monkeypatch):
    import runlens.checkpoints.removal as removal

    (hf_copy / "checkpoint-2" / "extra").mkdir()
    (hf_copy / "checkpoint-2" / "extra" / "f.txt").write_text("x")
    for path in (hf_copy / "checkpoint-2" / "extra", hf_copy / "checkpoint-2" / "extra" / "f.txt"):
        os.utime(path, (NOW - 3600, NOW - 3600))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("outside DIR")
    plan, _ = hf_plan(hf_copy)
    real, swapped = removal.remove_contents, []

    def swap_then_remove(fd, **kwargs):
        if not swapped and (Path(f"/proc/self/fd/{fd}") / "extra").is_dir():  # swapped right now
            shutil.rmtree(f"/proc/self/fd/{fd}/extra")
            os.symlink(outside, f"/proc/self/fd/{fd}/extra")
            swapped.append(fd)
        return real(fd, **kwargs)

    monkeypatch.setattr(removal, "remove_contents", swap_then_remove)
    runlens.apply_prune(plan, hf_copy)
    assert swapped and (outside / "keep.txt").read_text() == "outside DIR" and outside.is_dir()
    assert not (hf_copy / "checkpoint-2").exists()


# --------------------------------------------------------------------- kill -9 mid-folder


def test_kill_9_while_a_folder_is_emptied_leaves_no_half_folder_that_looks_valid(hf_copy, tmp_path):
    from transformers.trainer_utils import get_last_checkpoint

    plan, _ = hf_plan(hf_copy)
    kept = {p: below(state(hf_copy), p) for p in plan.loc[plan["keep"], "path"]}
    args = ["checkpoints", "prune", str(hf_copy), "--keep-best", "1", "--monitor", "eval_score"]
    args += ["--mode", "min", "--min-age", "0", "--apply"]
    with held_mid_prune(args, tmp_path):
        during = state(hf_copy)
        second = invoke(*args)
        assert second.exit_code == 1 and "another runlens prune" in second.output
        assert state(hf_copy) == during
    assert {p: below(state(hf_copy), p) for p in kept} == kept
    [aside] = [p for p in hf_copy.iterdir() if ".runlens-pruning-" in p.name]
    assert not aside.name.startswith("checkpoint-")  # the Trainer never resumes from it
    assert os.path.basename(get_last_checkpoint(str(hf_copy))) == "checkpoint-12"
    table = runlens.read_checkpoints(hf_copy)
    assert table["valid"].all()  # no half-folder is listed as a checkpoint
    [left] = [s for s in table.attrs["skipped"] if s["category"] == "left aside"]
    assert left["path"] == str(aside) and "partly removed" in left["reason"]
    rerun = subprocess.run(
        [sys.executable, "-m", "runlens", *args], capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    remaining = {p.name for p in hf_copy.iterdir() if p.name.startswith("checkpoint-")}
    assert remaining == {os.path.basename(p) for p in kept}
    assert {p: below(state(hf_copy), p) for p in kept} == kept


# ----------------------------------------------------- two real prunes of overlapping folders


def test_overlapping_prunes_of_hf_folders_started_together_never_empty_the_run(hf_copy, tmp_path):
    """``OUT/..`` ranked by eval_score (min) and ``OUT`` ranked by eval_loss keep different
    folders; both reach apply at once: one goes ahead, the other is refused or finds a stale plan."""
    for trial in range(2):
        base = tmp_path / f"trial{trial}"
        out = base / "output"
        shutil.copytree(hf_copy, out, symlinks=True)
        barrier = base / "barrier"
        barrier.mkdir()
        common = ["--keep-best", "1", "--min-age", "0", "--apply"]
        commands = [
            ["checkpoints", "prune", str(base), "--monitor", "eval_score", "--mode", "min", *common],
            ["checkpoints", "prune", str(out), "--monitor", "eval_loss", *common],
        ]
        outcomes = prunes_together(commands[:: 1 if trial % 2 == 0 else -1], barrier, tmp_path)
        codes = sorted(code for code, _, _ in outcomes)
        assert codes in ([0, 0], [0, 1]), outcomes
        for code, _, err in outcomes:
            assert code == 0 or ("Traceback" not in err and "Error:" in err), err
        table = runlens.read_checkpoints(out)
        assert table["valid"].any() and "checkpoint-12" in set(table["path"].map(os.path.basename))
        assert not [p for p in out.iterdir() if ".runlens-pruning-" in p.name]
        assert len(os.listdir(barrier)) == 2
