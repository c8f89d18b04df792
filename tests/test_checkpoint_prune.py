"""apply_prune on real checkpoints: every safety rule of the one place that deletes has a test."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from checkpoint_fits import OLD, make_plan, tree_state

import runlens
from runlens import apply_prune
from runlens.checkpoints.lock import prune_lock

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), os.lstat(path).st_mtime_ns


def test_apply_deletes_exactly_the_drops_and_leaves_kept_files_untouched(folder):
    plan = make_plan(folder.root)
    before = tree_state(folder.root)
    result = apply_prune(plan, folder.root)
    after = tree_state(folder.root)
    drops = set(plan.loc[~plan["keep"], "path"])
    assert set(result.removed) == drops and len(drops) > 0
    assert set(before) - set(after) == drops
    assert {p: before[p] for p in after} == after  # survivors byte-identical, mtimes unchanged
    assert result.bytes_freed == plan.loc[~plan["keep"], "size_bytes"].sum()
    assert not result.skipped and not result.failed


def test_trash_keeps_relative_paths_and_must_lie_outside_dir(folder, tmp_path):
    plan = make_plan(folder.root)
    before = tree_state(folder.root)
    with pytest.raises(runlens.RunlensError, match="--trash .* is inside") as info:
        apply_prune(plan, folder.root, trash=folder.root / "exp" / "trash")
    assert info.value.exit_code == 2 and tree_state(folder.root) == before
    result = apply_prune(plan, folder.root, trash=tmp_path / "trash")
    for source, target in zip(result.removed, result.moved_to):
        relative = os.path.relpath(source, folder.root)
        assert target == str(tmp_path / "trash" / relative)
        assert digest(target)[0] == before[source][0]
        assert not os.path.lexists(source)


def test_trash_on_another_filesystem(folder):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == folder.root.stat().st_dev:
        pytest.skip("no second filesystem to move across")
    trash = Path(tempfile.mkdtemp(dir=shm))
    try:
        plan = make_plan(folder.root)
        result = apply_prune(plan, folder.root, trash=trash)
        assert len(result.moved_to) == (~plan["keep"]).sum() > 0
        assert all(
            Path(t).is_file() and not os.path.lexists(s) for s, t in zip(result.removed, result.moved_to)
        )
        assert not list(trash.rglob("*.partial"))
        again = apply_prune(make_plan(folder.root), folder.root, trash=trash)  # nothing left to move
        assert again.removed == []
    finally:
        shutil.rmtree(trash)


def test_a_name_taken_in_the_trash_gets_a_free_one(folder, tmp_path):
    plan = make_plan(folder.root)
    first = plan.loc[~plan["keep"], "path"].iloc[0]
    taken = tmp_path / "trash" / os.path.relpath(first, folder.root)
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"an older trashed file")
    result = apply_prune(plan, folder.root, trash=tmp_path / "trash")
    assert taken.read_bytes() == b"an older trashed file"
    moved = result.moved_to[result.removed.index(first)]
    assert moved.endswith(" (2).keras") or moved.endswith(" (2).weights.h5")


def test_a_file_swapped_for_a_symlink_after_planning_makes_the_plan_stale(folder):
    plan = make_plan(folder.root)
    drop = plan.loc[~plan["keep"], "path"].iloc[0]
    kept = plan.loc[plan["keep"] & (plan["kind"] == "keras"), "path"].iloc[0]
    os.unlink(drop)
    os.symlink(kept, drop)
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="which the plan drops, is not the file planned.*stale"):
        apply_prune(plan, folder.root)
    assert os.path.islink(drop) and tree_state(folder.root) == before


def test_a_plan_that_drops_a_symlink_never_deletes_it(folder):
    ckpts = folder.root / "exp" / "checkpoints"
    target = folder.files("every")[0]
    os.symlink(target, ckpts / "link_99.keras")
    plan = make_plan(folder.root)
    crafted = pd.concat(
        [plan, plan.iloc[[0]].assign(path=str(ckpts / "link_99.keras"), keep=False)], ignore_index=True
    )
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="stale"):
        apply_prune(crafted, folder.root)
    assert os.path.islink(ckpts / "link_99.keras") and tree_state(folder.root) == before


def test_a_plan_dropping_a_non_checkpoint_is_refused_before_anything_is_deleted(folder):
    notes = folder.root / "exp" / "checkpoints" / "notes.txt"
    notes.write_text("keep me")
    plan = make_plan(folder.root)
    crafted = pd.concat([plan, plan.iloc[[0]].assign(path=str(notes), keep=False)], ignore_index=True)
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="not a checkpoint file") as info:
        apply_prune(crafted, folder.root)
    assert info.value.exit_code == 1 and tree_state(folder.root) == before


@pytest.mark.parametrize("how", ["path outside", "through a symlinked folder"])
def test_a_plan_reaching_outside_dir_is_refused(folder, tmp_path, how):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "precious_01.keras"
    shutil.copy(folder.files("every")[0], victim)
    os.symlink(outside, folder.root / "exp" / "elsewhere")
    path = victim if how == "path outside" else folder.root / "exp" / "elsewhere" / victim.name
    plan = make_plan(folder.root)
    crafted = pd.concat([plan, plan.iloc[[0]].assign(path=str(path), keep=False)], ignore_index=True)
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="outside"):
        apply_prune(crafted, folder.root)
    assert victim.is_file() and tree_state(folder.root) == before


def test_a_second_prune_on_the_same_dir_is_refused_while_one_holds_the_lock(folder):
    plan = make_plan(folder.root)
    before = tree_state(folder.root)
    with prune_lock(folder.root / "exp" / "checkpoints"):  # a folder the plan deletes from
        with pytest.raises(runlens.PruneRefused, match="another runlens prune .* holds") as info:
            apply_prune(plan, folder.root)
        assert info.value.exit_code == 1
        assert tree_state(folder.root) == before
    assert apply_prune(plan, folder.root).removed  # the lock is free again


def test_a_stale_plan_is_refused(folder):
    plan = make_plan(folder.root)
    kept = plan.loc[plan["keep"] & plan["valid"], "path"].iloc[0]
    os.unlink(kept)
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="stale"):
        apply_prune(plan, folder.root)
    assert tree_state(folder.root) == before


def test_a_dropped_file_changed_after_planning_makes_the_plan_stale(folder):
    plan = make_plan(folder.root)
    drop = plan.loc[~plan["keep"], "path"].iloc[0]
    os.utime(drop, (OLD + 10, OLD + 10))  # rewritten since: ModelCheckpoint saved it again
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="stale") as info:
        apply_prune(plan, folder.root)
    assert info.value.exit_code == 1 and tree_state(folder.root) == before
    assert apply_prune(make_plan(folder.root), folder.root).removed  # planned again: goes ahead


def test_apply_refuses_a_hand_edited_plan_that_would_empty_a_run(folder):
    plan = make_plan(folder.root)
    plan.loc[plan["run"] == "exp/best", "keep"] = False  # not what plan_prune would ever return
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="'exp/best' would be left without a valid"):
        apply_prune(plan, folder.root)
    assert tree_state(folder.root) == before
