"""A search for a prune that loses data (issue 15, item 6; issue 12 for the new kinds): random
sequences of plans, applies, concurrent prunes of nested folders, checkpoints replaced between plan
and apply, and real ``kill -9`` of real prune processes at random moments, over a tree that mixes
Keras ``.keras`` files, Lightning ``.ckpt`` files (with ``last.ckpt``) and HF Trainer
``checkpoint-N/`` folders with non-checkpoints, symlinks and files outside DIR.

After every step: no run ends with zero valid checkpoints if it had one before the step, and no
non-checkpoint, symlink, symlink target or file outside DIR has changed (each is hashed). Valid
is judged without runlens: a file is a valid checkpoint when its bytes are those of a real save
(Keras, Lightning), a folder when every file in it is that of a real HF Trainer checkpoint folder.
Hypothesis shrinks a failing sequence to its shortest form.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import prune_worker
import pytest
from checkpoint_fits import OLD, write_data_h5
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import runlens
from runlens.checkpoints.removal import aside_original

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:keras.*")
TEMPLATE = "e{epoch:03d}-{val_loss:.4f}-{val_accuracy:.4f}.keras"
LIGHTNING = (
    "epoch={epoch}-val_loss={val_loss:.4f}-val_accuracy={val_accuracy:.4f}.ckpt"  # auto_insert_metric_name
)
# run -> (folder, kind)
RUNS = {
    "a": ("runs/a", "keras"),
    "b": ("runs/b/checkpoints", "keras"),
    "c/sub": ("runs/c/sub/checkpoints", "keras"),
    "l": ("runs/l/checkpoints", "lightning"),
    "h": ("runs/h", "transformers"),
}
ROOTS = ["runs", "runs/a", "runs/b", "runs/b/checkpoints", "runs/c", "runs/c/sub/checkpoints"]
ROOTS += ["runs/l", "runs/l/checkpoints", "runs/h"]
MONITORS = ["val_loss", "val_accuracy", "eval_score"]  # eval_score: the HF folders' own metric

prunes = st.fixed_dictionaries(
    {
        "root": st.sampled_from(ROOTS),
        "monitor": st.sampled_from(MONITORS),
        "k": st.integers(1, 2),
        "keep_last": st.sampled_from([None, 1]),
        "delete_invalid": st.booleans(),
        "trash": st.booleans(),
    }
)
CHECKPOINT_N = re.compile(r"checkpoint-\d+")
mutations = st.sampled_from(["truncate", "replace valid", "same size and mtime", "delete", "add"])


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kind_of(path: Path) -> str:
    return {".keras": "Keras", ".ckpt": "Lightning"}.get(path.suffix, "HF folder")


def tree(folder: Path) -> str:
    """A digest of a folder's files (relative names and contents)."""
    parts = sorted(f"{p.relative_to(folder)}:{sha(p)}" for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Sources:
    """Real saves to fill the world with: .keras and .ckpt bytes, HF checkpoint folders."""

    keras: list[bytes]
    lightning: list[bytes]
    hf: list[Path]


def cli_args(world: World, p: dict) -> list[str]:
    args = ["checkpoints", "prune", str(world.base / p["root"]), "--keep-best", str(p["k"])]
    args += ["--monitor", p["monitor"], "--template", TEMPLATE, "--min-age", "0", "--apply"]
    args += ["--keep-last", "1"] if p["keep_last"] else []
    args += ["--delete-invalid"] if p["delete_invalid"] else []
    return args + (["--trash", str(world.base / "trash")] if p["trash"] else [])


class World:
    """The tree under test and what must never change in it."""

    def __init__(self, sources: Sources) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="prune-property-"))
        self.logs = Path(tempfile.mkdtemp(prefix="prune-property-logs-"))
        self.sources = sources
        self.valid = {hashlib.sha256(s).hexdigest() for s in sources.keras + sources.lightning}
        self.valid_trees = {tree(folder) for folder in sources.hf}
        self.epochs = dict.fromkeys(RUNS, 0)
        self.serial = 0
        for run in RUNS:
            for _ in range(8 if RUNS[run][1] != "transformers" else 5):
                self.add(run)
        runs, outside = self.base / "runs", self.base / "outside"
        outside.mkdir()
        (outside / "victim.txt").write_text("outside DIR")
        (outside / "outside_ckpt.keras").write_bytes(sources.keras[0])
        (outside / "outside.ckpt").write_bytes(sources.lightning[0])
        shutil.copytree(sources.hf[0], outside / "checkpoint-5")
        (runs / "a" / "notes.txt").write_text("a note")
        write_data_h5(runs / "a" / "predictions_001.h5")
        with zipfile.ZipFile(runs / "b" / "checkpoints" / "bundle_002.keras", "w") as zf:
            zf.writestr("data.csv", "a,b\n")
        (runs / "c" / "sub" / "checkpoints" / "zero_003.keras").write_bytes(b"")  # cannot tell: kept
        os.symlink(outside / "outside_ckpt.keras", runs / "b" / "checkpoints" / "link_050.keras")
        os.symlink(outside, runs / "c" / "elsewhere")
        os.symlink(runs / "a" / "notes.txt", runs / "c" / "sub" / "checkpoints" / "note_004.keras")
        lightning = runs / "l" / "checkpoints"
        (lightning / "last.ckpt").write_bytes(sources.lightning[-1])  # the resume point: pinned
        shutil.copy(sources.hf[0] / "training_args.bin", lightning / "args.ckpt")  # torch.save, not Lightning
        os.symlink(outside / "outside.ckpt", lightning / "link.ckpt")
        hf = runs / "h"
        os.symlink(outside / "checkpoint-5", hf / "checkpoint-9098")  # a symlinked folder
        shutil.copytree(sources.hf[0], hf / "checkpoint-9097")
        (hf / "checkpoint-9097" / "trainer_state.json").unlink()  # cannot tell: never deleted
        (hf / "checkpoint-9099").mkdir()  # someone's folder named like a checkpoint
        (hf / "checkpoint-9099" / "notes.txt").write_text("not a checkpoint")
        for path in self.base.rglob("*"):
            if not path.is_symlink():
                os.utime(path, (OLD, OLD))
        self.protected = self.snapshot_protected()

    def add(self, run: str) -> Path:
        self.epochs[run] += 1
        self.serial += 1
        e = self.epochs[run]
        loss, accuracy = ((self.serial * 7919) % 997) / 997, ((self.serial * 104729) % 991) / 991
        folder, kind = RUNS[run]
        folder = self.base / folder
        folder.mkdir(parents=True, exist_ok=True)
        if kind == "transformers":
            path = folder / f"checkpoint-{e}"
            shutil.copytree(self.sources.hf[self.serial % len(self.sources.hf)], path)
            return path
        name, data = (
            (TEMPLATE, self.sources.keras) if kind == "keras" else (LIGHTNING, self.sources.lightning)
        )
        path = folder / name.format(epoch=e, val_loss=loss, val_accuracy=accuracy)
        path.write_bytes(data[e % len(data)])
        return path

    def checkpoints(self, run: str) -> list[Path]:
        folder, kind = RUNS[run]
        folder = self.base / folder
        if kind == "transformers":
            return sorted(
                p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and self.run_folder(p.name)
            )
        pattern = "e*.keras" if kind == "keras" else "*.ckpt"
        return sorted(
            p for p in folder.glob(pattern) if p.is_file() and not p.is_symlink() and p.name != "args.ckpt"
        )

    def valid_count(self, run: str) -> int:
        if RUNS[run][1] == "transformers":
            return sum(tree(p) in self.valid_trees for p in self.checkpoints(run))
        return sum(sha(p) in self.valid for p in self.checkpoints(run))

    @staticmethod
    def run_folder(name: str) -> bool:
        """One of the HF run's checkpoint folders (those from 9000 on are the protected ones)."""
        return bool(CHECKPOINT_N.fullmatch(name)) and int(name.split("-")[1]) < 9000

    def is_checkpoint(self, path: Path) -> bool:
        """A runs' checkpoint (or inside one, or one a killed prune left aside): may change."""
        relative = path.relative_to(self.base).parts
        for i, part in enumerate(relative):
            original = aside_original(part)
            if original is not None and (
                CHECKPOINT_N.fullmatch(original) or original.endswith((".keras", ".ckpt"))
            ):
                return True
            if self.run_folder(part) and relative[i - 1] == "h":
                return True
        name = path.name
        return (name.startswith("e") and name.endswith(".keras")) or (
            name.endswith(".ckpt") and name not in ("args.ckpt", "link.ckpt", "outside.ckpt")
        )

    def snapshot_protected(self) -> dict[str, object]:
        """Digest of every file that is not one of the runs' checkpoints; targets of symlinks."""
        out: dict[str, object] = {}
        for path in self.base.rglob("*"):
            if "trash" in path.relative_to(self.base).parts or path.name == ".runlens-prune.lock":
                continue
            if "outside" not in path.relative_to(self.base).parts and self.is_checkpoint(path):
                continue
            if path.is_symlink():
                out[str(path)] = ("->", os.readlink(path))
            elif path.is_file():
                out[str(path)] = sha(path)
        return out


def test_no_sequence_of_prunes_races_and_kills_loses_a_run_or_touches_other_files(fitted, framework_fits):
    lightning = framework_fits / "lightning" / "lightning_logs" / "version_0" / "checkpoints"
    hf = framework_fits / "transformers"
    sources = Sources(
        keras=[
            p.read_bytes() for p in sorted((fitted.root / "exp" / "checkpoints").glob("epoch_*.keras"))[:2]
        ],
        lightning=[p.read_bytes() for p in sorted(lightning.glob("epoch=*.ckpt"))[:3]],
        hf=[hf / f"checkpoint-{step}" for step in (4, 8, 12)],
    )

    class Prunes(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world = World(sources)
            self.before = self.counts()

        def teardown(self) -> None:
            shutil.rmtree(self.world.base, ignore_errors=True)
            shutil.rmtree(self.world.logs, ignore_errors=True)

        def counts(self) -> dict[str, int]:
            return {run: self.world.valid_count(run) for run in RUNS}

        def settle(self) -> None:
            """The step's effects are in: check the invariant against the counts before it."""
            after = self.counts()
            lost = [run for run in RUNS if self.before[run] > 0 and after[run] == 0]
            assert not lost, f"runs left without a valid checkpoint: {lost} ({self.before} -> {after})"
            assert self.world.snapshot_protected() == self.world.protected
            self.before = after

        def grow(self) -> None:
            """Two new checkpoints in every run, so that the prunes to come have work to do."""
            for run in RUNS:
                for _ in range(2):
                    self.world.add(run)
            self.before = self.counts()

        def log(self) -> str:
            self.world.serial += 1
            return str(self.world.logs / f"prune-{self.world.serial}.log")

        @rule(p=prunes)
        def prune_in_process(self, p):
            def prune():
                root = self.world.base / p["root"]
                rules = [runlens.KeepBestK(p["k"], p["monitor"])]
                rules += [runlens.KeepLastN(1)] if p["keep_last"] else []
                table = runlens.read_checkpoints(root, template=TEMPLATE)
                plan = runlens.plan_prune(table, rules=rules, min_age=0, delete_invalid=p["delete_invalid"])
                return runlens.apply_prune(
                    plan, root, trash=self.world.base / "trash" if p["trash"] else None
                )

            self.outcome(prune, "in process")
            self.settle()

        def outcome(self, action, label: str) -> None:
            """Run a prune; refusals are outcomes too (the invariant says whether they were right)."""
            try:
                result = action()
            except runlens.PruneRefused as exc:
                event(f"refused {label}: {'stale' if 'stale' in str(exc) else 'other'}")
            except runlens.RunlensError:
                event("nothing to rank by")
            else:
                event(f"applied {label}: {'removed files' if result.removed else 'nothing to remove'}")
                for kind in sorted({kind_of(Path(p)) for p in result.removed}):
                    event(f"removed {kind} checkpoints")

        @rule(p=prunes, mutation=mutations, pick=st.integers(0, 10**6), keep_side=st.booleans())
        def file_changes_between_plan_and_apply(self, p, mutation, pick, keep_side):
            root = self.world.base / p["root"]
            try:
                table = runlens.read_checkpoints(root, template=TEMPLATE)
                plan = runlens.plan_prune(table, rules=[runlens.KeepBestK(p["k"], p["monitor"])], min_age=0)
            except runlens.RunlensError:
                return self.settle()
            side = plan[plan["keep"] == keep_side]
            if not side.empty:
                self.mutate(Path(side["path"].iloc[pick % len(side)]), mutation)
            self.before = self.counts()  # the change itself may empty a run; the prune must not
            self.outcome(
                lambda: runlens.apply_prune(plan, root),
                f"after '{mutation}' of a {'kept' if keep_side else 'dropped'} file",
            )
            self.settle()

        @rule(
            ps=st.lists(prunes, min_size=2, max_size=3),
            gaps=st.lists(st.floats(0, 0.01), min_size=3, max_size=3),
        )
        def concurrent_prunes(self, ps, gaps):
            self.grow()
            processes, logs = [], []
            for p, gap in zip(ps, gaps):
                logs.append(self.log())
                processes.append(prune_worker.start(cli_args(self.world, p), log=logs[-1]))
                time.sleep(gap)
            for process, log in zip(processes, logs):
                process.join(120)
                output = Path(log).read_text()
                assert process.exitcode in (0, 1, 2) and "Traceback" not in output, output
            event(f"concurrent prunes exited with {sorted(p.exitcode for p in processes)}")
            self.settle()

        @rule(p=prunes, delay=st.floats(0.02, 0.25))
        def prune_killed(self, p, delay):
            self.grow()
            log = self.log()
            process = prune_worker.start(cli_args(self.world, p), log=log)
            time.sleep(delay)
            process.kill()  # SIGKILL, unless it has ended already (multiprocessing checks first)
            process.join(120)
            assert process.exitcode in (0, 1, 2, -signal.SIGKILL)
            # Killed before the child opened its log (a loaded machine starts it late): nothing to read.
            assert not Path(log).exists() or "Traceback" not in Path(log).read_text()
            removed = sum(self.before.values()) - sum(self.counts().values())
            if process.exitcode == -signal.SIGKILL:
                event(f"kill -9 landed {'before it removed anything' if removed <= 0 else 'while removing'}")
            self.settle()

        @rule(run=st.sampled_from(list(RUNS)), mutation=mutations, pick=st.integers(0, 10**6))
        def file_changes(self, run, mutation, pick):
            files = self.world.checkpoints(run)
            if mutation == "add" or not files:
                self.world.add(run)
            else:
                self.mutate(files[pick % len(files)], mutation)
            self.before = self.counts()
            self.settle()

        def mutate(self, path: Path, mutation: str) -> None:
            if mutation == "add":
                parent = path.parent
                self.world.add(next(r for r, (f, _) in RUNS.items() if (self.world.base / f) == parent))
            elif path.is_dir():
                self.mutate_folder(path, mutation)
            elif mutation == "truncate":
                os.truncate(path, path.stat().st_size // 2)  # in place: same inode, now invalid
            elif mutation == "delete":
                path.unlink()
            else:
                info = path.stat()
                pool = sources.keras if path.suffix == ".keras" else sources.lightning
                data = next(d for d in pool if hashlib.sha256(d).hexdigest() != sha(path))
                if mutation == "same size and mtime":
                    data = b"\0" * info.st_size
                self.replace(path, data, info if mutation == "same size and mtime" else None)

        def mutate_folder(self, path: Path, mutation: str) -> None:
            """The same changes to an HF checkpoint folder (its weights, its trainer_state.json)."""
            if mutation == "truncate":
                weights = path / "model.safetensors"
                os.truncate(weights, weights.stat().st_size // 2)
            elif mutation == "delete":
                shutil.rmtree(path)
            elif mutation == "replace valid":
                other = next(f for f in sources.hf if tree(f) != tree(path))
                shutil.rmtree(path)
                shutil.copytree(other, path)
            else:  # same size and mtime: trainer_state.json zeroed in a new inode
                state = path / "trainer_state.json"
                info = state.stat()
                self.replace(state, b"\0" * info.st_size, info)

        @staticmethod
        def replace(path: Path, data: bytes, times: os.stat_result | None) -> None:
            fresh = path.with_name("incoming.tmp")
            fresh.write_bytes(data)
            if times is not None:
                os.utime(fresh, ns=(times.st_atime_ns, times.st_mtime_ns))
            os.replace(fresh, path)  # a new inode under the planned name

        @invariant()
        def lock_files_are_empty(self):
            for lock in self.world.base.rglob(".runlens-prune.lock"):
                assert lock.stat().st_size == 0 and lock.stat().st_nlink == 1

    run_state_machine_as_test(
        Prunes,
        settings=settings(
            max_examples=20,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
