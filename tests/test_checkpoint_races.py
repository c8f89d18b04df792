"""apply_prune against a folder that changes under it (issue 15, item 3) and hostile lock files
(item 5): a stale plan is refused before anything is removed, a file swapped in at the last moment
is put back, and the lock never writes into a file runlens did not create."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest
from checkpoint_fits import NOW, OLD, TEMPLATES, make_plan, tree_state
from click.testing import CliRunner

import runlens
from runlens import KeepBestK, apply_prune, plan_prune
from runlens.checkpoints.lock import LOCK_NAME as LOCK
from runlens.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")


def series(plan, run="exp", kind="keras"):
    return plan[(plan["run"] == run) & (plan["kind"] == kind)]


def test_the_kept_best_truncated_after_the_plan_refuses_the_whole_plan(folder):
    plan = make_plan(folder.root)
    every = series(plan)
    best = every.loc[every["rank"] == 1, "path"].iloc[0]
    with open(best, "r+b") as f:  # damaged after planning, in place (same inode)
        f.truncate(os.path.getsize(best) // 2)
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="which the plan keeps, is not as planned .*stale") as info:
        apply_prune(plan, folder.root)
    assert info.value.exit_code == 1 and tree_state(folder.root) == before


def test_a_dropped_file_replaced_by_one_of_the_same_size_and_mtime_is_not_deleted(folder):
    plan = make_plan(folder.root)
    drop = Path(series(plan).loc[~series(plan)["keep"], "path"].iloc[0])
    info = drop.stat()
    replacement = drop.with_name("incoming.tmp")
    replacement.write_bytes(b"\0" * info.st_size)  # same size ...
    os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))  # ... and mtime, another inode
    os.replace(replacement, drop)
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="which the plan drops, is not the file planned"):
        apply_prune(plan, folder.root)
    assert tree_state(folder.root) == before


def test_the_cli_says_stale_in_one_line_and_exits_1(folder, monkeypatch):
    table = runlens.read_checkpoints(folder.root, template=list(TEMPLATES.values()))
    best = table.loc[table["run"] == "exp/best", "path"].iloc[-1]
    args = ["checkpoints", "prune", str(folder.root), "--keep-best", "1", "--monitor", "val_loss"]
    args += ["--min-age", "0", *(a for t in TEMPLATES.values() for a in ("--template", t))]
    real = runlens.apply_prune

    def truncate_then_apply(plan, root, **kwargs):  # the race: a file changes between plan and apply
        with open(best, "r+b") as f:
            f.truncate(100)
        return real(plan, root, **kwargs)

    import runlens.checkpoints.prune as prune  # the CLI imports apply_prune from here when it runs

    monkeypatch.setattr(prune, "apply_prune", truncate_then_apply)
    before = tree_state(folder.root)
    result = CliRunner().invoke(main, [*args, "--apply"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "stale" in errors[0] and "Traceback" not in result.output
    after = tree_state(folder.root)
    assert {p: v for p, v in after.items() if p != best} == {p: v for p, v in before.items() if p != best}


class RacingRename:
    """Another process acting in the window between apply's last check and the removal: right
    before the first rename of a planned name, a new file takes that name (and, with ``again``,
    yet another one right after it, so the name is taken when runlens wants to put it back)."""

    def __init__(self, monkeypatch, *, again=False):
        self.real, self.again, self.done = os.rename, again, None
        monkeypatch.setattr(os, "rename", self)

    def __call__(self, src, dst, *, src_dir_fd=None, dst_dir_fd=None):
        if self.done is None and ".runlens-pruning-" in str(dst):
            self.done = src
            self._plant(src, b"a newer file someone else wrote", src_dir_fd)
            self.real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
            if self.again:
                self._plant(src, b"and yet another one", src_dir_fd)
            return None
        return self.real(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    def _plant(self, name, data, dir_fd):
        fd = os.open("planted.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
        os.write(fd, data)
        os.close(fd)
        self.real("planted.tmp", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def test_a_file_swapped_in_after_the_last_check_is_put_back_untouched(folder, monkeypatch):
    plan = make_plan(folder.root)
    drops = list(plan.loc[~plan["keep"], "path"])
    race = RacingRename(monkeypatch)
    result = apply_prune(plan, folder.root)
    monkeypatch.undo()
    swapped = str(Path(drops[0]).parent / race.done)
    assert Path(swapped).read_bytes() == b"a newer file someone else wrote"
    assert (swapped, "replaced by another file while being removed: put back, left alone") in result.skipped
    assert sorted(result.removed) == sorted(set(drops) - {swapped})
    assert not [p for p in folder.root.rglob("*") if ".runlens-pruning-" in p.name]


def test_a_name_taken_again_during_the_put_back_loses_neither_file(folder, monkeypatch):
    plan = make_plan(folder.root)
    race = RacingRename(monkeypatch, again=True)
    result = apply_prune(plan, folder.root)
    monkeypatch.undo()
    [(path, why)] = result.failed
    assert Path(path).name == race.done and Path(path).read_bytes() == b"and yet another one"
    [aside] = [p for p in Path(path).parent.iterdir() if ".runlens-pruning-" in p.name]
    assert aside.read_bytes() == b"a newer file someone else wrote" and repr(aside.name) in why
    table = runlens.read_checkpoints(folder.root)  # the next listing says what to do with it
    [left] = [s for s in table.attrs["skipped"] if s["category"] == "left aside"]
    assert left["path"] == str(aside) and f"rename it back to {race.done!r}" in left["reason"]


# ------------------------------------------------------------------ the lock file (item 5)


def lock_in(folder):
    return folder.root / "exp" / "checkpoints" / LOCK


def test_a_lock_file_hard_linked_to_an_outside_file_is_refused_and_the_file_untouched(folder, tmp_path):
    outside = tmp_path / "precious.txt"
    outside.write_text("my thesis, final version\n" * 100)
    os.link(outside, lock_in(folder))
    os.link(outside, folder.root / LOCK)  # where older runlens versions kept their one lock
    root = folder.root / "exp" / "checkpoints"
    plan = plan_prune(runlens.read_checkpoints(root), rules=[KeepBestK(2, "val_loss")], now=NOW)
    before = tree_state(folder.root)
    with pytest.raises(runlens.PruneRefused, match="has 3 links .* remove it") as info:
        apply_prune(plan, root)
    assert info.value.exit_code == 1
    assert outside.read_text() == "my thesis, final version\n" * 100
    assert tree_state(folder.root) == before


@pytest.mark.parametrize("plant", ["symlink", "fifo", "folder"])
def test_a_lock_name_that_is_not_a_regular_file_is_refused(folder, tmp_path, plant):
    target = tmp_path / "target.txt"
    target.write_text("untouched")
    if plant == "symlink":
        os.symlink(target, lock_in(folder))
    elif plant == "fifo":
        os.mkfifo(lock_in(folder))
    else:
        lock_in(folder).mkdir()
    plan = make_plan(folder.root)
    before = tree_state(folder.root)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(error=_refusal(plan, folder.root)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "apply_prune blocked on the lock file"
    assert "remove it and run this again" in outcome["error"]
    assert target.read_text() == "untouched" and tree_state(folder.root) == before


def _refusal(plan, root):
    try:
        apply_prune(plan, root)
    except runlens.PruneRefused as exc:
        return str(exc)
    return "not refused"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_lock_file_of_another_user_is_refused(folder):
    lock_in(folder).write_bytes(b"")
    os.chown(lock_in(folder), 65534, 65534)
    plan = make_plan(folder.root)
    with pytest.raises(runlens.PruneRefused, match=r"belongs to another user \(uid 65534\)"):
        apply_prune(plan, folder.root)


def test_lock_files_are_created_empty_and_an_existing_one_is_never_written(folder):
    older = lock_in(folder)
    older.write_text("12345\n")  # left by an older runlens, which stored its pid
    os.utime(older, (OLD, OLD))
    plan = make_plan(folder.root)
    assert apply_prune(plan, folder.root).removed
    assert older.read_text() == "12345\n" and older.stat().st_mtime == OLD
    created = folder.root / "exp" / "best" / LOCK
    assert created.is_file() and created.stat().st_size == 0
    assert stat.S_IMODE(created.stat().st_mode) & 0o022 == 0
    assert not (folder.root / LOCK).exists()  # the root holds no file the plan drops or keeps


def test_prune_lock_is_still_usable_on_its_own(tmp_path):
    from runlens.checkpoints.lock import prune_lock

    with (
        prune_lock(tmp_path),
        pytest.raises(runlens.PruneRefused, match="another runlens prune"),
        prune_lock(tmp_path),
    ):
        pass
