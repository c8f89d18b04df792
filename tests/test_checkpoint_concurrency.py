"""Two real prune processes on overlapping folders at once (issue 15, item 2): ``runs/`` ranked by
val_loss and ``runs/exp1/checkpoints`` ranked by val_accuracy, which keep disjoint files. Both plan,
then both reach apply at the same moment; whatever the interleaving, the run keeps the valid
checkpoints one of them verified, and the other is refused in one line."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from held_prunes import prunes_together

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")
TEMPLATE = "e{epoch:03d}-{val_loss:.4f}-{val_accuracy:.4f}.keras"
FILES = 60
TRIALS = 3


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def checkpoints_of(folder, source):
    """FILES copies of a real .keras save; val_loss is best early, val_accuracy best late."""
    ckpts = folder / "runs" / "exp1" / "checkpoints"
    ckpts.mkdir(parents=True)
    for epoch in range(FILES):
        name = TEMPLATE.format(
            epoch=epoch + 1, val_loss=0.1 + epoch / FILES, val_accuracy=0.5 + epoch / (2 * FILES)
        )
        shutil.copyfile(source, ckpts / name)
    return ckpts


def test_overlapping_prunes_started_together_never_empty_a_run(folder, tmp_path):
    source = folder.files("every")[0]
    original = digest(source)
    for trial in range(TRIALS):
        base = tmp_path / f"trial{trial}"
        ckpts = checkpoints_of(base, source)
        barrier = base / "barrier"
        barrier.mkdir()
        common = ["--keep-best", "2", "--template", TEMPLATE, "--min-age", "0", "--apply"]
        commands = [
            ["checkpoints", "prune", str(base / "runs"), "--monitor", "val_loss", *common],
            ["checkpoints", "prune", str(ckpts), "--monitor", "val_accuracy", *common],
        ]
        if trial % 2:
            commands.reverse()
        outcomes = prunes_together(commands, barrier, tmp_path)
        left = sorted(ckpts.iterdir(), key=lambda p: p.name)
        left_checkpoints = [p for p in left if p.suffix == ".keras"]
        assert len(left_checkpoints) >= 2, (trial, outcomes)  # the 2 best the last prune verified
        assert all(digest(p) == original for p in left_checkpoints)
        codes = sorted(code for code, _, _ in outcomes)
        assert codes in ([0, 0], [0, 1]), outcomes
        for code, _, err in outcomes:
            errors = [line for line in err.splitlines() if line.startswith("Error:")]
            assert code == 0 or (len(errors) == 1 and "Traceback" not in err), err
            if code:
                assert "another runlens prune" in errors[0] or "stale" in errors[0], err
        assert not [p for p in left if ".runlens-pruning-" in p.name]
        assert len(os.listdir(barrier)) == 2  # both really reached apply together
