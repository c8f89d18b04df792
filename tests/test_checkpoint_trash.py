"""``--trash`` in a folder other users can write in (issue 15, item 4): planted symlinks and
folders never redirect a write, on one filesystem and across two (a real tmpfs when there is one)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from checkpoint_fits import NOW
from click.testing import CliRunner

import runlens
from runlens import KeepBestK, apply_prune, plan_prune
from runlens.cli import main

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")
SHM = Path("/dev/shm")


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(params=["same filesystem", "another filesystem"])
def shared(request, tmp_path):
    """A folder like /tmp: sticky and writable by everyone, on the checkpoints' filesystem or not."""
    if request.param == "same filesystem":
        base = tmp_path / "tmp"
        base.mkdir()
    else:
        if not SHM.is_dir() or SHM.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("no second filesystem (/dev/shm) to move across")
        base = Path(tempfile.mkdtemp(dir=SHM))
        request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
        assert base.stat().st_dev != tmp_path.stat().st_dev
    base.chmod(0o1777)
    return base


def flat_plan(folder):
    """A plan for exp/checkpoints alone: its files land directly in the trash folder."""
    root = folder.root / "exp" / "checkpoints"
    return root, plan_prune(runlens.read_checkpoints(root), rules=[KeepBestK(2, "val_loss")], now=NOW)


@pytest.mark.parametrize("plant_targets", [False, True], ids=["partial names", "partial and final names"])
def test_planted_symlinks_in_the_trash_never_receive_a_byte(folder, shared, tmp_path, plant_targets):
    """The reported loss: ``.NAME.partial`` planted as a symlink to an outside file."""
    root, plan = flat_plan(folder)
    trash = shared / "old"
    trash.mkdir(mode=0o1777)  # made by this user, sticky: others may add entries, not replace ours
    trash.chmod(0o1777)
    victims, links = {}, {}
    drops = list(plan.loc[~plan["keep"], "path"])
    for i, path in enumerate(drops):
        name = os.path.basename(path)
        for planted in (f".{name}.partial", name) if plant_targets else (f".{name}.partial",):
            victim = tmp_path / f"victim_{i}_{planted.strip('.')}"
            victim.write_text("someone's data")
            os.symlink(victim, trash / planted)
            victims[victim], links[trash / planted] = digest(victim), str(victim)
    before = {p: digest(p) for p in drops}
    result = apply_prune(plan, root, trash=trash)
    assert {v: digest(v) for v in victims} == victims  # no write went through a symlink
    assert sorted(result.removed) == sorted(drops) and not any(os.path.exists(p) for p in drops)
    for source, target in zip(result.removed, result.moved_to):
        assert Path(target).parent == trash and (" (2)." in Path(target).name) == plant_targets
        assert not Path(target).is_symlink() and digest(target) == before[source]
    assert {link: os.readlink(link) for link in links} == links  # the planted links are left as they were
    assert not [n for n in os.listdir(trash) if n.endswith(".partial") and not os.path.islink(trash / n)]


def test_a_planted_sub_folder_symlink_refuses_the_move_before_anything_is_removed(folder, shared, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    trash = shared / "old"
    trash.mkdir()
    trash.chmod(0o1777)
    os.symlink(outside, trash / "exp")  # the checkpoints of exp/ would go through it
    plan = plan_prune(runlens.read_checkpoints(folder.root), rules=[KeepBestK(2, "val_loss")], now=NOW)
    drops = list(plan.loc[~plan["keep"], "path"])
    with pytest.raises(runlens.PruneRefused, match="trash folder .*exp is a symlink"):
        apply_prune(plan, folder.root, trash=trash)
    assert list(outside.iterdir()) == [] and all(os.path.exists(p) for p in drops)


@pytest.mark.parametrize(
    "how", ["world-writable", "group-writable", "another user's", "another user's sub-folder"]
)
def test_a_trash_others_can_write_in_is_refused(folder, tmp_path, how):
    if "another user" in how and os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    trash = tmp_path / "trash"
    (trash / "exp").mkdir(parents=True)
    if how == "world-writable":
        trash.chmod(0o777)  # not sticky: anyone may rename or replace what is put there
    elif how == "group-writable":
        trash.chmod(0o775)
    elif how == "another user's":
        os.chown(trash, 65534, 65534)
    else:
        os.chown(trash / "exp", 65534, 65534)
    plan = plan_prune(runlens.read_checkpoints(folder.root), rules=[KeepBestK(2, "val_loss")], now=NOW)
    drops = list(plan.loc[~plan["keep"], "path"])
    with pytest.raises(runlens.RunlensError) as info:
        apply_prune(plan, folder.root, trash=trash)
    assert "other users can write" in str(info.value) or "belongs to another user" in str(info.value)
    assert all(os.path.exists(p) for p in drops)


@pytest.mark.skipif(os.geteuid() != 0, reason="a symlink of another user needs root to make")
def test_a_trash_path_that_is_another_users_symlink_is_never_followed(folder, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    planted = tmp_path / "old"
    os.symlink(mine, planted)
    os.lchown(planted, 65534, 65534)
    plan = plan_prune(runlens.read_checkpoints(folder.root), rules=[KeepBestK(2, "val_loss")], now=NOW)
    with pytest.raises(runlens.RunlensError, match="symlink owned by another user"):
        apply_prune(plan, folder.root, trash=planted)
    assert list(mine.iterdir()) == []


def test_the_readme_example_trash_is_created_private_and_keeps_relative_paths(folder, shared):
    trash = shared / "old"  # does not exist yet: runlens creates it, and its sub-folders, 0700
    args = ["checkpoints", "prune", str(folder.root), "--keep-best", "2", "--monitor", "val_loss"]
    result = CliRunner().invoke(main, [*args, "--min-age", "0", "--apply", "--trash", str(trash)])
    assert result.exit_code == 0, result.output
    moved = [line.split(" -> ") for line in result.output.splitlines() if " -> " in line]
    assert moved
    for source, target in moved:
        assert target == str(trash / os.path.relpath(source.removeprefix("moved "), folder.root))
    for path in [trash, *trash.rglob("*")]:
        if path.is_dir():
            assert path.stat().st_mode & 0o777 == 0o700 and path.stat().st_uid == os.geteuid()
